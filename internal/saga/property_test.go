package saga_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/domain"
)

// TestSagaRandomWorkloads runs random workloads: many customers, accounts and SKUs; orders
// competing for scarce stock and funds, all placed at once; deliveries by several workers,
// reordered across streams, duplicated and replayed; crashes after saga writes. At the end:
// every order is confirmed or cancelled; stock was never oversold (available never below zero
// at any version; committed units equal the confirmed orders' quantities); money is conserved
// (each confirmed order charged its total once, each cancelled one's net charge zero); no
// finished order holds a reservation; and no effect happened twice.
func TestSagaRandomWorkloads(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 3
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { randomWorkload(t, seed) })
	}
}

func randomWorkload(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 11))
	w := newWorld(t)
	const skus, accounts, orders = 5, 6, 30
	customers := []string{customer, "01J9ZQ4T8K5W3X2Y1V0B6N7M8D", "01J9ZQ4T8K5W3X2Y1V0B6N7M8E"}
	for i := range skus {
		w.stock(fmt.Sprint("S", i), int64(2+r.IntN(5)))
	}
	owner := map[string]string{}
	for i := range accounts {
		id := fmt.Sprint("acc", i)
		owner[id] = customers[i%len(customers)]
		w.account(id, owner[id], int64(r.IntN(1200)))
	}
	type placed struct {
		id, account string
		lines       map[string]int64
		total       int64
	}
	var all []placed
	for i := range orders {
		p := placed{id: fmt.Sprint("o", i), account: fmt.Sprint("acc", r.IntN(accounts)), lines: map[string]int64{}}
		var lines []domain.OrderLine
		for _, s := range r.Perm(skus)[:1+r.IntN(3)] {
			q := int64(1 + r.IntN(2))
			lines = append(lines, domain.OrderLine{SKU: fmt.Sprint("S", s), Quantity: q, UnitPrice: 100})
			p.lines[fmt.Sprint("S", s)], p.total = q, p.total+q*100
		}
		// Most orders pay from their customer's own account; some name another's.
		cust := owner[p.account]
		if r.IntN(6) == 0 {
			cust = customers[(slices.Index(customers, cust)+1)%len(customers)]
		}
		w.orderOf(p.id, cust, p.account, lines)
		all = append(all, p)
	}
	w.st.crashRate(r.Uint64(), 0.05)

	// Several workers deliver; each takes one of the first few undelivered events (reordering
	// across streams), sometimes one already delivered (a duplicate or a replay). A failed
	// delivery stays undelivered and is made again, by another instance.
	var mu sync.Mutex
	delivered := map[int]bool{}
	var wg sync.WaitGroup
	for worker := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wr := rand.New(rand.NewPCG(seed, uint64(worker)))
			s := w.saga()
			for range 5000 {
				all := w.consumed()
				mu.Lock()
				var open []int
				for i := range all {
					if !delivered[i] {
						open = append(open, i)
					}
				}
				mu.Unlock()
				if len(open) == 0 {
					return
				}
				i := open[wr.IntN(min(len(open), 4))]
				if wr.IntN(5) == 0 {
					i = wr.IntN(len(all))
				}
				if err := s.Apply(context.Background(), all[i]); err != nil {
					s = w.saga()
					continue
				}
				mu.Lock()
				delivered[i] = true
				mu.Unlock()
			}
			t.Error("deliveries did not settle")
		}()
	}
	// Time passes: at a random moment the clock jumps past every deadline set so far, and the
	// scheduler fires them, some twice; the runs not yet charged compensate, with whatever
	// replies are still on the wire.
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(time.Duration(r.IntN(30)) * time.Millisecond)
		w.clock.advance(16 * time.Minute)
		s := w.saga()
		for _, name := range w.deadlines.names() {
			for range 1 + int(seed%2) {
				if err := w.fireIfSet(s, name); err != nil {
					s = w.saga() // a crash: the scheduler retries the firing
					_ = w.fireIfSet(s, name)
				}
			}
		}
	}()
	wg.Wait()
	w.st.crashRate(0, 0)
	w.drain() // what a worker's last crash left undelivered

	committed := map[string]int64{}
	outcomes := map[string]int{}
	defer func() { t.Logf("outcomes: %v", outcomes) }()
	for _, p := range all {
		f := w.run(p.id)
		o := w.orderState(p.id)
		if !f.Finished() {
			t.Fatalf("%s: run %s not finished", p.id, f.Step)
		}
		charged, refunded := w.money(p.id)
		outcomes[string(o.Status)+" "+o.CancelReason]++
		switch o.Status {
		case domain.OrderStatusConfirmed:
			if f.Step != domain.StepConfirmed || charged != p.total || refunded != 0 {
				t.Errorf("%s confirmed: run %s, charged %d refunded %d, total %d", p.id, f.Step, charged, refunded, p.total)
			}
			for sku, q := range p.lines {
				committed[sku] += q
			}
		case domain.OrderStatusCancelled:
			if f.Step != domain.StepCancelled || charged != refunded {
				t.Errorf("%s cancelled (%s): run %s, charged %d refunded %d", p.id, o.CancelReason, f.Step, charged, refunded)
			}
		default:
			t.Errorf("%s: order %s", p.id, o.Status)
		}
		w.exactlyOnce(p.id)
	}
	for i := range skus {
		sku := fmt.Sprint("S", i)
		var it domain.Item
		var added, out int64
		for _, e := range w.load("inventory-" + sku) {
			it = it.Evolve(e)
			if it.Available() < 0 {
				t.Fatalf("%s oversold: available %d", sku, it.Available())
			}
			switch e := e.(type) {
			case domain.StockAdded:
				added += e.Quantity
			case domain.StockCommitted:
				out += e.Quantity
			}
		}
		if len(it.Reservations) != 0 || it.Reserved != 0 {
			t.Errorf("%s: reservations %v held after every run finished", sku, it.Reservations)
		}
		if out != committed[sku] || it.OnHand != added-out {
			t.Errorf("%s: committed %d, confirmed orders hold %d; on hand %d", sku, out, committed[sku], it.OnHand)
		}
	}
}

// money sums the order's charges and refunds over every account.
func (w *world) money(orderID string) (charged, refunded int64) {
	for _, e := range w.st.log() {
		if e.Type != domain.TypeAccountCharged && e.Type != domain.TypeAccountRefunded {
			continue
		}
		de, err := domain.Decode(e.Type, e.Data)
		if err != nil {
			w.t.Fatal(err)
		}
		switch de := de.(type) {
		case domain.AccountCharged:
			if de.OrderID == orderID {
				charged += de.Amount
			}
		case domain.AccountRefunded:
			if de.OrderID == orderID {
				refunded += de.Amount
			}
		}
	}
	return charged, refunded
}
