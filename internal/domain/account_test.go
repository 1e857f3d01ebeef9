package domain_test

import (
	"errors"
	"math"
	"testing"

	"github.com/eventfold/eventfold/internal/domain"
)

func accountOpened() domain.AccountOpened {
	return domain.AccountOpened{AccountID: "acc-1", OwnerID: "user-1", Currency: "EUR"}
}

func deposited(amount int64) domain.Event {
	return domain.MoneyDeposited{AccountID: "acc-1", Amount: amount}
}

func withdrawn(amount int64) domain.Event {
	return domain.MoneyWithdrawn{AccountID: "acc-1", Amount: amount}
}

func TestAccountOpen(t *testing.T) {
	open := func(currency string) domain.OpenAccount {
		return domain.OpenAccount{AccountID: "acc-1", OwnerID: "user-1", Currency: currency}
	}
	tests := []struct {
		name  string
		given []domain.Event
		when  domain.OpenAccount
		then  outcome
	}{
		{name: "an account is opened", when: open("EUR"), then: emits(accountOpened())},
		{name: "any three upper-case letters", when: open("XAU"), then: emits(domain.AccountOpened{AccountID: "acc-1", OwnerID: "user-1", Currency: "XAU"})},
		{name: "opening twice", given: []domain.Event{accountOpened()}, when: open("EUR"), then: fails(domain.ErrExists)},
		{name: "opening twice in another currency", given: []domain.Event{accountOpened()}, when: open("USD"), then: fails(domain.ErrExists)},
		{name: "opening twice is refused before the input is validated", given: []domain.Event{accountOpened()}, when: domain.OpenAccount{}, then: fails(domain.ErrExists)},
		{name: "missing account ID", when: domain.OpenAccount{OwnerID: "user-1", Currency: "EUR"}, then: invalid("accountId")},
		{name: "missing owner ID", when: domain.OpenAccount{AccountID: "acc-1", Currency: "EUR"}, then: invalid("ownerId")},
		{name: "owner ID with a slash", when: domain.OpenAccount{AccountID: "acc-1", OwnerID: "a/b", Currency: "EUR"}, then: invalid("ownerId")},
		{name: "missing currency", when: open(""), then: invalid("currency")},
		{name: "lower-case currency", when: open("eur"), then: invalid("currency")},
		{name: "mixed-case currency", when: open("Eur"), then: invalid("currency")},
		{name: "two-letter currency", when: open("EU"), then: invalid("currency")},
		{name: "four-letter currency", when: open("EURO"), then: invalid("currency")},
		{name: "currency with a digit", when: open("E1R"), then: invalid("currency")},
		{name: "numeric currency code", when: open("978"), then: invalid("currency")},
		{name: "currency with a leading space", when: open(" EUR"), then: invalid("currency")},
		{name: "currency with a trailing newline", when: open("EUR\n"), then: invalid("currency")},
		{name: "currency with a non-ASCII letter", when: open("ÉUR"), then: invalid("currency")},
		{name: "currency symbol", when: open("€"), then: invalid("currency")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := given[domain.Account](tt.given...).OpenAccount(tt.when)
			then(t, events, err, tt.then)
		})
	}
}

func TestAccountDeposit(t *testing.T) {
	tests := []struct {
		name  string
		given []domain.Event
		when  domain.Deposit
		then  outcome
	}{
		{name: "deposit into a new account", given: []domain.Event{accountOpened()}, when: domain.Deposit{Amount: 1000}, then: emits(deposited(1000))},
		{name: "deposit of one cent", given: []domain.Event{accountOpened()}, when: domain.Deposit{Amount: 1}, then: emits(deposited(1))},
		{name: "deposit onto a balance", given: []domain.Event{accountOpened(), deposited(500)}, when: domain.Deposit{Amount: 250}, then: emits(deposited(250))},
		{name: "deposit of the largest amount into an empty account", given: []domain.Event{accountOpened()}, when: domain.Deposit{Amount: math.MaxInt64}, then: emits(deposited(math.MaxInt64))},
		{name: "deposit up to exactly the largest balance", given: []domain.Event{accountOpened(), deposited(math.MaxInt64 - 10)}, when: domain.Deposit{Amount: 10}, then: emits(deposited(10))},
		{name: "deposit one past the largest balance", given: []domain.Event{accountOpened(), deposited(math.MaxInt64 - 10)}, when: domain.Deposit{Amount: 11}, then: fails(domain.ErrBalanceOverflow)},
		{name: "deposit onto the largest balance", given: []domain.Event{accountOpened(), deposited(math.MaxInt64)}, when: domain.Deposit{Amount: 1}, then: fails(domain.ErrBalanceOverflow)},
		{name: "deposit of the largest amount onto a balance", given: []domain.Event{accountOpened(), deposited(1)}, when: domain.Deposit{Amount: math.MaxInt64}, then: fails(domain.ErrBalanceOverflow)},
		{name: "deposit after withdrawals made room", given: []domain.Event{accountOpened(), deposited(math.MaxInt64), withdrawn(5)}, when: domain.Deposit{Amount: 5}, then: emits(deposited(5))},
		{name: "zero amount", given: []domain.Event{accountOpened()}, when: domain.Deposit{Amount: 0}, then: invalid("amount")},
		{name: "negative amount", given: []domain.Event{accountOpened(), deposited(100)}, when: domain.Deposit{Amount: -1}, then: invalid("amount")},
		{name: "most negative amount", given: []domain.Event{accountOpened()}, when: domain.Deposit{Amount: math.MinInt64}, then: invalid("amount")},
		{name: "unopened account", when: domain.Deposit{Amount: 100}, then: fails(domain.ErrNotFound)},
		{name: "unopened account, invalid amount", when: domain.Deposit{Amount: 0}, then: fails(domain.ErrNotFound)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := given[domain.Account](tt.given...).Deposit(tt.when)
			then(t, events, err, tt.then)
		})
	}
}

func TestAccountWithdraw(t *testing.T) {
	tests := []struct {
		name  string
		given []domain.Event
		when  domain.Withdraw
		then  outcome
	}{
		{name: "withdraw less than the balance", given: []domain.Event{accountOpened(), deposited(1000)}, when: domain.Withdraw{Amount: 400}, then: emits(withdrawn(400))},
		{name: "withdraw exactly the balance", given: []domain.Event{accountOpened(), deposited(1000)}, when: domain.Withdraw{Amount: 1000}, then: emits(withdrawn(1000))},
		{name: "withdraw exactly the balance left after a withdrawal", given: []domain.Event{accountOpened(), deposited(1000), withdrawn(600)}, when: domain.Withdraw{Amount: 400}, then: emits(withdrawn(400))},
		{name: "withdraw one cent more than the balance", given: []domain.Event{accountOpened(), deposited(1000)}, when: domain.Withdraw{Amount: 1001}, then: fails(domain.ErrInsufficientFunds)},
		{name: "withdraw more than is left after a withdrawal", given: []domain.Event{accountOpened(), deposited(1000), withdrawn(600)}, when: domain.Withdraw{Amount: 401}, then: fails(domain.ErrInsufficientFunds)},
		{name: "withdraw from an empty account", given: []domain.Event{accountOpened()}, when: domain.Withdraw{Amount: 1}, then: fails(domain.ErrInsufficientFunds)},
		{name: "withdraw from an emptied account", given: []domain.Event{accountOpened(), deposited(50), withdrawn(50)}, when: domain.Withdraw{Amount: 1}, then: fails(domain.ErrInsufficientFunds)},
		{name: "withdraw the largest amount", given: []domain.Event{accountOpened(), deposited(math.MaxInt64)}, when: domain.Withdraw{Amount: math.MaxInt64}, then: emits(withdrawn(math.MaxInt64))},
		{name: "zero amount", given: []domain.Event{accountOpened(), deposited(100)}, when: domain.Withdraw{Amount: 0}, then: invalid("amount")},
		{name: "negative amount", given: []domain.Event{accountOpened(), deposited(100)}, when: domain.Withdraw{Amount: -100}, then: invalid("amount")},
		{name: "most negative amount", given: []domain.Event{accountOpened(), deposited(100)}, when: domain.Withdraw{Amount: math.MinInt64}, then: invalid("amount")},
		{name: "unopened account", when: domain.Withdraw{Amount: 1}, then: fails(domain.ErrNotFound)},
		{name: "unopened account, invalid amount", when: domain.Withdraw{Amount: -1}, then: fails(domain.ErrNotFound)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := given[domain.Account](tt.given...).Withdraw(tt.when)
			then(t, events, err, tt.then)
		})
	}
}

func TestAccountEvolve(t *testing.T) {
	tests := []struct {
		name  string
		given []domain.Event
		want  domain.Account
	}{
		{"no events: not open", nil, domain.Account{}},
		{"opened", []domain.Event{accountOpened()}, domain.Account{ID: "acc-1", OwnerID: "user-1", Currency: "EUR", Open: true}},
		{
			"deposits add up",
			[]domain.Event{accountOpened(), deposited(100), deposited(250), deposited(1)},
			domain.Account{ID: "acc-1", OwnerID: "user-1", Currency: "EUR", Open: true, Balance: 351},
		},
		{
			"deposits and withdrawals",
			[]domain.Event{accountOpened(), deposited(10_000), withdrawn(2_500), deposited(300), withdrawn(7_000), withdrawn(800)},
			domain.Account{ID: "acc-1", OwnerID: "user-1", Currency: "EUR", Open: true, Balance: 0},
		},
		{
			"a long history",
			[]domain.Event{accountOpened(), deposited(1_999), withdrawn(999), deposited(5), withdrawn(5), deposited(123_456), withdrawn(23_456)},
			domain.Account{ID: "acc-1", OwnerID: "user-1", Currency: "EUR", Open: true, Balance: 101_000},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := given[domain.Account](tt.given...); got != tt.want {
				t.Errorf("state = %#v, want %#v", got, tt.want)
			}
		})
	}
}

// TestAccountLifecycle feeds each decision's events back into the state and checks the balance
// never goes below zero, whatever is asked.
func TestAccountLifecycle(t *testing.T) {
	var a domain.Account
	apply := func(events []domain.Event, err error) error {
		t.Helper()
		for _, e := range events {
			a = a.Evolve(e)
		}
		return err
	}
	if err := apply(a.OpenAccount(domain.OpenAccount{AccountID: "acc-9", OwnerID: "u-9", Currency: "SEK"})); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		deposit bool
		amount  int64
		wantErr error
		balance int64
	}{
		{true, 500, nil, 500},
		{false, 200, nil, 300},
		{false, 301, domain.ErrInsufficientFunds, 300},
		{true, 0, domain.ErrInvalid, 300},
		{false, 300, nil, 0},
		{false, 1, domain.ErrInsufficientFunds, 0},
		{true, math.MaxInt64, nil, math.MaxInt64},
		{true, 1, domain.ErrBalanceOverflow, math.MaxInt64},
	}
	for i, s := range steps {
		var err error
		if s.deposit {
			err = apply(a.Deposit(domain.Deposit{Amount: s.amount}))
		} else {
			err = apply(a.Withdraw(domain.Withdraw{Amount: s.amount}))
		}
		if (s.wantErr == nil) != (err == nil) || (s.wantErr != nil && !errors.Is(err, s.wantErr)) {
			t.Fatalf("step %d: error = %v, want %v", i, err, s.wantErr)
		}
		if a.Balance != s.balance {
			t.Fatalf("step %d: balance = %d, want %d", i, a.Balance, s.balance)
		}
	}
}
