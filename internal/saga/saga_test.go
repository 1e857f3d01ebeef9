package saga_test

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/saga"
	"github.com/eventfold/eventfold/internal/store"
)

// A scenario sets up a world with one order and says how its run must end.
type scenario struct {
	name  string
	setup func(w *world)
	check func(t *testing.T, w *world)
}

func scenarios() []scenario {
	const order = "o1"
	confirmed := func(t *testing.T, w *world) {
		t.Helper()
		if f := w.run(order); f.Step != domain.StepConfirmed || !f.Finished() {
			t.Fatalf("run step %s, finished %v", f.Step, f.Finished())
		}
		if o := w.orderState(order); o.Status != domain.OrderStatusConfirmed {
			t.Fatalf("order %s", o.Status)
		}
		for _, sku := range []string{"A", "B"} {
			if i := w.item(sku); i.OnHand != 4 || i.Reserved != 0 {
				t.Fatalf("%s: on hand %d reserved %d, want 4 and 0", sku, i.OnHand, i.Reserved)
			}
		}
		if a := w.acct("acc"); a.Balance != 800 {
			t.Fatalf("balance %d, want 800", a.Balance)
		}
		// Its deadline is cancelled; but a redelivery racing the run may have set it again
		// after the cancel, deciding on the run as it was. Then it fires, and changes nothing.
		if _, ok := w.deadlines.get("fulfilment-" + order); ok {
			writes := w.st.writes
			if err := w.fire(w.saga(), "fulfilment-"+order); err != nil || w.st.writes != writes {
				t.Fatalf("the deadline of a confirmed run fired: %v, %d writes", err, w.st.writes-writes)
			}
		}
	}
	cancelled := func(reason string, balance int64) func(*testing.T, *world) {
		return func(t *testing.T, w *world) {
			t.Helper()
			if f := w.run(order); f.Step != domain.StepCancelled || !f.Finished() || f.Reason != reason {
				t.Fatalf("run step %s (%s), finished %v; want cancelled (%s)", f.Step, f.Reason, f.Finished(), reason)
			}
			if o := w.orderState(order); o.Status != domain.OrderStatusCancelled || o.CancelReason != reason {
				t.Fatalf("order %s (%s)", o.Status, o.CancelReason)
			}
			for _, sku := range []string{"A", "B"} {
				if q, held := w.item(sku).Reservations[order]; held {
					t.Fatalf("%s: %d reserved after cancel", sku, q)
				}
			}
			if a := w.acct("acc"); a.Open && a.Balance != balance {
				t.Fatalf("balance %d, want %d", a.Balance, balance)
			}
		}
	}
	return []scenario{
		{"confirmed", func(w *world) {
			w.stock("A", 5)
			w.stock("B", 5)
			w.account("acc", customer, 1000)
			w.order(order, "acc", "A", "B")
		}, confirmed},
		{"out of stock", func(w *world) {
			w.stock("A", 5)
			w.stock("B", 1)
			w.svc().ReserveStock(context.Background(), metaOf("other"), "B", domain.Reserve{OrderID: "other", Quantity: 1})
			w.account("acc", customer, 1000)
			w.order(order, "acc", "A", "B")
		}, cancelled(domain.ReasonOutOfStock, 1000)},
		{"insufficient funds", func(w *world) {
			w.stock("A", 5)
			w.stock("B", 5)
			w.account("acc", customer, 150)
			w.order(order, "acc", "A", "B")
		}, cancelled("insufficient-funds", 150)},
		{"account not owned", func(w *world) {
			w.stock("A", 5)
			w.stock("B", 5)
			w.account("acc", "01J9ZQ4T8K5W3X2Y1V0B6N7M8D", 1000)
			w.order(order, "acc", "A", "B")
		}, cancelled("account-not-owned", 1000)},
		{"no such account", func(w *world) {
			w.stock("A", 5)
			w.stock("B", 5)
			w.order(order, "nobody", "A", "B")
		}, cancelled(domain.ReasonPaymentAccountNotFound, 0)},
	}
}

func TestSagaRunsEndAsTheyMust(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			w := newWorld(t)
			sc.setup(w)
			w.drain()
			sc.check(t, w)
			w.exactlyOnce("o1")
			outcome := string(w.run("o1").Step)
			if outcome == "cancelled" {
				outcome = w.run("o1").Reason
			}
			cancelled := 0.0
			if w.run("o1").Step == domain.StepCancelled {
				cancelled = 1
			}
			want := map[string]float64{saga.MetricFulfilmentsStarted: 1, saga.MetricFulfilmentsFinished: 1,
				saga.MetricFulfilmentsFinished + "/" + outcome: 1, saga.MetricFulfilmentsCancelled: cancelled}
			if got := w.counts(); !maps.Equal(got, want) {
				t.Errorf("metrics %v, want %v\n%s", got, want, w.metrics.String())
			}
		})
	}
}

// TestSagaCrashAfterEachWrite crashes the saga right after each of its writes in turn (the
// write is made, its answer lost, the instance gone) and delivers the trigger again to another
// instance: every run ends as it must, and no effect happens twice.
func TestSagaCrashAfterEachWrite(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			clean := newWorld(t)
			sc.setup(clean)
			before := clean.st.writes
			clean.drain()
			writes := clean.st.writes - before
			if writes < 3 {
				t.Fatalf("the run made %d writes", writes)
			}
			for k := 1; k <= writes; k++ {
				w := newWorld(t)
				sc.setup(w)
				w.st.crashAfter(k)
				w.drain()
				sc.check(t, w)
				w.exactlyOnce("o1")
			}
		})
	}
}

// TestSagaEveryTriggerTwiceConcurrently delivers every trigger to two instances at once.
func TestSagaEveryTriggerTwiceConcurrently(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			for range 10 {
				w := newWorld(t)
				sc.setup(w)
				ctx := context.Background()
				for done := 0; done < len(w.consumed()); done++ {
					e := w.consumed()[done]
					var wg sync.WaitGroup
					errs := make([]error, 2)
					for i := range 2 {
						wg.Add(1)
						go func() { defer wg.Done(); errs[i] = w.saga().Apply(ctx, e) }()
					}
					wg.Wait()
					for _, err := range errs {
						if err != nil {
							t.Fatalf("deliver %s at %d: %v", e.Type, e.Version, err)
						}
					}
				}
				sc.check(t, w)
				w.exactlyOnce("o1")
			}
		})
	}
}

func TestSagaRedeliveryAfterTheEndWritesNothing(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			w := newWorld(t)
			sc.setup(w)
			w.drain()
			writes := w.st.writes
			for _, e := range w.consumed() {
				if err := w.saga().Apply(context.Background(), e); err != nil {
					t.Fatal(err)
				}
			}
			if w.st.writes != writes {
				t.Fatalf("replaying every trigger wrote %d times", w.st.writes-writes)
			}
		})
	}
}

// stuck places an order whose charge cannot be made (the account's stream refuses writes), so
// that its run waits in charging.
func stuck(t *testing.T) *world {
	t.Helper()
	w := newWorld(t)
	w.stock("A", 5)
	w.stock("B", 5)
	w.account("acc", customer, 1000)
	w.order("o1", "acc", "A", "B")
	w.st.fail = func(a []store.StreamAppend) error {
		if strings.HasPrefix(a[0].StreamID, "account-") {
			return context.DeadlineExceeded
		}
		return nil
	}
	if err := w.saga().Apply(context.Background(), w.consumed()[0]); err == nil {
		t.Fatal("the charge did not fail")
	}
	if f := w.run("o1"); f.Step != domain.StepCharging {
		t.Fatalf("run step %s, want charging", f.Step)
	}
	return w
}

func TestSagaDeadline(t *testing.T) {
	t.Run("fires: compensates and cancels", func(t *testing.T) {
		w := stuck(t)
		w.clock.advance(16 * time.Minute)
		if err := w.fire(w.saga(), "fulfilment-o1"); err != nil {
			t.Fatal(err)
		}
		f := w.run("o1")
		if f.Step != domain.StepCancelled || f.Reason != domain.ReasonTimeout || !f.Finished() {
			t.Fatalf("run %s (%s) finished %v", f.Step, f.Reason, f.Finished())
		}
		if n, ok := w.counts()[saga.MetricFulfilmentsStuck]; ok {
			t.Fatalf("%s = %v after a firing that cancelled the run", saga.MetricFulfilmentsStuck, n)
		}
		if o := w.orderState("o1"); o.Status != domain.OrderStatusCancelled || o.CancelReason != domain.ReasonTimeout {
			t.Fatalf("order %s (%s)", o.Status, o.CancelReason)
		}
		for _, sku := range []string{"A", "B"} {
			if i := w.item(sku); i.Reserved != 0 {
				t.Fatalf("%s still reserved", sku)
			}
		}
		// Fires again, and the charge's stream heals and the trigger comes again: nothing.
		writes := w.st.writes
		if err := w.fire(w.saga(), "fulfilment-o1"); err != nil {
			t.Fatal(err)
		}
		w.st.fail = nil
		w.drain()
		if w.st.writes != writes {
			t.Fatalf("a second firing and a redelivery wrote %d times", w.st.writes-writes)
		}
		if a := w.acct("acc"); a.Balance != 1000 {
			t.Fatalf("balance %d after a timed-out run", a.Balance)
		}
		w.exactlyOnce("o1")
	})
	t.Run("a firing that cannot compensate counts the run stuck", func(t *testing.T) {
		w := stuck(t)
		w.clock.advance(16 * time.Minute)
		w.st.fail = func(a []store.StreamAppend) error {
			if strings.HasPrefix(a[0].StreamID, "inventory-") {
				return context.DeadlineExceeded // the release of its stock fails
			}
			return nil
		}
		if err := w.fire(w.saga(), "fulfilment-o1"); err == nil {
			t.Fatal("the firing did not fail")
		}
		if n := w.counts()[saga.MetricFulfilmentsStuck]; n != 1 {
			t.Fatalf("%s = %v after a firing that left the run %s, want 1", saga.MetricFulfilmentsStuck, n, w.run("o1").Step)
		}
		w.st.fail = nil
		if err := w.saga().Deadline(context.Background(), deadlineInput("o1", w.run("o1").Deadline.ID)); err != nil {
			t.Fatal(err)
		}
		if f := w.run("o1"); !f.Finished() {
			t.Fatalf("the retried firing left the run %s", f.Step)
		}
		got := w.counts()
		if got[saga.MetricFulfilmentsStuck] != 1 || got[saga.MetricFulfilmentsFinished+"/"+domain.ReasonTimeout] != 1 || got[saga.MetricFulfilmentsCancelled] != 1 {
			t.Fatalf("metrics %v: want the one stuck firing, then one run cancelled on timeout", got)
		}
	})
	t.Run("another run's deadline changes nothing", func(t *testing.T) {
		w := stuck(t)
		writes := w.st.writes
		err := w.saga().Deadline(context.Background(), deadlineInput("o1", "fulfilment-o1/deadline/1"))
		if err != nil || w.st.writes != writes {
			t.Fatalf("err %v, %d writes", err, w.st.writes-writes)
		}
	})
	t.Run("after the run was charged changes nothing", func(t *testing.T) {
		w := stuck(t)
		w.st.fail = nil
		w.drain() // the OrderPlaced whose delivery failed comes again: the run carries on
		if f := w.run("o1"); f.Step != domain.StepConfirmed {
			t.Fatalf("run %s", f.Step)
		}
		writes := w.st.writes
		if _, ok := w.deadlines.get("fulfilment-o1"); ok {
			t.Fatal("the deadline of a confirmed run is still set")
		}
		if err := w.saga().Deadline(context.Background(), deadlineInput("o1", w.run("o1").Deadline.ID)); err != nil || w.st.writes != writes {
			t.Fatalf("err %v, %d writes", err, w.st.writes-writes)
		}
	})
	t.Run("redrive past it compensates", func(t *testing.T) {
		w := stuck(t)
		w.clock.advance(15 * time.Minute)
		f, err := w.saga().Redrive(context.Background(), "o1")
		if err != nil || f.Step != domain.StepCancelled || f.Reason != domain.ReasonTimeout {
			t.Fatalf("redrive: %v, run %s (%s)", err, f.Step, f.Reason)
		}
	})
}

// TestSagaLateReservationIsReleased: a reservation still on the wire when the deadline fires
// lands after compensation released its line: the run sees it and releases it.
func TestSagaLateReservationIsReleased(t *testing.T) {
	w := newWorld(t)
	w.stock("A", 5)
	w.stock("B", 5)
	w.account("acc", customer, 1000)
	w.order("o1", "acc", "A", "B")
	hold, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	w.st.before = func(a []store.StreamAppend) {
		if a[0].StreamID == "inventory-B" && a[0].Events[0].Type == domain.TypeStockReserved {
			once.Do(func() { close(hold); <-release })
		}
	}
	done := make(chan error, 1)
	go func() { done <- w.saga().Apply(context.Background(), w.consumed()[0]) }()
	<-hold // B's reservation is on the wire
	w.clock.advance(16 * time.Minute)
	if err := w.fire(w.saga(), "fulfilment-o1"); err != nil {
		t.Fatal(err)
	}
	if f := w.run("o1"); f.Step != domain.StepCancelled {
		t.Fatalf("run %s after the deadline", f.Step)
	}
	close(release) // B's reservation lands now, after the cancel
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w.drain()
	if i := w.item("B"); i.Reserved != 0 {
		t.Fatalf("B: %d reserved for a cancelled order", i.Reserved)
	}
	if f := w.run("o1"); !f.Finished() || f.Step != domain.StepCancelled {
		t.Fatalf("run %s finished %v", f.Step, f.Finished())
	}
	w.exactlyOnce("o1")
}

func deadlineInput(order, id string) saga.DeadlineInput {
	return saga.DeadlineInput{Deadline: &saga.DeadlineRef{OrderID: order, DeadlineID: id}}
}

func metaOf(commandID string) command.Meta { return command.Meta{CommandID: commandID} }
