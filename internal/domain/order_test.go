package domain_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/eventfold/eventfold/internal/domain"
)

func address() domain.Address {
	return domain.Address{Name: "Bo Berg", Line1: "Hauptstraße 1", Line2: "Hinterhaus", City: "Berlin", PostalCode: "10115", Country: "DE"}
}

// customerID is the user who places the orders.
const customerID = "01J9ZQ4T8K5W3X2Y1V0B6N7M8C"

func placeOrder() domain.PlaceOrder {
	return domain.PlaceOrder{
		OrderID:          "order-1",
		CustomerID:       customerID,
		PaymentAccountID: "acc-1",
		Currency:         "EUR",
		Lines: []domain.OrderLine{
			{SKU: "SKU-1", Quantity: 2, UnitPrice: 1250},
			{SKU: "SKU-2", Quantity: 1, UnitPrice: 999},
			{SKU: "SKU-3", Quantity: 3, UnitPrice: 0},
		},
		ShippingAddress: address(),
	}
}

// orderPlaced is the event placeOrder() causes.
func orderPlaced() domain.OrderPlaced {
	c := placeOrder()
	return domain.OrderPlaced{
		OrderID: c.OrderID, CustomerID: c.CustomerID, PaymentAccountID: c.PaymentAccountID, Currency: c.Currency,
		Lines: c.Lines, Total: 2*1250 + 999, ShippingAddress: c.ShippingAddress,
	}
}

func linesOf(n int, quantity, price int64) []domain.OrderLine {
	lines := make([]domain.OrderLine, n)
	for i := range lines {
		lines[i] = domain.OrderLine{SKU: fmt.Sprintf("SKU-%d", i), Quantity: quantity, UnitPrice: price}
	}
	return lines
}

func TestOrderPlace(t *testing.T) {
	with := func(mutate func(*domain.PlaceOrder)) domain.PlaceOrder {
		c := placeOrder()
		mutate(&c)
		return c
	}
	withAddress := func(mutate func(*domain.Address)) domain.PlaceOrder {
		return with(func(c *domain.PlaceOrder) { mutate(&c.ShippingAddress) })
	}
	placedWith := func(mutate func(*domain.OrderPlaced)) domain.Event {
		e := orderPlaced()
		mutate(&e)
		return e
	}
	tests := []struct {
		name  string
		given []domain.Event
		when  domain.PlaceOrder
		then  outcome
	}{
		{name: "an order is placed; the total is the sum of the lines", when: placeOrder(), then: emits(orderPlaced())},
		{
			name: "a single line",
			when: with(func(c *domain.PlaceOrder) { c.Lines = []domain.OrderLine{{SKU: "A", Quantity: 7, UnitPrice: 300}} }),
			then: emits(placedWith(func(e *domain.OrderPlaced) {
				e.Lines, e.Total = []domain.OrderLine{{SKU: "A", Quantity: 7, UnitPrice: 300}}, 2100
			})),
		},
		{
			name: "free lines: the total is zero",
			when: with(func(c *domain.PlaceOrder) { c.Lines = linesOf(3, 5, 0) }),
			then: emits(placedWith(func(e *domain.OrderPlaced) { e.Lines, e.Total = linesOf(3, 5, 0), 0 })),
		},
		{
			name: "50 lines",
			when: with(func(c *domain.PlaceOrder) { c.Lines = linesOf(50, 2, 10) }),
			then: emits(placedWith(func(e *domain.OrderPlaced) { e.Lines, e.Total = linesOf(50, 2, 10), 1000 })),
		},
		{
			name: "largest quantity and price",
			when: with(func(c *domain.PlaceOrder) { c.Lines = linesOf(1, domain.MaxQuantity, domain.MaxUnitPrice) }),
			then: emits(placedWith(func(e *domain.OrderPlaced) {
				e.Lines, e.Total = linesOf(1, domain.MaxQuantity, domain.MaxUnitPrice), 1_000_000_000_000_000_000
			})),
		},
		{
			name: "nine lines of the largest quantity and price still fit",
			when: with(func(c *domain.PlaceOrder) { c.Lines = linesOf(9, domain.MaxQuantity, domain.MaxUnitPrice) }),
			then: emits(placedWith(func(e *domain.OrderPlaced) {
				e.Lines, e.Total = linesOf(9, domain.MaxQuantity, domain.MaxUnitPrice), 9_000_000_000_000_000_000
			})),
		},
		{
			name: "SKUs differing only in case are different SKUs",
			when: with(func(c *domain.PlaceOrder) {
				c.Lines = []domain.OrderLine{{SKU: "abc", Quantity: 1, UnitPrice: 1}, {SKU: "ABC", Quantity: 1, UnitPrice: 2}}
			}),
			then: emits(placedWith(func(e *domain.OrderPlaced) {
				e.Lines, e.Total = []domain.OrderLine{{SKU: "abc", Quantity: 1, UnitPrice: 1}, {SKU: "ABC", Quantity: 1, UnitPrice: 2}}, 3
			})),
		},
		{
			name: "address fields are trimmed",
			when: withAddress(func(a *domain.Address) {
				*a = domain.Address{Name: "  Bo Berg ", Line1: "\tHauptstraße 1\n", Line2: " Hinterhaus ", City: " Berlin", PostalCode: "10115 ", Country: " DE "}
			}),
			then: emits(orderPlaced()),
		},
		{
			name: "line 2 is optional",
			when: withAddress(func(a *domain.Address) { a.Line2 = "" }),
			then: emits(placedWith(func(e *domain.OrderPlaced) { e.ShippingAddress.Line2 = "" })),
		},
		{
			name: "a blank line 2 becomes empty",
			when: withAddress(func(a *domain.Address) { a.Line2 = " \t " }),
			then: emits(placedWith(func(e *domain.OrderPlaced) { e.ShippingAddress.Line2 = "" })),
		},
		{
			name: "address fields of 200 characters",
			when: withAddress(func(a *domain.Address) { a.Line1 = strings.Repeat("ß", 200) }),
			then: emits(placedWith(func(e *domain.OrderPlaced) { e.ShippingAddress.Line1 = strings.Repeat("ß", 200) })),
		},
		{name: "placing twice", given: []domain.Event{orderPlaced()}, when: placeOrder(), then: fails(domain.ErrExists)},
		{name: "placing a confirmed order again", given: []domain.Event{orderPlaced(), domain.OrderConfirmed{OrderID: "order-1"}}, when: placeOrder(), then: fails(domain.ErrExists)},
		{name: "placing a cancelled order again", given: []domain.Event{orderPlaced(), domain.OrderCancelled{OrderID: "order-1", Reason: "fraud"}}, when: placeOrder(), then: fails(domain.ErrExists)},
		{name: "missing order ID", when: with(func(c *domain.PlaceOrder) { c.OrderID = "" }), then: invalid("orderId")},
		{name: "missing customer ID", when: with(func(c *domain.PlaceOrder) { c.CustomerID = "" }), then: invalid("customerId")},
		{name: "customer ID too long", when: with(func(c *domain.PlaceOrder) { c.CustomerID = strings.Repeat("c", 129) }), then: invalid("customerId")},
		{name: "customer ID with a space", when: with(func(c *domain.PlaceOrder) { c.CustomerID = "a b" }), then: invalid("customerId")},
		{name: "missing payment account ID", when: with(func(c *domain.PlaceOrder) { c.PaymentAccountID = "" }), then: invalid("paymentAccountId")},
		{name: "payment account ID too long", when: with(func(c *domain.PlaceOrder) { c.PaymentAccountID = strings.Repeat("a", 129) }), then: invalid("paymentAccountId")},
		{name: "payment account ID with a slash", when: with(func(c *domain.PlaceOrder) { c.PaymentAccountID = "a/b" }), then: invalid("paymentAccountId")},
		{name: "payment account ID with a newline", when: with(func(c *domain.PlaceOrder) { c.PaymentAccountID = "acc-1\n" }), then: invalid("paymentAccountId")},
		{
			name: "payment account ID of 128 characters",
			when: with(func(c *domain.PlaceOrder) { c.PaymentAccountID = strings.Repeat("a", 128) }),
			then: emits(placedWith(func(e *domain.OrderPlaced) { e.PaymentAccountID = strings.Repeat("a", 128) })),
		},
		{name: "customer ID with a slash", when: with(func(c *domain.PlaceOrder) { c.CustomerID = "c/1" }), then: invalid("customerId")},
		{name: "customer ID with a newline", when: with(func(c *domain.PlaceOrder) { c.CustomerID = customerID + "\n" }), then: invalid("customerId")},
		{name: "missing currency", when: with(func(c *domain.PlaceOrder) { c.Currency = "" }), then: invalid("currency")},
		{name: "lower-case currency", when: with(func(c *domain.PlaceOrder) { c.Currency = "eur" }), then: invalid("currency")},
		{name: "four-letter currency", when: with(func(c *domain.PlaceOrder) { c.Currency = "EURO" }), then: invalid("currency")},
		{name: "currency with a digit", when: with(func(c *domain.PlaceOrder) { c.Currency = "EU1" }), then: invalid("currency")},
		{name: "no lines (nil)", when: with(func(c *domain.PlaceOrder) { c.Lines = nil }), then: invalid("lines")},
		{name: "no lines (empty)", when: with(func(c *domain.PlaceOrder) { c.Lines = []domain.OrderLine{} }), then: invalid("lines")},
		{name: "51 lines", when: with(func(c *domain.PlaceOrder) { c.Lines = linesOf(51, 1, 1) }), then: invalid("lines")},
		{
			name: "the same SKU twice",
			when: with(func(c *domain.PlaceOrder) {
				c.Lines = append(c.Lines, domain.OrderLine{SKU: "SKU-1", Quantity: 1, UnitPrice: 1250})
			}),
			then: invalid("lines"),
		},
		{
			name: "ten lines of the largest quantity and price overflow the total",
			when: with(func(c *domain.PlaceOrder) { c.Lines = linesOf(10, domain.MaxQuantity, domain.MaxUnitPrice) }),
			then: invalid("lines"),
		},
		{name: "invalid SKU", when: with(func(c *domain.PlaceOrder) { c.Lines[1].SKU = "no spaces" }), then: invalid("sku")},
		{name: "empty SKU", when: with(func(c *domain.PlaceOrder) { c.Lines[0].SKU = "" }), then: invalid("sku")},
		{name: "zero quantity", when: with(func(c *domain.PlaceOrder) { c.Lines[2].Quantity = 0 }), then: invalid("quantity")},
		{name: "negative quantity", when: with(func(c *domain.PlaceOrder) { c.Lines[0].Quantity = -2 }), then: invalid("quantity")},
		{name: "quantity above the largest", when: with(func(c *domain.PlaceOrder) { c.Lines[0].Quantity = domain.MaxQuantity + 1 }), then: invalid("quantity")},
		{name: "negative price", when: with(func(c *domain.PlaceOrder) { c.Lines[1].UnitPrice = -1 }), then: invalid("unitPrice")},
		{name: "price above the largest", when: with(func(c *domain.PlaceOrder) { c.Lines[1].UnitPrice = domain.MaxUnitPrice + 1 }), then: invalid("unitPrice")},
		{name: "missing address", when: with(func(c *domain.PlaceOrder) { c.ShippingAddress = domain.Address{} }), then: invalid("shippingAddress.name")},
		{name: "missing name", when: withAddress(func(a *domain.Address) { a.Name = "" }), then: invalid("shippingAddress.name")},
		{name: "blank name", when: withAddress(func(a *domain.Address) { a.Name = "  " }), then: invalid("shippingAddress.name")},
		{name: "missing line 1", when: withAddress(func(a *domain.Address) { a.Line1 = "" }), then: invalid("shippingAddress.line1")},
		{name: "blank line 1", when: withAddress(func(a *domain.Address) { a.Line1 = "\t\n" }), then: invalid("shippingAddress.line1")},
		{name: "missing city", when: withAddress(func(a *domain.Address) { a.City = "" }), then: invalid("shippingAddress.city")},
		{name: "missing postal code", when: withAddress(func(a *domain.Address) { a.PostalCode = "" }), then: invalid("shippingAddress.postalCode")},
		{name: "missing country", when: withAddress(func(a *domain.Address) { a.Country = "" }), then: invalid("shippingAddress.country")},
		{name: "blank country", when: withAddress(func(a *domain.Address) { a.Country = "  " }), then: invalid("shippingAddress.country")},
		{name: "name with a control character", when: withAddress(func(a *domain.Address) { a.Name = "Bo\x00Berg" }), then: invalid("shippingAddress.name")},
		{name: "name starting with a control character", when: withAddress(func(a *domain.Address) { a.Name = "\x00Bo" }), then: invalid("shippingAddress.name")},
		{name: "country with a control character", when: withAddress(func(a *domain.Address) { a.Country = "D\x00" }), then: invalid("shippingAddress.country")},
		{name: "line 1 with a newline inside", when: withAddress(func(a *domain.Address) { a.Line1 = "Hauptstraße 1\nBerlin" }), then: invalid("shippingAddress.line1")},
		{name: "line 2 with a control character", when: withAddress(func(a *domain.Address) { a.Line2 = "Hinter\x1bhaus" }), then: invalid("shippingAddress.line2")},
		{name: "city that is not UTF-8", when: withAddress(func(a *domain.Address) { a.City = "Berl\xffin" }), then: invalid("shippingAddress.city")},
		{name: "postal code with a tab inside", when: withAddress(func(a *domain.Address) { a.PostalCode = "101\t15" }), then: invalid("shippingAddress.postalCode")},
		{name: "name of 201 characters", when: withAddress(func(a *domain.Address) { a.Name = strings.Repeat("ß", 201) }), then: invalid("shippingAddress.name")},
		{name: "line 2 of 201 characters", when: withAddress(func(a *domain.Address) { a.Line2 = strings.Repeat("x", 201) }), then: invalid("shippingAddress.line2")},
		{name: "country in lower case", when: withAddress(func(a *domain.Address) { a.Country = "de" }), then: invalid("shippingAddress.country")},
		{name: "country in mixed case", when: withAddress(func(a *domain.Address) { a.Country = "De" }), then: invalid("shippingAddress.country")},
		{name: "country of one letter", when: withAddress(func(a *domain.Address) { a.Country = "D" }), then: invalid("shippingAddress.country")},
		{name: "country of three letters", when: withAddress(func(a *domain.Address) { a.Country = "DEU" }), then: invalid("shippingAddress.country")},
		{name: "country name", when: withAddress(func(a *domain.Address) { a.Country = "Germany" }), then: invalid("shippingAddress.country")},
		{
			name: "country of two digits", when: withAddress(func(a *domain.Address) { a.Country = "12" }), then: invalid("shippingAddress.country"),
		},
		{
			name: "country of a letter and a digit", when: withAddress(func(a *domain.Address) { a.Country = "D1" }), then: invalid("shippingAddress.country"),
		},
		{
			name: "country of punctuation", when: withAddress(func(a *domain.Address) { a.Country = "!?" }), then: invalid("shippingAddress.country"),
		},
		{
			name: "country of one two-byte upper-case letter", when: withAddress(func(a *domain.Address) { a.Country = "É" }), then: invalid("shippingAddress.country"),
		},
		{
			name: "country of one two-byte letter without an upper case", when: withAddress(func(a *domain.Address) { a.Country = "ß" }), then: invalid("shippingAddress.country"),
		},
		{name: "the order ID is checked first", when: domain.PlaceOrder{}, then: invalid("orderId")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := given[domain.Order](tt.given...).Place(tt.when)
			then(t, events, err, tt.then)
		})
	}
}

// TestOrderPlaceCopiesLines: the event does not share its lines with the command, so that a
// caller reusing its slice cannot change a decided event.
func TestOrderPlaceCopiesLines(t *testing.T) {
	c := placeOrder()
	events, err := domain.Order{}.Place(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 {
		t.Fatalf("events = %#v, want one", events)
	}
	placed := events[0].(domain.OrderPlaced)
	want := append([]domain.OrderLine(nil), c.Lines...)
	c.Lines[0].Quantity, c.Lines[0].SKU = 99, "CHANGED"
	c.Lines = append(c.Lines[:1], domain.OrderLine{SKU: "OTHER", Quantity: 1, UnitPrice: 1})
	if !reflect.DeepEqual(placed.Lines, want) {
		t.Errorf("event lines changed with the command's: %#v, want %#v", placed.Lines, want)
	}
	if placed.Total != 3499 {
		t.Errorf("total = %d, want 3499", placed.Total)
	}
}

// TestOrderPlaceLeavesCommandAddressAlone: trimming the address does not change the command.
func TestOrderPlaceLeavesCommandAddressAlone(t *testing.T) {
	c := placeOrder()
	c.ShippingAddress.Name = "  Bo  "
	if _, err := (domain.Order{}).Place(c); err != nil {
		t.Fatal(err)
	}
	if c.ShippingAddress.Name != "  Bo  " {
		t.Errorf("Place changed the command's address: %q", c.ShippingAddress.Name)
	}
}

func TestOrderConfirm(t *testing.T) {
	confirmed := domain.OrderConfirmed{OrderID: "order-1"}
	tests := []struct {
		name  string
		given []domain.Event
		then  outcome
	}{
		{"a placed order is confirmed", []domain.Event{orderPlaced()}, emits(confirmed)},
		{"confirming a confirmed order changes nothing", []domain.Event{orderPlaced(), confirmed}, noChange()},
		{"a cancelled order cannot be confirmed", []domain.Event{orderPlaced(), domain.OrderCancelled{OrderID: "order-1", Reason: "out-of-stock"}}, fails(domain.ErrOrderState)},
		{"unknown order", nil, fails(domain.ErrNotFound)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := given[domain.Order](tt.given...).Confirm()
			then(t, events, err, tt.then)
		})
	}
}

func TestOrderCancel(t *testing.T) {
	cancelled := func(reason string) domain.Event { return domain.OrderCancelled{OrderID: "order-1", Reason: reason} }
	placed := []domain.Event{orderPlaced()}
	tests := []struct {
		name   string
		given  []domain.Event
		reason string
		then   outcome
	}{
		{name: "a placed order is cancelled", given: placed, reason: "out-of-stock", then: emits(cancelled("out-of-stock"))},
		{name: "one-letter reason", given: placed, reason: "x", then: emits(cancelled("x"))},
		{name: "reason with digits", given: placed, reason: "payment-failed-3ds2", then: emits(cancelled("payment-failed-3ds2"))},
		{name: "reason ending in '-'", given: placed, reason: "a-", then: emits(cancelled("a-"))},
		{name: "reason of 64 characters", given: placed, reason: "a" + strings.Repeat("b", 63), then: emits(cancelled("a" + strings.Repeat("b", 63)))},
		{name: "cancelling a cancelled order changes nothing", given: []domain.Event{orderPlaced(), cancelled("out-of-stock")}, reason: "out-of-stock", then: noChange()},
		{name: "cancelling a cancelled order for another reason changes nothing", given: []domain.Event{orderPlaced(), cancelled("out-of-stock")}, reason: "fraud", then: noChange()},
		{name: "a confirmed order cannot be cancelled", given: []domain.Event{orderPlaced(), domain.OrderConfirmed{OrderID: "order-1"}}, reason: "customer-request", then: fails(domain.ErrOrderState)},
		{name: "unknown order", reason: "out-of-stock", then: fails(domain.ErrNotFound)},
		{name: "empty reason", given: placed, reason: "", then: invalid("reason")},
		{name: "reason with upper case", given: placed, reason: "Out-of-stock", then: invalid("reason")},
		{name: "reason starting with a digit", given: placed, reason: "3ds-failed", then: invalid("reason")},
		{name: "reason starting with '-'", given: placed, reason: "-fraud", then: invalid("reason")},
		{name: "reason with spaces (free text)", given: placed, reason: "customer changed their mind", then: invalid("reason")},
		{name: "reason with '_'", given: placed, reason: "out_of_stock", then: invalid("reason")},
		{name: "reason with '.'", given: placed, reason: "out.of.stock", then: invalid("reason")},
		{name: "reason with a trailing newline", given: placed, reason: "fraud\n", then: invalid("reason")},
		{name: "reason with a leading space", given: placed, reason: " fraud", then: invalid("reason")},
		{name: "reason with a non-ASCII letter", given: placed, reason: "überbucht", then: invalid("reason")},
		{name: "reason of 65 characters", given: placed, reason: "a" + strings.Repeat("b", 64), then: invalid("reason")},
		{name: "invalid reason on a cancelled order", given: []domain.Event{orderPlaced(), cancelled("fraud")}, reason: "Fraud!", then: invalid("reason")},
		{name: "invalid reason on a confirmed order", given: []domain.Event{orderPlaced(), domain.OrderConfirmed{OrderID: "order-1"}}, reason: "", then: invalid("reason")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := given[domain.Order](tt.given...).Cancel(tt.reason)
			then(t, events, err, tt.then)
		})
	}
}

func TestOrderEvolve(t *testing.T) {
	p := orderPlaced()
	placedState := domain.Order{
		ID: "order-1", CustomerID: customerID, PaymentAccountID: "acc-1", Status: domain.OrderStatusPlaced, Currency: "EUR",
		Lines: p.Lines, Total: 3499, ShippingAddress: address(),
	}
	confirmedState := placedState
	confirmedState.Status = domain.OrderStatusConfirmed
	cancelledState := placedState
	cancelledState.Status, cancelledState.CancelReason = domain.OrderStatusCancelled, "out-of-stock"
	tests := []struct {
		name  string
		given []domain.Event
		want  domain.Order
	}{
		{"no events: the order does not exist", nil, domain.Order{}},
		{"placed", []domain.Event{p}, placedState},
		{"confirmed", []domain.Event{p, domain.OrderConfirmed{OrderID: "order-1"}}, confirmedState},
		{"cancelled", []domain.Event{p, domain.OrderCancelled{OrderID: "order-1", Reason: "out-of-stock"}}, cancelledState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := given[domain.Order](tt.given...); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("state =\n\t%#v\nwant\n\t%#v", got, tt.want)
			}
		})
	}
}

// TestOrderLifecycle feeds each decision's events back into the state.
func TestOrderLifecycle(t *testing.T) {
	tests := []struct {
		name       string
		steps      []func(domain.Order) ([]domain.Event, error)
		wantStatus domain.OrderStatus
		wantErr    error // of the last step
	}{
		{
			name: "placed, confirmed, confirmed again",
			steps: []func(domain.Order) ([]domain.Event, error){
				func(o domain.Order) ([]domain.Event, error) { return o.Place(placeOrder()) },
				domain.Order.Confirm,
				domain.Order.Confirm,
			},
			wantStatus: domain.OrderStatusConfirmed,
		},
		{
			name: "placed, cancelled, cancelled again",
			steps: []func(domain.Order) ([]domain.Event, error){
				func(o domain.Order) ([]domain.Event, error) { return o.Place(placeOrder()) },
				func(o domain.Order) ([]domain.Event, error) { return o.Cancel("customer-request") },
				func(o domain.Order) ([]domain.Event, error) { return o.Cancel("customer-request") },
			},
			wantStatus: domain.OrderStatusCancelled,
		},
		{
			name: "placed, confirmed, then cancelled",
			steps: []func(domain.Order) ([]domain.Event, error){
				func(o domain.Order) ([]domain.Event, error) { return o.Place(placeOrder()) },
				domain.Order.Confirm,
				func(o domain.Order) ([]domain.Event, error) { return o.Cancel("too-late") },
			},
			wantStatus: domain.OrderStatusConfirmed,
			wantErr:    domain.ErrOrderState,
		},
		{
			name: "placed, cancelled, then confirmed",
			steps: []func(domain.Order) ([]domain.Event, error){
				func(o domain.Order) ([]domain.Event, error) { return o.Place(placeOrder()) },
				func(o domain.Order) ([]domain.Event, error) { return o.Cancel("fraud") },
				domain.Order.Confirm,
			},
			wantStatus: domain.OrderStatusCancelled,
			wantErr:    domain.ErrOrderState,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o domain.Order
			var err error
			for i, step := range tt.steps {
				var events []domain.Event
				events, err = step(o)
				if err != nil && i < len(tt.steps)-1 {
					t.Fatalf("step %d: %v", i, err)
				}
				for _, e := range events {
					o = o.Evolve(e)
				}
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("last step: error = %v, want %v", err, tt.wantErr)
			}
			if o.Status != tt.wantStatus {
				t.Errorf("status = %q, want %q", o.Status, tt.wantStatus)
			}
			if o.Total != 3499 {
				t.Errorf("total = %d, want 3499", o.Total)
			}
		})
	}
}
