package domain

import (
	"maps"
	"regexp"
)

// Inventory event types.
const (
	TypeStockAdded     = "StockAdded"
	TypeStockReserved  = "StockReserved"
	TypeStockReleased  = "StockReleased"
	TypeStockCommitted = "StockCommitted"
)

// StockAdded: units of a SKU arrived.
type StockAdded struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// StockReserved: units were set aside for an order.
type StockReserved struct {
	SKU      string `json:"sku"`
	OrderID  string `json:"orderId"`
	Quantity int64  `json:"quantity"`
}

// StockReleased: an order's reservation was given back.
type StockReleased struct {
	SKU      string `json:"sku"`
	OrderID  string `json:"orderId"`
	Quantity int64  `json:"quantity"`
}

// StockCommitted: an order's reserved units left the stock for good.
type StockCommitted struct {
	SKU      string `json:"sku"`
	OrderID  string `json:"orderId"`
	Quantity int64  `json:"quantity"`
}

func (StockAdded) EventType() string     { return TypeStockAdded }
func (StockReserved) EventType() string  { return TypeStockReserved }
func (StockReleased) EventType() string  { return TypeStockReleased }
func (StockCommitted) EventType() string { return TypeStockCommitted }

// Item is the state of an inventory item aggregate, one per SKU.
type Item struct {
	SKU      string
	OnHand   int64
	Reserved int64
	// Reservations maps order IDs to the quantity reserved for them. Evolve copies it before a
	// change, so earlier states stay as they were.
	Reservations map[string]int64
	// Settled holds the orders whose reservation of this item was released or committed (or
	// released before it was made): they cannot reserve it again. Copied on change like
	// Reservations.
	Settled map[string]bool
}

// Available is what can still be reserved.
func (i Item) Available() int64 { return i.OnHand - i.Reserved }

// Evolve returns the item after e.
func (i Item) Evolve(e Event) Item {
	switch e := e.(type) {
	case StockAdded:
		i.SKU = e.SKU
		i.OnHand += e.Quantity
	case StockReserved:
		i.Reservations = maps.Clone(i.Reservations)
		if i.Reservations == nil {
			i.Reservations = map[string]int64{}
		}
		i.Reserved += e.Quantity - i.Reservations[e.OrderID]
		i.Reservations[e.OrderID] = e.Quantity
	case StockReleased:
		i.Reservations = maps.Clone(i.Reservations)
		delete(i.Reservations, e.OrderID)
		i.Reserved -= e.Quantity
		i.Settled = settle(i.Settled, e.OrderID)
	case StockCommitted:
		i.Reservations = maps.Clone(i.Reservations)
		delete(i.Reservations, e.OrderID)
		i.Reserved -= e.Quantity
		i.OnHand -= e.Quantity
		i.Settled = settle(i.Settled, e.OrderID)
	}
	return i
}

// settle returns a copy of settled with orderID in it.
func settle(settled map[string]bool, orderID string) map[string]bool {
	settled = maps.Clone(settled)
	if settled == nil {
		settled = map[string]bool{}
	}
	settled[orderID] = true
	return settled
}

var skuPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidSKU reports a *ValidationError unless sku is a SKU: letters, digits, . _ -, at most 64.
func ValidSKU(sku string) error {
	if !skuPattern.MatchString(sku) {
		return invalid("sku", "must be 1 to 64 letters, digits, '.', '_' or '-'")
	}
	return nil
}

// MaxQuantity bounds every quantity, so sums of them cannot overflow.
const MaxQuantity = 1_000_000_000

// MaxOnHand bounds the stock of one item.
const MaxOnHand = 1 << 50

func validQuantity(q int64) error {
	if q <= 0 || q > MaxQuantity {
		return invalid("quantity", "must be from 1 to 1000000000")
	}
	return nil
}

// AddStock adds units of a SKU; the item exists from its first stock.
type AddStock struct {
	SKU      string
	Quantity int64
}

// AddStock decides AddStock.
func (i Item) AddStock(c AddStock) ([]Event, error) {
	if err := ValidSKU(c.SKU); err != nil {
		return nil, err
	}
	if i.SKU != "" && c.SKU != i.SKU {
		return nil, invalid("sku", "is not this item's SKU")
	}
	if err := validQuantity(c.Quantity); err != nil {
		return nil, err
	}
	if i.OnHand > MaxOnHand-c.Quantity {
		return nil, ErrStockOverflow
	}
	return []Event{StockAdded{SKU: c.SKU, Quantity: c.Quantity}}, nil
}

// Reserve sets units aside for an order.
type Reserve struct {
	OrderID  string
	Quantity int64
}

// Reserve decides Reserve: never below zero available; an order that already holds a
// reservation of this item changes nothing, whatever quantity it asks for now, and so does an
// order whose reservation was settled (released or committed): a stale or repeated Reserve that
// lands after the release or commit cannot reserve again.
func (i Item) Reserve(c Reserve) ([]Event, error) {
	if c.OrderID == "" {
		return nil, invalid("orderId", "is required")
	}
	if err := validQuantity(c.Quantity); err != nil {
		return nil, err
	}
	if _, ok := i.Reservations[c.OrderID]; ok || i.Settled[c.OrderID] {
		return nil, nil
	}
	if c.Quantity > i.Available() {
		return nil, ErrInsufficientStock
	}
	return []Event{StockReserved{SKU: i.SKU, OrderID: c.OrderID, Quantity: c.Quantity}}, nil
}

// Release gives an order's reservation back, and settles the order on this item: it cannot
// reserve it again. An order without a reservation that is not settled yet is settled too, by a
// StockReleased of quantity 0, so that a Reserve still on its way (a racing or late one) cannot
// land after the release; one already settled, or an item never stocked (nothing can be
// reserved from it), changes nothing.
func (i Item) Release(orderID string) ([]Event, error) {
	if orderID == "" {
		return nil, invalid("orderId", "is required")
	}
	q, ok := i.Reservations[orderID]
	if !ok && (i.Settled[orderID] || i.SKU == "") {
		return nil, nil
	}
	return []Event{StockReleased{SKU: i.SKU, OrderID: orderID, Quantity: q}}, nil
}

// Commit takes an order's reserved units out of stock for good, and settles the order on this
// item. Without a reservation (never reserved, released, or committed already) it changes
// nothing.
func (i Item) Commit(orderID string) ([]Event, error) {
	if orderID == "" {
		return nil, invalid("orderId", "is required")
	}
	q, ok := i.Reservations[orderID]
	if !ok {
		return nil, nil
	}
	return []Event{StockCommitted{SKU: i.SKU, OrderID: orderID, Quantity: q}}, nil
}
