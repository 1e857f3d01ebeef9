package domain

import (
	"maps"
	"math"
	"regexp"
)

// Account event types.
const (
	TypeAccountOpened   = "AccountOpened"
	TypeMoneyDeposited  = "MoneyDeposited"
	TypeMoneyWithdrawn  = "MoneyWithdrawn"
	TypeAccountCharged  = "AccountCharged"
	TypeAccountRefunded = "AccountRefunded"
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

// AccountCharged: an order was paid from the account: Amount (0 or more, minor units) left it.
// An order is charged at most once per account.
type AccountCharged struct {
	AccountID string `json:"accountId"`
	OrderID   string `json:"orderId"`
	Amount    int64  `json:"amount"`
}

// AccountRefunded: an order's charge came back into the account, all of it.
type AccountRefunded struct {
	AccountID string `json:"accountId"`
	OrderID   string `json:"orderId"`
	Amount    int64  `json:"amount"`
}

func (AccountOpened) EventType() string   { return TypeAccountOpened }
func (MoneyDeposited) EventType() string  { return TypeMoneyDeposited }
func (MoneyWithdrawn) EventType() string  { return TypeMoneyWithdrawn }
func (AccountCharged) EventType() string  { return TypeAccountCharged }
func (AccountRefunded) EventType() string { return TypeAccountRefunded }

// Account is the state of an account aggregate.
type Account struct {
	ID       string
	OwnerID  string
	Currency string
	Open     bool
	Balance  int64
	// Charges maps order IDs to their charge on this account, refunded or not: an order is
	// charged once, ever. Evolve copies it before a change, so earlier states stay as they were.
	Charges map[string]Charge
}

// Charge is what an order was charged and how much of it was refunded (all or nothing).
type Charge struct {
	Amount   int64
	Refunded int64
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
	case AccountCharged:
		a.Charges = maps.Clone(a.Charges)
		if a.Charges == nil {
			a.Charges = map[string]Charge{}
		}
		a.Charges[e.OrderID] = Charge{Amount: e.Amount}
		a.Balance -= e.Amount
	case AccountRefunded:
		a.Charges = maps.Clone(a.Charges)
		if a.Charges == nil {
			a.Charges = map[string]Charge{}
		}
		c := a.Charges[e.OrderID]
		c.Refunded += e.Amount
		a.Charges[e.OrderID] = c
		a.Balance += e.Amount
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
	case ValidUserID("ownerId", c.OwnerID) != nil:
		return nil, ValidUserID("ownerId", c.OwnerID)
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

// ChargeAccount pays an order from an account: the saga charges the order's total to the
// account the order names.
type ChargeAccount struct {
	OrderID    string
	CustomerID string
	Currency   string
	Amount     int64
}

// Charge decides ChargeAccount. An account that is not open is ErrNotFound; an order ID that is
// not an ID (ValidID) or a negative amount is invalid (0 is valid: a free order is charged 0, and
// the charge recorded). An account another customer owns is ErrAccountNotOwned, one in another
// currency ErrCurrencyMismatch. An order charged before, even if refunded since, changes nothing,
// whatever amount it asks for now: an order is paid once. An amount above the balance is
// ErrInsufficientFunds.
func (a Account) Charge(c ChargeAccount) ([]Event, error) {
	if !a.Open {
		return nil, ErrNotFound
	}
	if err := ValidID("orderId", c.OrderID); err != nil {
		return nil, err
	}
	if c.Amount < 0 {
		return nil, invalid("amount", "must be 0 or more")
	}
	switch {
	case c.CustomerID != a.OwnerID:
		return nil, ErrAccountNotOwned
	case c.Currency != a.Currency:
		return nil, ErrCurrencyMismatch
	}
	if _, ok := a.Charges[c.OrderID]; ok {
		return nil, nil
	}
	if c.Amount > a.Balance {
		return nil, ErrInsufficientFunds
	}
	return []Event{AccountCharged{AccountID: a.ID, OrderID: c.OrderID, Amount: c.Amount}}, nil
}

// Refund decides giving an order's charge back: all of what it was charged, once. An order never
// charged here (the account may not even be open), refunded already, or charged 0 (nothing to
// give back) changes nothing, so a refund never exceeds the charge. An order ID that is not an
// ID (ValidID) is invalid.
func (a Account) Refund(orderID string) ([]Event, error) {
	if err := ValidID("orderId", orderID); err != nil {
		return nil, err
	}
	c, ok := a.Charges[orderID]
	if !ok || c.Refunded >= c.Amount {
		return nil, nil
	}
	return []Event{AccountRefunded{AccountID: a.ID, OrderID: orderID, Amount: c.Amount - c.Refunded}}, nil
}
