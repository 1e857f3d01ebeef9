package domain

import (
	"math"
	"regexp"
)

// Account event types.
const (
	TypeAccountOpened  = "AccountOpened"
	TypeMoneyDeposited = "MoneyDeposited"
	TypeMoneyWithdrawn = "MoneyWithdrawn"
)

// AccountOpened: an account was opened for an owner, in one currency.
type AccountOpened struct {
	AccountID string `json:"accountId"`
	OwnerID   string `json:"ownerId"`
	Currency  string `json:"currency"`
}

// MoneyDeposited: money came into an account, in minor units of its currency.
type MoneyDeposited struct {
	AccountID string `json:"accountId"`
	Amount    int64  `json:"amount"`
}

// MoneyWithdrawn: money left an account, in minor units of its currency.
type MoneyWithdrawn struct {
	AccountID string `json:"accountId"`
	Amount    int64  `json:"amount"`
}

func (AccountOpened) EventType() string  { return TypeAccountOpened }
func (MoneyDeposited) EventType() string { return TypeMoneyDeposited }
func (MoneyWithdrawn) EventType() string { return TypeMoneyWithdrawn }

// Account is the state of an account aggregate.
type Account struct {
	ID       string
	OwnerID  string
	Currency string
	Open     bool
	Balance  int64
}

// Evolve returns the account after e.
func (a Account) Evolve(e Event) Account {
	switch e := e.(type) {
	case AccountOpened:
		a.ID, a.OwnerID, a.Currency, a.Open = e.AccountID, e.OwnerID, e.Currency, true
	case MoneyDeposited:
		a.Balance += e.Amount
	case MoneyWithdrawn:
		a.Balance -= e.Amount
	}
	return a
}

// OpenAccount opens an account.
type OpenAccount struct {
	AccountID string
	OwnerID   string
	Currency  string
}

var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

// idPattern is the shape of a reference to another aggregate (an owner, a customer): it becomes
// part of stream IDs and envelopes, so it is kept short and plain.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// ValidID reports a *ValidationError for field unless id has the shape of a reference to
// another aggregate: 1 to 128 letters, digits, '.', '_', ':' or '-'.
func ValidID(field, id string) error {
	if !idPattern.MatchString(id) {
		return invalid(field, "must be 1 to 128 letters, digits, '.', '_', ':' or '-'")
	}
	return nil
}

// OpenAccount decides OpenAccount.
func (a Account) OpenAccount(c OpenAccount) ([]Event, error) {
	if a.Open {
		return nil, ErrExists
	}
	switch {
	case c.AccountID == "":
		return nil, invalid("accountId", "is required")
	case ValidID("ownerId", c.OwnerID) != nil:
		return nil, ValidID("ownerId", c.OwnerID)
	case !currencyPattern.MatchString(c.Currency):
		return nil, invalid("currency", "is not an ISO 4217 code such as EUR")
	}
	return []Event{AccountOpened{AccountID: c.AccountID, OwnerID: c.OwnerID, Currency: c.Currency}}, nil
}

// Deposit puts money into an account.
type Deposit struct {
	Amount int64
}

// Deposit decides Deposit: the amount must be positive and the balance must not overflow.
func (a Account) Deposit(c Deposit) ([]Event, error) {
	if !a.Open {
		return nil, ErrNotFound
	}
	if c.Amount <= 0 {
		return nil, invalid("amount", "must be more than 0")
	}
	if a.Balance > math.MaxInt64-c.Amount {
		return nil, ErrBalanceOverflow
	}
	return []Event{MoneyDeposited{AccountID: a.ID, Amount: c.Amount}}, nil
}

// Withdraw takes money out of an account.
type Withdraw struct {
	Amount int64
}

// Withdraw decides Withdraw: the amount must be positive and covered by the balance.
func (a Account) Withdraw(c Withdraw) ([]Event, error) {
	if !a.Open {
		return nil, ErrNotFound
	}
	if c.Amount <= 0 {
		return nil, invalid("amount", "must be more than 0")
	}
	if c.Amount > a.Balance {
		return nil, ErrInsufficientFunds
	}
	return []Event{MoneyWithdrawn{AccountID: a.ID, Amount: c.Amount}}, nil
}
