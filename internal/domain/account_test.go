package domain_test

import (
	"errors"
	"maps"
	"math"
	"reflect"
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

func charged(order string, amount int64) domain.Event {
	return domain.AccountCharged{AccountID: "acc-1", OrderID: order, Amount: amount}
}

func refunded(order string, amount int64) domain.Event {
	return domain.AccountRefunded{AccountID: "acc-1", OrderID: order, Amount: amount}
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
			"charged and refunded",
			[]domain.Event{accountOpened(), deposited(1_000), charged("o-1", 300), charged("o-2", 0), charged("o-3", 200), refunded("o-1", 300)},
			domain.Account{ID: "acc-1", OwnerID: "user-1", Currency: "EUR", Open: true, Balance: 800,
				Charges: map[string]domain.Charge{"o-1": {Amount: 300, Refunded: 300}, "o-2": {Amount: 0}, "o-3": {Amount: 200}}},
		},
		{
			"a long history",
			[]domain.Event{accountOpened(), deposited(1_999), withdrawn(999), deposited(5), withdrawn(5), deposited(123_456), withdrawn(23_456)},
			domain.Account{ID: "acc-1", OwnerID: "user-1", Currency: "EUR", Open: true, Balance: 101_000},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := given[domain.Account](tt.given...); !reflect.DeepEqual(got, tt.want) {
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

func TestAccountCharge(t *testing.T) {
	charge := func(order string, amount int64) domain.ChargeAccount {
		return domain.ChargeAccount{OrderID: order, CustomerID: "user-1", Currency: "EUR", Amount: amount}
	}
	with := func(mutate func(*domain.ChargeAccount)) domain.ChargeAccount {
		c := charge("o-1", 100)
		mutate(&c)
		return c
	}
	funded := []domain.Event{accountOpened(), deposited(1000)}
	and := func(more ...domain.Event) []domain.Event {
		return append(append([]domain.Event(nil), funded...), more...)
	}
	tests := []struct {
		name  string
		given []domain.Event
		when  domain.ChargeAccount
		then  outcome
	}{
		{name: "an order is charged", given: funded, when: charge("o-1", 400), then: emits(charged("o-1", 400))},
		{name: "an order is charged the whole balance", given: funded, when: charge("o-1", 1000), then: emits(charged("o-1", 1000))},
		{name: "a free order is charged 0, and the charge recorded", given: funded, when: charge("o-1", 0), then: emits(charged("o-1", 0))},
		{name: "a free order is charged 0 from an empty account", given: []domain.Event{accountOpened()}, when: charge("o-1", 0), then: emits(charged("o-1", 0))},
		{name: "a second order is charged what the first left", given: and(charged("o-1", 600)), when: charge("o-2", 400), then: emits(charged("o-2", 400))},
		{name: "one cent more than the balance", given: funded, when: charge("o-1", 1001), then: fails(domain.ErrInsufficientFunds)},
		{name: "more than the first order left", given: and(charged("o-1", 600)), when: charge("o-2", 401), then: fails(domain.ErrInsufficientFunds)},
		{name: "an empty account", given: []domain.Event{accountOpened()}, when: charge("o-1", 1), then: fails(domain.ErrInsufficientFunds)},
		{name: "the largest amount from the largest balance", given: []domain.Event{accountOpened(), deposited(math.MaxInt64)}, when: charge("o-1", math.MaxInt64), then: emits(charged("o-1", math.MaxInt64))},
		{name: "charging an order twice changes nothing", given: and(charged("o-1", 400)), when: charge("o-1", 400), then: noChange()},
		{name: "charging an order twice, another amount, changes nothing", given: and(charged("o-1", 400)), when: charge("o-1", 50), then: noChange()},
		{name: "charging an order twice when its charge took the balance changes nothing", given: and(charged("o-1", 1000)), when: charge("o-1", 1000), then: noChange()},
		{name: "charging a free order twice changes nothing", given: and(charged("o-1", 0)), when: charge("o-1", 0), then: noChange()},
		{name: "charging a refunded order again changes nothing", given: and(charged("o-1", 400), refunded("o-1", 400)), when: charge("o-1", 400), then: noChange()},
		{name: "an account of another customer", given: funded, when: with(func(c *domain.ChargeAccount) { c.CustomerID = "user-2" }), then: fails(domain.ErrAccountNotOwned)},
		{name: "an account of another customer, even for an order charged here", given: and(charged("o-1", 100)), when: with(func(c *domain.ChargeAccount) { c.CustomerID = "user-2" }), then: fails(domain.ErrAccountNotOwned)},
		{name: "no customer", given: funded, when: with(func(c *domain.ChargeAccount) { c.CustomerID = "" }), then: fails(domain.ErrAccountNotOwned)},
		{name: "another customer and another currency: not owned first", given: funded, when: with(func(c *domain.ChargeAccount) { c.CustomerID, c.Currency = "user-2", "USD" }), then: fails(domain.ErrAccountNotOwned)},
		{name: "another currency", given: funded, when: with(func(c *domain.ChargeAccount) { c.Currency = "USD" }), then: fails(domain.ErrCurrencyMismatch)},
		{name: "the currency in lower case is another", given: funded, when: with(func(c *domain.ChargeAccount) { c.Currency = "eur" }), then: fails(domain.ErrCurrencyMismatch)},
		{name: "another currency, and more than the balance: the currency first", given: funded, when: with(func(c *domain.ChargeAccount) { c.Currency, c.Amount = "USD", 5000 }), then: fails(domain.ErrCurrencyMismatch)},
		{name: "negative amount", given: funded, when: charge("o-1", -1), then: invalid("amount")},
		{name: "most negative amount", given: funded, when: charge("o-1", math.MinInt64), then: invalid("amount")},
		{name: "negative amount for an order charged already", given: and(charged("o-1", 100)), when: charge("o-1", -1), then: invalid("amount")},
		{name: "missing order ID", given: funded, when: charge("", 100), then: invalid("orderId")},
		{name: "order ID with a slash", given: funded, when: charge("o/1", 100), then: invalid("orderId")},
		{name: "unopened account", when: charge("o-1", 0), then: fails(domain.ErrNotFound)},
		{name: "unopened account, invalid input", when: charge("", -1), then: fails(domain.ErrNotFound)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := given[domain.Account](tt.given...)
			before := maps.Clone(a.Charges)
			events, err := a.Charge(tt.when)
			then(t, events, err, tt.then)
			if !maps.Equal(a.Charges, before) {
				t.Errorf("Charge changed the state's charges: %v, was %v", a.Charges, before)
			}
			for _, e := range events {
				a = a.Evolve(e)
			}
			if a.Balance < 0 {
				t.Errorf("balance %d after the decision, below zero", a.Balance)
			}
		})
	}
}

func TestAccountRefund(t *testing.T) {
	funded := []domain.Event{accountOpened(), deposited(1000)}
	and := func(more ...domain.Event) []domain.Event {
		return append(append([]domain.Event(nil), funded...), more...)
	}
	tests := []struct {
		name  string
		given []domain.Event
		when  string
		then  outcome
	}{
		{name: "a charge is refunded, all of it", given: and(charged("o-1", 400)), when: "o-1", then: emits(refunded("o-1", 400))},
		{name: "one of two charges is refunded", given: and(charged("o-1", 400), charged("o-2", 250)), when: "o-2", then: emits(refunded("o-2", 250))},
		{name: "a charge is refunded after the money was spent elsewhere", given: and(charged("o-1", 400), withdrawn(600)), when: "o-1", then: emits(refunded("o-1", 400))},
		{name: "refunding twice changes nothing", given: and(charged("o-1", 400), refunded("o-1", 400)), when: "o-1", then: noChange()},
		{name: "a refund without a charge changes nothing", given: funded, when: "o-1", then: noChange()},
		{name: "a refund of another order's charge changes nothing", given: and(charged("o-2", 400)), when: "o-1", then: noChange()},
		{name: "a refund of a free order (charged 0) changes nothing", given: and(charged("o-1", 0)), when: "o-1", then: noChange()},
		{name: "a refund on an unopened account changes nothing", when: "o-1", then: noChange()},
		{name: "a refund of a charge refused for want of funds changes nothing", given: []domain.Event{accountOpened()}, when: "o-1", then: noChange()},
		{name: "missing order ID", given: and(charged("o-1", 400)), when: "", then: invalid("orderId")},
		{name: "order ID with a space", given: and(charged("o-1", 400)), when: "o 1", then: invalid("orderId")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := given[domain.Account](tt.given...)
			before := maps.Clone(a.Charges)
			events, err := a.Refund(tt.when)
			then(t, events, err, tt.then)
			if !maps.Equal(a.Charges, before) {
				t.Errorf("Refund changed the state's charges: %v, was %v", a.Charges, before)
			}
		})
	}
}

// TestAccountChargeRefundLifecycle feeds each decision's events back into the state: an order is
// charged once and refunded at most what it was charged, however often either is asked, and in
// whatever order; the balance moves with them.
func TestAccountChargeRefundLifecycle(t *testing.T) {
	a := given[domain.Account](accountOpened(), deposited(1000))
	apply := func(events []domain.Event, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			a = a.Evolve(e)
		}
	}
	charge := func(order string, amount int64) ([]domain.Event, error) {
		return a.Charge(domain.ChargeAccount{OrderID: order, CustomerID: "user-1", Currency: "EUR", Amount: amount})
	}
	apply(a.Refund("o-1"))    // before any charge: nothing
	apply(charge("o-1", 300)) // 700
	apply(charge("o-1", 300)) // twice: nothing
	apply(charge("o-2", 500)) // 200
	apply(a.Refund("o-1"))    // 500
	apply(a.Refund("o-1"))    // twice: nothing
	apply(charge("o-1", 300)) // after its refund: nothing
	apply(charge("o-3", 0))   // free: recorded, 500
	apply(a.Refund("o-3"))    // nothing to give back
	if a.Balance != 500 {
		t.Fatalf("balance = %d, want 500", a.Balance)
	}
	want := map[string]domain.Charge{"o-1": {Amount: 300, Refunded: 300}, "o-2": {Amount: 500}, "o-3": {}}
	if !maps.Equal(a.Charges, want) {
		t.Fatalf("charges = %v, want %v", a.Charges, want)
	}
	var net int64
	for _, c := range a.Charges {
		if c.Refunded > c.Amount || c.Refunded < 0 {
			t.Errorf("charge %+v: refunded more than charged", c)
		}
		net += c.Amount - c.Refunded
	}
	if 1000-net != a.Balance {
		t.Errorf("deposits less net charges = %d, balance %d", 1000-net, a.Balance)
	}
}

// TestAccountEvolveKeepsEarlierStates: evolving an account further never changes the Charges map
// of a state taken earlier, and two futures of one state do not see each other.
func TestAccountEvolveKeepsEarlierStates(t *testing.T) {
	s0 := given[domain.Account](accountOpened(), deposited(1000))
	s1 := s0.Evolve(charged("o-1", 100))
	s2 := s1.Evolve(charged("o-2", 200))
	s3 := s2.Evolve(refunded("o-1", 100))
	a := s1.Evolve(charged("o-a", 1))
	b := s1.Evolve(refunded("o-1", 100))
	for _, c := range []struct {
		name string
		got  map[string]domain.Charge
		want map[string]domain.Charge
	}{
		{"before any charge", s0.Charges, nil},
		{"after charging o-1", s1.Charges, map[string]domain.Charge{"o-1": {Amount: 100}}},
		{"after charging o-2", s2.Charges, map[string]domain.Charge{"o-1": {Amount: 100}, "o-2": {Amount: 200}}},
		{"after refunding o-1", s3.Charges, map[string]domain.Charge{"o-1": {Amount: 100, Refunded: 100}, "o-2": {Amount: 200}}},
		{"branch a", a.Charges, map[string]domain.Charge{"o-1": {Amount: 100}, "o-a": {Amount: 1}}},
		{"branch b", b.Charges, map[string]domain.Charge{"o-1": {Amount: 100, Refunded: 100}}},
	} {
		if !maps.Equal(c.got, c.want) {
			t.Errorf("%s: charges = %v, want %v", c.name, c.got, c.want)
		}
	}
	if s0.Balance != 1000 || s1.Balance != 900 || s2.Balance != 700 || s3.Balance != 800 || a.Balance != 899 || b.Balance != 1000 {
		t.Errorf("balances %d %d %d %d %d %d", s0.Balance, s1.Balance, s2.Balance, s3.Balance, a.Balance, b.Balance)
	}
}
