package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Order event types.
const (
	TypeOrderPlaced    = "OrderPlaced"
	TypeOrderConfirmed = "OrderConfirmed"
	TypeOrderCancelled = "OrderCancelled"
)

// OrderLine is one SKU of an order.
type OrderLine struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unitPrice"`
}

// Address is a postal address; all of it is personal data.
type Address struct {
	Name       string `json:"name" personal:"true"`
	Line1      string `json:"line1" personal:"true"`
	Line2      string `json:"line2,omitempty" personal:"true"`
	City       string `json:"city" personal:"true"`
	PostalCode string `json:"postalCode" personal:"true"`
	Country    string `json:"country" personal:"true"`
}

// OrderPlaced: a customer placed an order, to be paid from the account PaymentAccountID. Total
// is the sum of the lines, in minor units.
//
// Schema 2 added PaymentAccountID. An order stored at schema 1 named no account: it loads
// upcast (orderPlacedV1toV2) with an empty PaymentAccountID, and fulfilment cancels it.
type OrderPlaced struct {
	OrderID          string      `json:"orderId"`
	CustomerID       string      `json:"customerId"`
	PaymentAccountID string      `json:"paymentAccountId"`
	Currency         string      `json:"currency"`
	Lines            []OrderLine `json:"lines"`
	Total            int64       `json:"total"`
	ShippingAddress  Address     `json:"shippingAddress" personal:"true"`
}

// orderPlacedV1toV2 upcasts an OrderPlaced payload of schema 1 to schema 2: the same JSON object
// with "paymentAccountId": "" (a schema 1 order named no paying account; a key of that name in a
// schema 1 payload meant nothing, and is replaced). Every other member is kept as it was stored,
// value for value, sealed personal fields included: they are opaque JSON values here, never
// decoded. A payload that is not a JSON object is an error.
func orderPlacedV1toV2(data json.RawMessage) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		// encoding/json errors name Go types and offsets; at most a number or one character of input.
		return nil, fmt.Errorf("OrderPlaced schema 1: %w", err)
	}
	if obj == nil { // the payload was null
		return nil, errors.New("OrderPlaced schema 1: the payload is not a JSON object")
	}
	obj["paymentAccountId"] = json.RawMessage(`""`)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep stored strings as they were: no \u003c for <
	if err := enc.Encode(obj); err != nil {
		return nil, fmt.Errorf("OrderPlaced schema 1: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// OrderConfirmed: the order's stock and payment are secured.
type OrderConfirmed struct {
	OrderID string `json:"orderId"`
}

// OrderCancelled: the order will not be fulfilled. Reason is a code, never free text.
type OrderCancelled struct {
	OrderID string `json:"orderId"`
	Reason  string `json:"reason"`
}

func (OrderPlaced) EventType() string    { return TypeOrderPlaced }
func (OrderConfirmed) EventType() string { return TypeOrderConfirmed }
func (OrderCancelled) EventType() string { return TypeOrderCancelled }

// DataSubject is the customer: the shipping address is theirs.
func (e OrderPlaced) DataSubject() string { return e.CustomerID }

// OrderStatus is where an order is in its life: placed, then confirmed or cancelled.
type OrderStatus string

// Order statuses; the zero status means the order does not exist.
const (
	OrderStatusPlaced    OrderStatus = "placed"
	OrderStatusConfirmed OrderStatus = "confirmed"
	OrderStatusCancelled OrderStatus = "cancelled"
)

// Order is the state of an order aggregate.
type Order struct {
	ID         string
	CustomerID string
	// PaymentAccountID is the account that pays; empty for an order placed before orders named
	// one (OrderPlaced schema 1).
	PaymentAccountID string
	Status           OrderStatus
	Currency         string
	Lines            []OrderLine
	Total            int64
	ShippingAddress  Address
	CancelReason     string
}

// Evolve returns the order after e.
func (o Order) Evolve(e Event) Order {
	switch e := e.(type) {
	case OrderPlaced:
		o.ID, o.CustomerID, o.Status, o.Currency = e.OrderID, e.CustomerID, OrderStatusPlaced, e.Currency
		o.PaymentAccountID = e.PaymentAccountID
		o.Lines, o.Total, o.ShippingAddress = slices.Clone(e.Lines), e.Total, e.ShippingAddress
	case OrderConfirmed:
		o.Status = OrderStatusConfirmed
	case OrderCancelled:
		o.Status, o.CancelReason = OrderStatusCancelled, e.Reason
	}
	return o
}

// PlaceOrder places an order.
type PlaceOrder struct {
	OrderID    string
	CustomerID string
	// PaymentAccountID is the account that pays: required (whether the customer owns it is
	// checked when it is charged).
	PaymentAccountID string
	Currency         string
	Lines            []OrderLine
	ShippingAddress  Address
}

// MaxOrderLines bounds the lines of one order.
const MaxOrderLines = 50

// MaxUnitPrice bounds a unit price (minor units), so that totals cannot overflow.
const MaxUnitPrice = 1_000_000_000

// Place decides PlaceOrder: a paying account, at least one line, each SKU once, quantities and
// prices in range, a complete shipping address; the total is computed here, never taken from the caller.
func (o Order) Place(c PlaceOrder) ([]Event, error) {
	if o.Status != "" {
		return nil, ErrExists
	}
	switch {
	case c.OrderID == "":
		return nil, invalid("orderId", "is required")
	case ValidUserID("customerId", c.CustomerID) != nil:
		return nil, ValidUserID("customerId", c.CustomerID)
	case ValidID("paymentAccountId", c.PaymentAccountID) != nil:
		return nil, ValidID("paymentAccountId", c.PaymentAccountID)
	case !currencyPattern.MatchString(c.Currency):
		return nil, invalid("currency", "is not an ISO 4217 code such as EUR")
	case len(c.Lines) == 0:
		return nil, invalid("lines", "must hold at least one line")
	case len(c.Lines) > MaxOrderLines:
		return nil, invalid("lines", "must hold at most 50 lines")
	}
	var total int64
	seen := make(map[string]bool, len(c.Lines))
	for _, l := range c.Lines {
		if err := ValidSKU(l.SKU); err != nil {
			return nil, err
		}
		if seen[l.SKU] {
			return nil, invalid("lines", "name a SKU twice")
		}
		seen[l.SKU] = true
		if err := validQuantity(l.Quantity); err != nil {
			return nil, err
		}
		if l.UnitPrice < 0 || l.UnitPrice > MaxUnitPrice {
			return nil, invalid("unitPrice", "must be from 0 to 1000000000")
		}
		if l.Quantity > (math.MaxInt64-total)/max(l.UnitPrice, 1) {
			return nil, invalid("lines", "total is too large")
		}
		total += l.Quantity * l.UnitPrice
	}
	addr, err := normalizeAddress(c.ShippingAddress)
	if err != nil {
		return nil, err
	}
	lines := append([]OrderLine(nil), c.Lines...)
	return []Event{OrderPlaced{OrderID: c.OrderID, CustomerID: c.CustomerID, PaymentAccountID: c.PaymentAccountID,
		Currency: c.Currency, Lines: lines, Total: total, ShippingAddress: addr}}, nil
}

// Confirm decides confirming a placed order; confirming a confirmed one changes nothing.
func (o Order) Confirm() ([]Event, error) {
	switch o.Status {
	case "":
		return nil, ErrNotFound
	case OrderStatusConfirmed:
		return nil, nil
	case OrderStatusPlaced:
		return []Event{OrderConfirmed{OrderID: o.ID}}, nil
	}
	return nil, ErrOrderState
}

var countryPattern = regexp.MustCompile(`^[A-Z]{2}$`)

var reasonPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)

// Cancel decides cancelling a placed order for a reason code (e.g. "out-of-stock");
// cancelling a cancelled one changes nothing, and a confirmed one cannot be cancelled.
func (o Order) Cancel(reason string) ([]Event, error) {
	if !reasonPattern.MatchString(reason) {
		return nil, invalid("reason", "must be a code of lower-case letters, digits and '-'")
	}
	switch o.Status {
	case "":
		return nil, ErrNotFound
	case OrderStatusCancelled:
		return nil, nil
	case OrderStatusPlaced:
		return []Event{OrderCancelled{OrderID: o.ID, Reason: reason}}, nil
	}
	return nil, ErrOrderState
}

func normalizeAddress(a Address) (Address, error) {
	fields := []struct {
		name     string
		value    *string
		required bool
	}{
		{"shippingAddress.name", &a.Name, true},
		{"shippingAddress.line1", &a.Line1, true},
		{"shippingAddress.line2", &a.Line2, false},
		{"shippingAddress.city", &a.City, true},
		{"shippingAddress.postalCode", &a.PostalCode, true},
		{"shippingAddress.country", &a.Country, true},
	}
	for _, f := range fields {
		v := strings.TrimSpace(*f.value)
		switch {
		case v == "" && f.required:
			return Address{}, invalid(f.name, "is required")
		case !printable(v):
			return Address{}, invalid(f.name, "is not printable UTF-8 text")
		case utf8.RuneCountInString(v) > 200:
			return Address{}, invalid(f.name, "is longer than 200 characters")
		}
		*f.value = v
	}
	if !countryPattern.MatchString(a.Country) {
		return Address{}, invalid("shippingAddress.country", "is not an ISO 3166-1 alpha-2 code such as DE")
	}
	return a, nil
}
