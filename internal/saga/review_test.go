package saga_test

// Review tests of the fulfilment saga: interleavings that try to break it. The tests whose
// names start with TestReviewBreak failed on the code they were written against (see the
// review report); the others passed and stay as regression tests.

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/metrics"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/saga"
	"github.com/eventfold/eventfold/internal/store"
)

// deliverExcept delivers, to fresh instances, every consumed event but those in skip (already
// delivered successfully, so the event source mapping never sends them again), until
// deliveries add no event. A delivery that fails is made again, up to tries times.
func (w *world) deliverExcept(skip map[string]bool) {
	w.t.Helper()
	ctx := context.Background()
	seen := map[string]bool{}
	for round := 0; ; round++ {
		if round > 50 {
			w.t.Fatal("deliveries did not settle")
		}
		progressed := false
		for _, e := range w.consumed() {
			if skip[e.ID] || seen[e.ID] {
				continue
			}
			var err error
			for range 5 {
				if err = w.saga().Apply(ctx, e); err == nil {
					break
				}
			}
			if err != nil {
				w.t.Fatalf("deliver %s %s at %d: %v", e.StreamID, e.Type, e.Version, err)
			}
			seen[e.ID], progressed = true, true
		}
		if !progressed {
			return
		}
	}
}

// TestReviewBreakWinnerCrashAfterRaceStrandsTheRun: two deliveries race on one run; the one
// that wins the run's append crashes right after it, and the one that lost the append finds
// nothing new to record, so it issues nothing and succeeds. The crashed delivery is retried,
// and finds nothing new either. Every trigger was delivered, yet the charge the winner decided
// is never issued: the run sits in charging until its deadline cancels a fundable order.
//
// Interleaving (order o1, lines A and B):
//  1. instance 1, on OrderPlaced: appends FulfilmentStarted (v1), reserves A and B (both land),
//     and is about to append FulfilmentReplied{A, B} at v1 (held here);
//  2. instance 2, on StockReserved B from the stream: appends FulfilmentReplied{B} (v2, still
//     reserving), reserves A again (a no-op), appends FulfilmentReplied{A} (v3, charging) and
//     vanishes right after that write, before it issues the charge;
//  3. instance 1's append conflicts; it reloads (v3) and decides {A, B} again: nothing new, no
//     event, no command; its delivery of OrderPlaced succeeds;
//  4. StockReserved B is redelivered, StockReserved A delivered: nothing new, nothing issued.
func TestReviewBreakWinnerCrashAfterRaceStrandsTheRun(t *testing.T) {
	w := newWorld(t)
	w.stock("A", 5)
	w.stock("B", 5)
	w.account("acc", customer, 1000)
	w.order("o1", "acc", "A", "B")
	placed := w.consumed()[0]

	hold, release := make(chan struct{}), make(chan struct{})
	var once onceNB
	w.st.before = func(a []store.StreamAppend) {
		if a[0].StreamID == "fulfilment-o1" && a[0].Expected == 1 {
			if once.first() {
				close(hold)
				<-release
			}
		}
	}
	done := make(chan error, 1)
	go func() { done <- w.saga().Apply(context.Background(), placed) }()
	<-hold

	var reservedB store.Event
	for _, e := range w.consumed() {
		if e.Type == domain.TypeStockReserved && e.StreamID == "inventory-B" {
			reservedB = e
		}
	}
	if reservedB.ID == "" {
		t.Fatal("B was not reserved")
	}
	w.st.crashAfter(2) // FulfilmentReplied{B} at v2, then FulfilmentReplied{A} at v3: crash
	if err := w.saga().Apply(context.Background(), reservedB); err == nil {
		t.Fatal("instance 2 did not crash")
	}
	if f := w.run("o1"); f.Step != domain.StepCharging {
		t.Fatalf("after instance 2 the run is %s, want charging", f.Step)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("instance 1's delivery of OrderPlaced: %v", err)
	}
	w.deliverExcept(map[string]bool{placed.ID: true})

	if f := w.run("o1"); f.Step != domain.StepConfirmed || !f.Finished() {
		t.Errorf("every trigger delivered, the run is %s (finished %v), want confirmed", f.Step, f.Finished())
	}
	if charged, _ := w.money("o1"); charged != 200 {
		t.Errorf("charged %d, want 200", charged)
	}
}

// stranded leaves o1's run in charging with A and B reserved and no delivery left to make:
// the charge failed on every attempt of the OrderPlaced record, and the event source mapping,
// past MaximumRetryAttempts (10 in template.yaml, with no OnFailure destination), dropped it.
func stranded(t *testing.T) *world {
	t.Helper()
	w := stuck(t)
	w.st.fail = nil
	return w
}

// TestReviewBreakDeadlineRetryAfterCrash: the deadline fires, the instance appends
// FulfilmentDeadlinePassed and vanishes before it issues the compensation; the scheduler
// retries the firing, which finds the run no longer waiting on its deadline and does nothing.
// The run stays in compensating for good, holding A and B, its order placed; and it is not in
// the read model's stuck list either (DeadlinePending is false, Finished false).
func TestReviewBreakDeadlineRetryAfterCrash(t *testing.T) {
	w := stranded(t)
	w.clock.advance(16 * time.Minute)
	w.st.crashAfter(1)
	if err := w.fire(w.saga(), "fulfilment-o1"); err == nil {
		t.Fatal("the firing did not crash")
	}
	// The scheduler retries the invocation (RetryAttempts), with the same input.
	for range 3 {
		if err := w.fireIfSet(w.saga(), "fulfilment-o1"); err != nil {
			t.Fatal(err)
		}
	}
	// The deadline's schedule may be gone by now (ActionAfterCompletion DELETE); the
	// retries above used its input while it was set. Fire with the run's ID too.
	if err := w.saga().Deadline(context.Background(), deadlineInput("o1", w.run("o1").Deadline.ID)); err != nil {
		t.Fatal(err)
	}
	f := w.run("o1")
	if f.Step != domain.StepCancelled || !f.Finished() {
		t.Errorf("after the deadline and its retries the run is %s (finished %v), want cancelled", f.Step, f.Finished())
	}
	for _, sku := range []string{"A", "B"} {
		if q, held := w.item(sku).Reservations["o1"]; held {
			t.Errorf("%s: %d still reserved for o1", sku, q)
		}
	}
	if o := w.orderState("o1"); o.Status != domain.OrderStatusCancelled {
		t.Errorf("order %s, want cancelled", o.Status)
	}
	_, _, events, err := w.saga().Load(context.Background(), "o1")
	if err != nil {
		t.Fatal(err)
	}
	r, err := projection.FoldRun(events)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Finished && !r.DeadlinePending {
		t.Errorf("the run's read model: step %s, not finished, no deadline pending: `sagas list -stuck` never lists it", r.Step)
	}
}

// TestReviewBreakTriggerPastTheDeadlineCharges: a run still in charging past its deadline (the
// firing is due within the minute, or was lost) is charged by a redelivered trigger, and
// confirmed; a redrive at the same moment would have cancelled it (timeout). The deadline is
// "the time by which a run must be charged": past it, every trigger should time the run out.
func TestReviewBreakTriggerPastTheDeadlineCharges(t *testing.T) {
	w := stuck(t)
	w.clock.advance(16 * time.Minute)
	w.st.fail = nil
	// Lambda retries the failed OrderPlaced record: it arrives after the deadline's time.
	if err := w.saga().Apply(context.Background(), w.consumed()[0]); err != nil {
		t.Fatal(err)
	}
	f := w.run("o1")
	if charged, _ := w.money("o1"); charged != 0 || f.Step != domain.StepCancelled || f.Reason != domain.ReasonTimeout {
		t.Errorf("a trigger 16m after the start (timeout 15m): run %s (%s), charged %d; want cancelled (timeout), charged 0",
			f.Step, f.Reason, charged)
	}
}

// TestReviewStaleChargeAfterTimeoutIsRefunded: instance 1's charge is on the wire when the
// deadline fires; the timeout compensates and cancels the order (the run finished); then the
// charge lands and instance 1 vanishes before it records it. The AccountCharged on the stream
// reopens the run, which refunds: net charge 0. (Passed.)
func TestReviewStaleChargeAfterTimeoutIsRefunded(t *testing.T) {
	w := newWorld(t)
	w.stock("A", 5)
	w.stock("B", 5)
	w.account("acc", customer, 1000)
	w.order("o1", "acc", "A", "B")
	placed := w.consumed()[0]
	hold, release := make(chan struct{}), make(chan struct{})
	var once onceNB
	w.st.before = func(a []store.StreamAppend) {
		if a[0].StreamID == "account-acc" && a[0].Events[0].Type == domain.TypeAccountCharged {
			if once.first() {
				close(hold)
				<-release
			}
		}
	}
	done := make(chan error, 1)
	go func() { done <- w.saga().Apply(context.Background(), placed) }()
	<-hold
	w.clock.advance(16 * time.Minute)
	if err := w.fire(w.saga(), "fulfilment-o1"); err != nil {
		t.Fatal(err)
	}
	if f := w.run("o1"); f.Step != domain.StepCancelled || !f.Finished() {
		t.Fatalf("after the deadline the run is %s", f.Step)
	}
	w.st.crashAfter(1) // the charge lands; its answer is lost with the instance
	close(release)
	if err := <-done; err == nil {
		t.Fatal("instance 1 did not crash")
	}
	w.drain() // OrderPlaced is retried; AccountCharged is delivered
	charged, refunded := w.money("o1")
	if charged != 200 || refunded != 200 {
		t.Errorf("charged %d refunded %d, want 200 and 200", charged, refunded)
	}
	if f := w.run("o1"); f.Step != domain.StepCancelled || !f.Finished() {
		t.Errorf("run %s finished %v", f.Step, f.Finished())
	}
	if a := w.acct("acc"); a.Balance != 1000 {
		t.Errorf("balance %d, want 1000", a.Balance)
	}
	w.exactlyOnce("o1")
}

// TestReviewDeadlineRacesTheChargeReply: the deadline fires on one instance while another
// records the charge's answer, both at the same version of the run, many times over: either
// the run is charged (and confirmed; the deadline then changes nothing) or it timed out (and
// the charge, if made, is refunded); never both, never a charge kept on a cancelled order.
// (Passed.)
func TestReviewDeadlineRacesTheChargeReply(t *testing.T) {
	for i := range 20 {
		w := newWorld(t)
		w.stock("A", 5)
		w.stock("B", 5)
		w.account("acc", customer, 1000)
		w.order("o1", "acc", "A", "B")
		placed := w.consumed()[0]
		hold, release := make(chan struct{}), make(chan struct{})
		var once onceNB
		w.st.before = func(a []store.StreamAppend) {
			if a[0].StreamID == "account-acc" {
				if once.first() {
					close(hold)
					<-release
				}
			}
		}
		done := make(chan error, 2)
		go func() { done <- w.saga().Apply(context.Background(), placed) }()
		<-hold
		w.clock.advance(16 * time.Minute)
		in := deadlineInput("o1", w.run("o1").Deadline.ID) // what the schedule holds
		go func() { done <- w.saga().Deadline(context.Background(), in) }()
		if i%2 == 0 {
			time.Sleep(time.Millisecond)
		}
		close(release)
		for range 2 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		w.drain()
		f := w.run("o1")
		charged, refunded := w.money("o1")
		switch {
		case !f.Finished():
			t.Fatalf("run %s not finished", f.Step)
		case f.Step == domain.StepConfirmed && (charged != 200 || refunded != 0):
			t.Fatalf("confirmed: charged %d refunded %d", charged, refunded)
		case f.Step == domain.StepCancelled && charged != refunded:
			t.Fatalf("cancelled: charged %d refunded %d", charged, refunded)
		}
		w.exactlyOnce("o1")
	}
}

// TestReviewNoPersonalDataInRunsOrLogs: a run's events, the saga's logs and its metrics hold
// none of the order's shipping address, in every scenario and after a crash. (Passed.)
func TestReviewNoPersonalDataInRunsOrLogs(t *testing.T) {
	personal := []string{"Bo Berg", "Hauptstraße", "Hauptstra", "Berlin", "10115"}
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			w := newWorld(t)
			sc.setup(w)
			var logs bytes.Buffer
			var mu sync.Mutex
			svc, err := command.New(command.Config{Store: w.st})
			if err != nil {
				t.Fatal(err)
			}
			s, err := saga.New(saga.Config{Store: w.st, Commands: svc, Deadlines: w.deadlines, Name: func(o string) string { return "fulfilment-" + o },
				Target: "arn:aws:lambda:eu-west-1:000000000000:function:saga", Clock: w.clock.Now,
				Log: slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug})), Metrics: metrics.New(w.metrics)})
			if err != nil {
				t.Fatal(err)
			}
			w.st.crashAfter(2)
			for range 3 {
				for _, e := range w.consumed() {
					if err := s.Apply(context.Background(), e); err != nil {
						logs.WriteString(err.Error())
					}
				}
			}
			var runs bytes.Buffer
			for _, e := range w.st.log() {
				if strings.HasPrefix(e.StreamID, "fulfilment-") {
					runs.Write(e.Data)
				}
			}
			if runs.Len() == 0 {
				t.Fatal("no run events")
			}
			for _, p := range personal {
				for what, b := range map[string]string{"run events": runs.String(), "logs and errors": logs.String(), "metrics": w.metrics.String()} {
					if strings.Contains(b, p) {
						t.Errorf("%s hold %q", what, p)
					}
				}
			}
		})
	}
}

// onceNB is a sync.Once that does not make later callers wait for the first.
type onceNB struct {
	mu   sync.Mutex
	done bool
}

func (o *onceNB) first() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return false
	}
	o.done = true
	return true
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// TestReviewReadModelFollowsTheRun: the read model of a run folded from its stream agrees with
// the run after every one of its events, in an out-of-stock flow. (Passed.)
func TestReviewReadModelFollowsTheRun(t *testing.T) {
	w := newWorld(t)
	w.stock("A", 5)
	w.stock("B", 1)
	w.account("acc", customer, 1000)
	w.order("o1", "acc", "A", "B")
	w.drain()
	_, _, events, err := w.saga().Load(context.Background(), "o1")
	if err != nil {
		t.Fatal(err)
	}
	var f domain.Fulfilment
	for i, e := range events {
		de, err := domain.Decode(e.Type, e.Data)
		if err != nil {
			t.Fatal(err)
		}
		f = f.Evolve(de)
		r, err := projection.FoldRun(events[:i+1])
		if err != nil {
			t.Fatal(err)
		}
		if r.Step != f.Step || r.Finished != f.Finished() || r.Version != int64(i+1) || r.CancelReason != f.Reason || len(r.Steps) != i+1 {
			t.Fatalf("at %d: read model %+v, run step %s finished %v", i+1, r, f.Step, f.Finished())
		}
	}
}

// TestReviewTemplateSagaTrigger checks the SagaFunction's stream trigger as AWS reads it: the
// filter is valid JSON naming every type the saga consumes, and a trigger with bounded retries
// has an OnFailure destination, so that a record dropped after its retries (an OrderPlaced:
// a run that never starts, and that no stuck list shows) is not lost without a trace.
func TestReviewTemplateSagaTrigger(t *testing.T) {
	b, err := os.ReadFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	ev := lookup(t, doc.Content[0], "Resources", "SagaFunction", "Properties", "Events", "EventStore", "Properties")
	filters := lookup(t, ev, "FilterCriteria", "Filters")
	if len(filters.Content) != 1 {
		t.Fatalf("%d filters", len(filters.Content))
	}
	pattern := lookup(t, filters.Content[0], "Pattern").Value
	for _, typ := range []string{domain.TypeOrderPlaced, domain.TypeStockReserved, domain.TypeAccountCharged} {
		if !strings.Contains(pattern, `"`+typ+`"`) {
			t.Errorf("the filter %s lets no %s through", pattern, typ)
		}
	}
	if find(ev, "MaximumRetryAttempts") != nil && find(ev, "DestinationConfig") == nil {
		t.Errorf("SagaFunction's stream trigger retries a record %s times and then drops it: no DestinationConfig.OnFailure",
			find(ev, "MaximumRetryAttempts").Value)
	}
}

func find(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func lookup(t *testing.T, n *yaml.Node, path ...string) *yaml.Node {
	t.Helper()
	for _, k := range path {
		if n = find(n, k); n == nil {
			t.Fatalf("template.yaml has no %s", strings.Join(path, "."))
		}
	}
	return n
}
