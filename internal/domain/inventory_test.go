package domain_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/eventfold/eventfold/internal/domain"
)

const sku = "SKU-1"

func stockAdded(q int64) domain.Event { return domain.StockAdded{SKU: sku, Quantity: q} }

func reserved(order string, q int64) domain.Event {
	return domain.StockReserved{SKU: sku, OrderID: order, Quantity: q}
}

func released(order string, q int64) domain.Event {
	return domain.StockReleased{SKU: sku, OrderID: order, Quantity: q}
}

func committed(order string, q int64) domain.Event {
	return domain.StockCommitted{SKU: sku, OrderID: order, Quantity: q}
}

func TestItemAddStock(t *testing.T) {
	add := func(q int64) domain.AddStock { return domain.AddStock{SKU: sku, Quantity: q} }
	tests := []struct {
		name  string
		given []domain.Event
		when  domain.AddStock
		then  outcome
	}{
		{name: "first stock creates the item", when: add(10), then: emits(stockAdded(10))},
		{name: "more stock", given: []domain.Event{stockAdded(10)}, when: add(5), then: emits(stockAdded(5))},
		{name: "more stock while some is reserved", given: []domain.Event{stockAdded(10), reserved("o-1", 10)}, when: add(1), then: emits(stockAdded(1))},
		{name: "quantity of one", when: add(1), then: emits(stockAdded(1))},
		{name: "largest quantity", when: add(domain.MaxQuantity), then: emits(stockAdded(domain.MaxQuantity))},
		{name: "one-character SKU", when: domain.AddStock{SKU: "A", Quantity: 1}, then: emits(domain.StockAdded{SKU: "A", Quantity: 1})},
		{name: "SKU with '.', '_' and '-'", when: domain.AddStock{SKU: "a1.B2_c3-D4", Quantity: 1}, then: emits(domain.StockAdded{SKU: "a1.B2_c3-D4", Quantity: 1})},
		{name: "SKU starting with a digit", when: domain.AddStock{SKU: "9abc", Quantity: 1}, then: emits(domain.StockAdded{SKU: "9abc", Quantity: 1})},
		{name: "SKU of 64 characters", when: domain.AddStock{SKU: strings.Repeat("x", 64), Quantity: 1}, then: emits(domain.StockAdded{SKU: strings.Repeat("x", 64), Quantity: 1})},
		{name: "stock up to exactly the largest on hand", given: []domain.Event{stockAdded(domain.MaxOnHand - 5)}, when: add(5), then: emits(stockAdded(5))},
		{name: "stock one past the largest on hand", given: []domain.Event{stockAdded(domain.MaxOnHand - 5)}, when: add(6), then: fails(domain.ErrStockOverflow)},
		{name: "stock onto the largest on hand", given: []domain.Event{stockAdded(domain.MaxOnHand)}, when: add(1), then: fails(domain.ErrStockOverflow)},
		{name: "stock after a commit made room", given: []domain.Event{stockAdded(domain.MaxOnHand), reserved("o-1", 3), committed("o-1", 3)}, when: add(3), then: emits(stockAdded(3))},
		{name: "zero quantity", when: add(0), then: invalid("quantity")},
		{name: "negative quantity", when: add(-1), then: invalid("quantity")},
		{name: "quantity above the largest", when: add(domain.MaxQuantity + 1), then: invalid("quantity")},
		{name: "empty SKU", when: domain.AddStock{Quantity: 1}, then: invalid("sku")},
		{name: "SKU starting with '-'", when: domain.AddStock{SKU: "-abc", Quantity: 1}, then: invalid("sku")},
		{name: "SKU starting with '.'", when: domain.AddStock{SKU: ".abc", Quantity: 1}, then: invalid("sku")},
		{name: "SKU starting with '_'", when: domain.AddStock{SKU: "_abc", Quantity: 1}, then: invalid("sku")},
		{name: "SKU of 65 characters", when: domain.AddStock{SKU: strings.Repeat("x", 65), Quantity: 1}, then: invalid("sku")},
		{name: "SKU with a space", when: domain.AddStock{SKU: "ab c", Quantity: 1}, then: invalid("sku")},
		{name: "SKU with a slash", when: domain.AddStock{SKU: "ab/c", Quantity: 1}, then: invalid("sku")},
		{name: "SKU with a non-ASCII letter", when: domain.AddStock{SKU: "äbc", Quantity: 1}, then: invalid("sku")},
		{name: "SKU with a trailing newline", when: domain.AddStock{SKU: "abc\n", Quantity: 1}, then: invalid("sku")},
		{name: "SKU with surrounding spaces", when: domain.AddStock{SKU: " abc ", Quantity: 1}, then: invalid("sku")},
		{name: "SKU is checked before the quantity", when: domain.AddStock{SKU: "", Quantity: 0}, then: invalid("sku")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := given[domain.Item](tt.given...).AddStock(tt.when)
			then(t, events, err, tt.then)
		})
	}
}

func TestValidSKU(t *testing.T) {
	for _, s := range []string{"A", "z", "0", "SKU-1", "a.b_c-d", strings.Repeat("9", 64)} {
		if err := domain.ValidSKU(s); err != nil {
			t.Errorf("ValidSKU(%q) = %v, want nil", s, err)
		}
	}
	for _, s := range []string{"", "-", ".a", "_a", "a b", "a\tb", "a+b", "a#b", "ß", strings.Repeat("9", 65), "a\n"} {
		t.Run(s, func(t *testing.T) {
			thenInvalidField(t, domain.ValidSKU(s), "sku")
		})
	}
}

func TestItemReserve(t *testing.T) {
	reserve := func(order string, q int64) domain.Reserve { return domain.Reserve{OrderID: order, Quantity: q} }
	tests := []struct {
		name  string
		given []domain.Event
		when  domain.Reserve
		then  outcome
	}{
		{name: "reserve part of the stock", given: []domain.Event{stockAdded(10)}, when: reserve("o-1", 3), then: emits(reserved("o-1", 3))},
		{name: "reserve exactly what is available", given: []domain.Event{stockAdded(10)}, when: reserve("o-1", 10), then: emits(reserved("o-1", 10))},
		{name: "reserve one more than is available", given: []domain.Event{stockAdded(10)}, when: reserve("o-1", 11), then: fails(domain.ErrInsufficientStock)},
		{name: "reserve what others left", given: []domain.Event{stockAdded(10), reserved("o-1", 6)}, when: reserve("o-2", 4), then: emits(reserved("o-2", 4))},
		{name: "reserve more than others left", given: []domain.Event{stockAdded(10), reserved("o-1", 6)}, when: reserve("o-2", 5), then: fails(domain.ErrInsufficientStock)},
		{name: "reserve when everything is reserved", given: []domain.Event{stockAdded(10), reserved("o-1", 4), reserved("o-2", 6)}, when: reserve("o-3", 1), then: fails(domain.ErrInsufficientStock)},
		{name: "reserve what a release gave back", given: []domain.Event{stockAdded(10), reserved("o-1", 10), released("o-1", 10)}, when: reserve("o-2", 10), then: emits(reserved("o-2", 10))},
		{name: "reserve after a commit took stock", given: []domain.Event{stockAdded(10), reserved("o-1", 7), committed("o-1", 7)}, when: reserve("o-2", 4), then: fails(domain.ErrInsufficientStock)},
		{name: "reserve the rest after a commit", given: []domain.Event{stockAdded(10), reserved("o-1", 7), committed("o-1", 7)}, when: reserve("o-2", 3), then: emits(reserved("o-2", 3))},
		{name: "reserve from an item never stocked", when: reserve("o-1", 1), then: fails(domain.ErrInsufficientStock)},
		{name: "same order reserving twice changes nothing", given: []domain.Event{stockAdded(10), reserved("o-1", 3)}, when: reserve("o-1", 3), then: noChange()},
		{name: "same order reserving twice, another quantity, changes nothing", given: []domain.Event{stockAdded(10), reserved("o-1", 3)}, when: reserve("o-1", 5), then: noChange()},
		{name: "same order reserving twice when nothing is left changes nothing", given: []domain.Event{stockAdded(3), reserved("o-1", 3)}, when: reserve("o-1", 3), then: noChange()},
		{name: "same order reserving more than there is changes nothing", given: []domain.Event{stockAdded(3), reserved("o-1", 3)}, when: reserve("o-1", 100), then: noChange()},
		{name: "empty order ID", given: []domain.Event{stockAdded(10)}, when: reserve("", 1), then: invalid("orderId")},
		{name: "zero quantity", given: []domain.Event{stockAdded(10)}, when: reserve("o-1", 0), then: invalid("quantity")},
		{name: "negative quantity", given: []domain.Event{stockAdded(10)}, when: reserve("o-1", -1), then: invalid("quantity")},
		{name: "quantity above the largest", given: []domain.Event{stockAdded(domain.MaxOnHand)}, when: reserve("o-1", domain.MaxQuantity+1), then: invalid("quantity")},
		{name: "largest quantity", given: []domain.Event{stockAdded(domain.MaxQuantity)}, when: reserve("o-1", domain.MaxQuantity), then: emits(reserved("o-1", domain.MaxQuantity))},
		{name: "an invalid quantity is refused even when the order holds a reservation", given: []domain.Event{stockAdded(10), reserved("o-1", 3)}, when: reserve("o-1", 0), then: invalid("quantity")},
		{name: "a released order cannot reserve again", given: []domain.Event{stockAdded(10), reserved("o-1", 3), released("o-1", 3)}, when: reserve("o-1", 3), then: noChange()},
		{name: "a committed order cannot reserve again", given: []domain.Event{stockAdded(10), reserved("o-1", 3), committed("o-1", 3)}, when: reserve("o-1", 3), then: noChange()},
		{name: "an order released before it reserved cannot reserve", given: []domain.Event{stockAdded(10), released("o-1", 0)}, when: reserve("o-1", 3), then: noChange()},
		{name: "a settled order cannot reserve even when stock is short", given: []domain.Event{stockAdded(3), reserved("o-1", 3), committed("o-1", 3)}, when: reserve("o-1", 5), then: noChange()},
		{name: "another order's settlement does not stop a reservation", given: []domain.Event{stockAdded(10), reserved("o-2", 3), released("o-2", 3)}, when: reserve("o-1", 3), then: emits(reserved("o-1", 3))},
		{name: "a settled order's invalid quantity is still invalid", given: []domain.Event{stockAdded(10), reserved("o-1", 3), released("o-1", 3)}, when: reserve("o-1", 0), then: invalid("quantity")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			item := given[domain.Item](tt.given...)
			before := maps.Clone(item.Reservations)
			events, err := item.Reserve(tt.when)
			then(t, events, err, tt.then)
			if !maps.Equal(item.Reservations, before) {
				t.Errorf("Reserve changed the state's reservations: %v, was %v", item.Reservations, before)
			}
			after := item
			for _, e := range events {
				after = after.Evolve(e)
			}
			if after.Available() < 0 {
				t.Errorf("available = %d after the decision, below zero", after.Available())
			}
		})
	}
}

func TestItemRelease(t *testing.T) {
	tests := []struct {
		name  string
		given []domain.Event
		when  string
		then  outcome
	}{
		{name: "release a reservation", given: []domain.Event{stockAdded(10), reserved("o-1", 3)}, when: "o-1", then: emits(released("o-1", 3))},
		{name: "release one of two reservations", given: []domain.Event{stockAdded(10), reserved("o-1", 3), reserved("o-2", 4)}, when: "o-2", then: emits(released("o-2", 4))},
		{name: "release without a reservation settles the order: a later reserve cannot land", given: []domain.Event{stockAdded(10)}, when: "o-1", then: emits(released("o-1", 0))},
		{name: "release of an order another order's reservation is beside", given: []domain.Event{stockAdded(10), reserved("o-2", 3)}, when: "o-1", then: emits(released("o-1", 0))},
		{name: "release twice changes nothing", given: []domain.Event{stockAdded(10), reserved("o-1", 3), released("o-1", 3)}, when: "o-1", then: noChange()},
		{name: "release twice without a reservation changes nothing", given: []domain.Event{stockAdded(10), released("o-1", 0)}, when: "o-1", then: noChange()},
		{name: "release after commit changes nothing", given: []domain.Event{stockAdded(10), reserved("o-1", 3), committed("o-1", 3)}, when: "o-1", then: noChange()},
		{name: "release on an item never stocked changes nothing", when: "o-1", then: noChange()},
		{name: "release with an empty order ID", given: []domain.Event{stockAdded(10), reserved("o-1", 3)}, when: "", then: invalid("orderId")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := given[domain.Item](tt.given...).Release(tt.when)
			then(t, events, err, tt.then)
		})
	}
}

func TestItemCommit(t *testing.T) {
	tests := []struct {
		name  string
		given []domain.Event
		when  string
		then  outcome
	}{
		{name: "commit a reservation", given: []domain.Event{stockAdded(10), reserved("o-1", 3)}, when: "o-1", then: emits(committed("o-1", 3))},
		{name: "commit one of two reservations", given: []domain.Event{stockAdded(10), reserved("o-1", 3), reserved("o-2", 7)}, when: "o-2", then: emits(committed("o-2", 7))},
		{name: "commit without a reservation changes nothing", given: []domain.Event{stockAdded(10)}, when: "o-1", then: noChange()},
		{name: "commit another order's reservation changes nothing", given: []domain.Event{stockAdded(10), reserved("o-2", 3)}, when: "o-1", then: noChange()},
		{name: "commit after release changes nothing", given: []domain.Event{stockAdded(10), reserved("o-1", 3), released("o-1", 3)}, when: "o-1", then: noChange()},
		{name: "commit twice changes nothing", given: []domain.Event{stockAdded(10), reserved("o-1", 3), committed("o-1", 3)}, when: "o-1", then: noChange()},
		{name: "commit on an item never stocked changes nothing", when: "o-1", then: noChange()},
		{name: "commit with an empty order ID", given: []domain.Event{stockAdded(10), reserved("o-1", 3)}, when: "", then: invalid("orderId")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := given[domain.Item](tt.given...).Commit(tt.when)
			then(t, events, err, tt.then)
		})
	}
}

func TestItemEvolve(t *testing.T) {
	tests := []struct {
		name         string
		given        []domain.Event
		onHand       int64
		reserved     int64
		available    int64
		reservations map[string]int64
	}{
		{"no events", nil, 0, 0, 0, nil},
		{"stock added twice", []domain.Event{stockAdded(10), stockAdded(5)}, 15, 0, 15, nil},
		{"reserved", []domain.Event{stockAdded(10), reserved("o-1", 3)}, 10, 3, 7, map[string]int64{"o-1": 3}},
		{"reserved twice", []domain.Event{stockAdded(10), reserved("o-1", 3), reserved("o-2", 4)}, 10, 7, 3, map[string]int64{"o-1": 3, "o-2": 4}},
		{"released", []domain.Event{stockAdded(10), reserved("o-1", 3), reserved("o-2", 4), released("o-1", 3)}, 10, 4, 6, map[string]int64{"o-2": 4}},
		{"committed: on hand and reserved both drop", []domain.Event{stockAdded(10), reserved("o-1", 3), reserved("o-2", 4), committed("o-2", 4)}, 6, 3, 3, map[string]int64{"o-1": 3}},
		{"everything committed", []domain.Event{stockAdded(10), reserved("o-1", 10), committed("o-1", 10)}, 0, 0, 0, map[string]int64{}},
		{"released before reserving: nothing moves", []domain.Event{stockAdded(10), released("o-1", 0)}, 10, 0, 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := given[domain.Item](tt.given...)
			if got.OnHand != tt.onHand || got.Reserved != tt.reserved || got.Available() != tt.available {
				t.Errorf("on hand %d, reserved %d, available %d; want %d, %d, %d",
					got.OnHand, got.Reserved, got.Available(), tt.onHand, tt.reserved, tt.available)
			}
			if !maps.Equal(got.Reservations, tt.reservations) {
				t.Errorf("reservations = %v, want %v", got.Reservations, tt.reservations)
			}
			if len(tt.given) > 0 && got.SKU != sku {
				t.Errorf("SKU = %q, want %q", got.SKU, sku)
			}
			var sum int64
			for _, q := range got.Reservations {
				sum += q
			}
			if sum != got.Reserved {
				t.Errorf("reservations sum to %d, but Reserved is %d", sum, got.Reserved)
			}
		})
	}
}

// TestItemEvolveSettles: a release or a commit settles the order on the item, a reservation
// does not; settling copies the map, so earlier states keep theirs.
func TestItemEvolveSettles(t *testing.T) {
	s0 := given[domain.Item](stockAdded(10), reserved("o-1", 3), reserved("o-2", 3))
	s1 := s0.Evolve(released("o-1", 3))
	s2 := s1.Evolve(committed("o-2", 3))
	s3 := s2.Evolve(released("o-3", 0))
	branch := s1.Evolve(released("o-b", 0))
	for _, c := range []struct {
		name string
		got  map[string]bool
		want map[string]bool
	}{
		{"reserved only", s0.Settled, nil},
		{"released", s1.Settled, map[string]bool{"o-1": true}},
		{"committed", s2.Settled, map[string]bool{"o-1": true, "o-2": true}},
		{"released without a reservation", s3.Settled, map[string]bool{"o-1": true, "o-2": true, "o-3": true}},
		{"a branch", branch.Settled, map[string]bool{"o-1": true, "o-b": true}},
	} {
		if !maps.Equal(c.got, c.want) {
			t.Errorf("%s: settled = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestItemEvolveKeepsEarlierStates: evolving a state further never changes the Reservations map
// of a state taken earlier.
func TestItemEvolveKeepsEarlierStates(t *testing.T) {
	s0 := given[domain.Item](stockAdded(100))
	s1 := s0.Evolve(reserved("o-1", 10))
	s1Want := maps.Clone(s1.Reservations)
	s2 := s1.Evolve(reserved("o-2", 20))
	s2Want := maps.Clone(s2.Reservations)
	s3 := s2.Evolve(released("o-1", 10))
	s3Want := maps.Clone(s3.Reservations)
	s4 := s3.Evolve(committed("o-2", 20))
	s5 := s4.Evolve(reserved("o-3", 5))

	checks := []struct {
		name string
		got  map[string]int64
		want map[string]int64
	}{
		{"before any reservation", s0.Reservations, nil},
		{"after reserving o-1", s1.Reservations, map[string]int64{"o-1": 10}},
		{"after reserving o-2", s2.Reservations, map[string]int64{"o-1": 10, "o-2": 20}},
		{"after releasing o-1", s3.Reservations, map[string]int64{"o-2": 20}},
		{"after committing o-2", s4.Reservations, map[string]int64{}},
		{"after reserving o-3", s5.Reservations, map[string]int64{"o-3": 5}},
		{"snapshot 1", s1.Reservations, s1Want},
		{"snapshot 2", s2.Reservations, s2Want},
		{"snapshot 3", s3.Reservations, s3Want},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !maps.Equal(c.got, c.want) {
				t.Errorf("reservations = %v, want %v", c.got, c.want)
			}
		})
	}
	if s1.Reserved != 10 || s2.Reserved != 30 || s3.Reserved != 20 || s4.Reserved != 0 || s4.OnHand != 80 || s5.Reserved != 5 {
		t.Errorf("counters changed: s1 %+v, s2 %+v, s3 %+v, s4 %+v, s5 %+v", s1, s2, s3, s4, s5)
	}

	// Branching from the same state: two futures do not see each other.
	a := s1.Evolve(reserved("o-a", 1))
	b := s1.Evolve(reserved("o-b", 2))
	if _, ok := a.Reservations["o-b"]; ok {
		t.Errorf("branch a sees branch b's reservation: %v", a.Reservations)
	}
	if _, ok := b.Reservations["o-a"]; ok {
		t.Errorf("branch b sees branch a's reservation: %v", b.Reservations)
	}
	if !maps.Equal(s1.Reservations, s1Want) {
		t.Errorf("branching changed the shared state: %v, want %v", s1.Reservations, s1Want)
	}
}

// TestItemLifecycle feeds each decision's events back into the state.
func TestItemLifecycle(t *testing.T) {
	var item domain.Item
	apply := func(events []domain.Event, err error) error {
		t.Helper()
		for _, e := range events {
			item = item.Evolve(e)
		}
		return err
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(apply(item.AddStock(domain.AddStock{SKU: sku, Quantity: 10})))
	must(apply(item.Reserve(domain.Reserve{OrderID: "o-1", Quantity: 4})))
	must(apply(item.Reserve(domain.Reserve{OrderID: "o-1", Quantity: 4}))) // retried
	must(apply(item.Reserve(domain.Reserve{OrderID: "o-2", Quantity: 6})))
	if err := apply(item.Reserve(domain.Reserve{OrderID: "o-3", Quantity: 1})); err == nil {
		t.Fatal("reserved beyond the stock")
	}
	must(apply(item.Commit("o-1")))
	must(apply(item.Release("o-2")))
	must(apply(item.Release("o-2")))                                       // retried
	must(apply(item.Commit("o-1")))                                        // retried
	must(apply(item.Release("o-4")))                                       // before its reserve
	must(apply(item.Reserve(domain.Reserve{OrderID: "o-4", Quantity: 1}))) // late
	must(apply(item.Reserve(domain.Reserve{OrderID: "o-2", Quantity: 6}))) // stale
	if item.OnHand != 6 || item.Reserved != 0 || item.Available() != 6 || len(item.Reservations) != 0 {
		t.Fatalf("state = %+v, want 6 on hand, nothing reserved", item)
	}
	if want := map[string]bool{"o-1": true, "o-2": true, "o-4": true}; !maps.Equal(item.Settled, want) {
		t.Fatalf("settled = %v, want %v", item.Settled, want)
	}
}

func TestAddStockRefusesAnotherSKU(t *testing.T) {
	item := given[domain.Item](domain.StockAdded{SKU: "A", Quantity: 1})
	events, err := item.AddStock(domain.AddStock{SKU: "B", Quantity: 1})
	then(t, events, err, invalid("sku"))
}

func TestEvolveOfARepeatedReservationKeepsTotalsConsistent(t *testing.T) {
	item := given[domain.Item](
		domain.StockAdded{SKU: "A", Quantity: 10},
		domain.StockReserved{SKU: "A", OrderID: "o1", Quantity: 3},
		domain.StockReserved{SKU: "A", OrderID: "o1", Quantity: 4},
	)
	if item.Reserved != 4 || item.Reservations["o1"] != 4 {
		t.Fatalf("reserved %d, reservation %d; want both 4", item.Reserved, item.Reservations["o1"])
	}
}
