package projection_test

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/consumer"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/store"
)

var runStart = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

// decideRun decides a run of order through the domain, started at runStart with a 15-minute
// deadline, then on each trigger in turn (a minute apart), and returns the events decided: the
// events a saga appends.
func decideRun(t testing.TB, order domain.OrderPlaced, triggers ...domain.FulfilmentTrigger) []domain.Event {
	t.Helper()
	var f domain.Fulfilment
	var out []domain.Event
	now := runStart
	for _, tr := range append([]domain.FulfilmentTrigger{domain.StartFulfilment{Order: order, Timeout: 15 * time.Minute}}, triggers...) {
		d := f.Decide(tr, now)
		if len(d.Events) != 1 {
			t.Fatalf("trigger %d (%T) decided %d events, want 1", len(out), tr, len(d.Events))
		}
		f = f.Evolve(d.Events[0])
		out = append(out, d.Events[0])
		now = now.Add(time.Minute)
	}
	return out
}

func order(id string, skus ...string) domain.OrderPlaced {
	o := domain.OrderPlaced{OrderID: id, CustomerID: "c1", PaymentAccountID: "acct-1", Currency: "EUR"}
	for _, s := range skus {
		o.Lines = append(o.Lines, domain.OrderLine{SKU: s, Quantity: 2, UnitPrice: 100})
		o.Total += 200
	}
	return o
}

func ok(kind, sku string) domain.FulfilmentReply {
	return domain.FulfilmentReply{Kind: kind, SKU: sku, OK: true, EventID: ids.New()}
}

func refused(kind, sku, reason string) domain.FulfilmentReply {
	return domain.FulfilmentReply{Kind: kind, SKU: sku, Reason: reason}
}

func replies(r ...domain.FulfilmentReply) domain.FulfilmentReplies { return r }

// appendRun appends a run's events to the event store and returns them as stored.
func (f fixture) appendRun(t testing.TB, orderID string, history []domain.Event) []store.Event {
	t.Helper()
	var stored []store.Event
	for i, e := range history {
		res, err := f.store.Append(context.Background(), domain.RunID(orderID), int64(i), event(t, e))
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, res.Events...)
	}
	return stored
}

// runState is what a test expects of a run's item after one of its events.
type runState struct {
	step, reason, lastError string
	pending, finished       bool
}

func (f fixture) checkRun(t *testing.T, stream string, version int64, stored []store.Event, want runState) {
	t.Helper()
	got := f.item(t, stream)
	deadline, _ := got["deadline"].(map[string]any)
	wantAt := "2026-05-01T09:15:00.000000000Z"
	if got["kind"] != "fulfilment" || got["orderId"] != stream[len("fulfilment-"):] || got["step"] != want.step ||
		got["v"] != float64(version) || got["finished"] != want.finished || got["decisions"] != float64(domain.FulfilmentDecisions) ||
		deadline["at"] != wantAt || deadline["pending"] != want.pending {
		t.Fatalf("%s at %d: %v, want %+v", stream, version, got, want)
	}
	if r, _ := got["cancelReason"].(string); r != want.reason {
		t.Errorf("%s at %d: cancelReason %q, want %q", stream, version, r, want.reason)
	}
	if e, _ := got["lastError"].(string); e != want.lastError {
		t.Errorf("%s at %d: lastError %q, want %q", stream, version, e, want.lastError)
	}
	_, hasPartition := got["waitingPartition"]
	until, hasUntil := got["waitingUntil"]
	if want.finished == hasUntil || want.finished == hasPartition || hasUntil && (until != wantAt || got["waitingPartition"] != "runs") {
		t.Errorf("%s at %d: index keys %v %v, want them until the run finishes (finished %v)", stream, version, got["waitingPartition"], until, want.finished)
	}
	if _, ok := got["customerId"]; ok {
		t.Errorf("%s: a run's item has customerId: it would be listed among the customer's orders", stream)
	}
	steps, _ := got["steps"].([]any)
	if int64(len(steps)) != version {
		t.Fatalf("%s at %d: %d steps, want %d", stream, version, len(steps), version)
	}
	last := steps[len(steps)-1].(map[string]any)
	e := stored[version-1]
	if last["step"] != want.step || last["eventType"] != e.Type || last["version"] != float64(version) || last["at"] != store.FormatTime(e.RecordedAt) {
		t.Errorf("%s at %d: last step %v, want %s %s at %s", stream, version, last, want.step, e.Type, store.FormatTime(e.RecordedAt))
	}
}

// TestRunReadModelOfEachEventType projects runs event by event, as the live projector does, and
// checks the item after each: confirmed, out of stock (a refused reservation, then compensation),
// and timed out (FulfilmentDeadlinePassed).
func TestRunReadModelOfEachEventType(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	timeoutOrder := "o-timeout-" + ids.New()
	for _, tc := range []struct {
		name    string
		order   domain.OrderPlaced
		history []domain.FulfilmentTrigger
		want    []runState // after each event
	}{
		{
			name:  "confirmed",
			order: order("o-confirmed-"+ids.New(), "SKU-1"),
			history: []domain.FulfilmentTrigger{
				replies(ok(domain.CommandReserve, "SKU-1")),
				replies(ok(domain.CommandCharge, "")),
				replies(ok(domain.CommandCommit, "SKU-1"), ok(domain.CommandConfirm, "")),
			},
			want: []runState{
				{step: "reserving", pending: true},
				{step: "charging", pending: true},
				{step: "committing"},
				{step: "confirmed", finished: true},
			},
		},
		{
			name:  "out of stock",
			order: order("o-oos-"+ids.New(), "SKU-1", "SKU-2"),
			history: []domain.FulfilmentTrigger{
				replies(ok(domain.CommandReserve, "SKU-1"), refused(domain.CommandReserve, "SKU-2", "insufficient-stock")),
				replies(ok(domain.CommandRelease, "SKU-1"), ok(domain.CommandRelease, "SKU-2")),
				replies(ok(domain.CommandCancel, "")),
			},
			want: []runState{
				{step: "reserving", pending: true},
				{step: "compensating", reason: "out-of-stock", lastError: "reserve SKU-2: insufficient-stock"},
				{step: "compensating", reason: "out-of-stock", lastError: "reserve SKU-2: insufficient-stock"},
				{step: "cancelled", reason: "out-of-stock", lastError: "reserve SKU-2: insufficient-stock", finished: true},
			},
		},
		{
			name:  "charge refused",
			order: order("o-funds-"+ids.New(), "SKU-1"),
			history: []domain.FulfilmentTrigger{
				replies(ok(domain.CommandReserve, "SKU-1")),
				replies(refused(domain.CommandCharge, "", "insufficient-funds")),
			},
			want: []runState{
				{step: "reserving", pending: true},
				{step: "charging", pending: true},
				{step: "compensating", reason: "insufficient-funds", lastError: "charge: insufficient-funds"},
			},
		},
		{
			name:    "deadline passed",
			order:   order(timeoutOrder, "SKU-1"),
			history: []domain.FulfilmentTrigger{deadlineOf(timeoutOrder)},
			want: []runState{
				{step: "reserving", pending: true},
				{step: "compensating", reason: "timeout"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			history := decideRun(t, tc.order, tc.history...)
			if len(history) != len(tc.want) {
				t.Fatalf("%d events decided, want %d", len(history), len(tc.want))
			}
			stored := f.appendRun(t, tc.order.OrderID, history)
			for i, e := range stored {
				if err := f.proj.Apply(ctx, e); err != nil {
					t.Fatalf("apply %s at %d: %v", e.Type, e.Version, err)
				}
				f.checkRun(t, e.StreamID, e.Version, stored, tc.want[i])
			}
		})
	}
}

// deadlineOf is the firing of the deadline of the run of orderID that decideRun starts.
func deadlineOf(orderID string) domain.FireDeadline {
	return domain.FireDeadline{ID: domain.RunID(orderID) + "/deadline/" + strconv.FormatInt(runStart.Add(15*time.Minute).Unix(), 10)}
}

// TestRunReadModelUnderAnyDelivery delivers runs' events shuffled, duplicated and replayed (the
// newest first fills the gap from the store): every item ends equal to the item of an in-order
// delivery into another table, and a late reservation after the cancel makes a finished run
// unfinished until it is released.
func TestRunReadModelUnderAnyDelivery(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// In order into another read-model table, from the same event store.
	inOrder := fixture{client: f.client, store: f.store, table: awstest.MustTables(t, f.client).Refs["ReadModelsTable"]}
	inOrder.proj = projection.New(f.client, inOrder.table, f.store)
	rng := rand.New(rand.NewPCG(13, 17))
	late, lateOrder, okOrder := ids.New(), "o-late-"+ids.New(), "o-ok-"+ids.New()
	histories := map[string][]domain.Event{
		lateOrder: decideRun(t, order(lateOrder, "SKU-1", "SKU-2"),
			replies(refused(domain.CommandReserve, "SKU-2", "insufficient-stock")),
			replies(ok(domain.CommandRelease, "SKU-1"), ok(domain.CommandRelease, "SKU-2"), ok(domain.CommandCancel, "")),
			replies(domain.FulfilmentReply{Kind: domain.CommandReserve, SKU: "SKU-1", OK: true, EventID: late}), // landed after the cancel
		),
		okOrder: decideRun(t, order(okOrder, "SKU-1"),
			replies(ok(domain.CommandReserve, "SKU-1")), replies(ok(domain.CommandCharge, "")),
			replies(ok(domain.CommandCommit, "SKU-1"), ok(domain.CommandConfirm, ""))),
	}
	for orderID, history := range histories {
		stored := f.appendRun(t, orderID, history)
		for _, e := range stored {
			if err := inOrder.proj.Apply(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		var deliveries []store.Event
		for _, e := range stored {
			for n := 1 + rng.IntN(3); n > 0; n-- {
				deliveries = append(deliveries, e)
			}
		}
		rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
		deliveries = append([]store.Event{stored[len(stored)-1]}, deliveries...) // a gap to fill first
		for _, e := range deliveries {
			if err := f.proj.Apply(ctx, e); err != nil {
				t.Fatalf("apply %s at %d: %v", e.StreamID, e.Version, err)
			}
		}
		stream := domain.RunID(orderID)
		got, want := f.item(t, stream), inOrder.item(t, stream)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s delivered in any order:\n%v\nin order:\n%v", stream, got, want)
		}
		if steps, _ := got["steps"].([]any); len(steps) != len(history) {
			t.Fatalf("%s: %d steps, want %d (each event once)", stream, len(steps), len(history))
		}
	}
	// The late reservation: cancelled, yet not finished, until its release is recorded.
	{
		history, stream := histories[lateOrder], domain.RunID(lateOrder)
		if got := f.item(t, stream); got["step"] != "cancelled" || got["finished"] != false {
			t.Fatalf("a run with a late reservation to release: %v, want cancelled and not finished", got)
		}
		var fs domain.Fulfilment
		for _, e := range history {
			fs = fs.Evolve(e)
		}
		d := fs.Decide(replies(domain.FulfilmentReply{Kind: domain.CommandRelease, SKU: "SKU-1", OK: true}), runStart.Add(time.Hour))
		res, err := f.store.Append(ctx, stream, int64(len(history)), event(t, d.Events[0]))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.proj.Apply(ctx, res.Events[0]); err != nil {
			t.Fatal(err)
		}
		if got := f.item(t, stream); got["step"] != "cancelled" || got["finished"] != true {
			t.Fatalf("after the late release: %v, want cancelled and finished", got)
		}
	}
}

// TestRunEventsAreProjectedNotParked delivers runs' events through the consumer's batch handling
// (as the projector Lambda does; a parked event fails the test), then rebuilds the read models
// from the event store into a new table: the runs land in both, and the two agree.
func TestRunEventsAreProjectedNotParked(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	reg, _ := command.Registry()
	p, err := consumer.New(consumer.Config{Name: "projector", Registry: reg, Handler: f.proj, Parking: noParking{t},
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), Unsealer: consumer.NoUnsealer})
	if err != nil {
		t.Fatal(err)
	}
	timeoutOrder, confirmedOrder, waitingOrder := "o-t-"+ids.New(), "o-c-"+ids.New(), "o-w-"+ids.New()
	runs := map[string][]domain.Event{
		confirmedOrder: decideRun(t, order(confirmedOrder, "SKU-1"), replies(ok(domain.CommandReserve, "SKU-1")), replies(ok(domain.CommandCharge, "")),
			replies(ok(domain.CommandCommit, "SKU-1"), ok(domain.CommandConfirm, ""))),
		timeoutOrder: decideRun(t, order(timeoutOrder, "SKU-1"), deadlineOf(timeoutOrder)),
		waitingOrder: decideRun(t, order(waitingOrder, "SKU-1", "SKU-2"), replies(ok(domain.CommandReserve, "SKU-1"))),
	}
	var records []events.DynamoDBEventRecord
	types := map[string]bool{}
	for orderID, history := range runs {
		for _, e := range f.appendRun(t, orderID, history) {
			records = append(records, streamRecord(t, e, len(records)+1))
			types[e.Type] = true
		}
	}
	if len(types) != 3 {
		t.Fatalf("the runs have event types %v, want all three", types)
	}
	resp, err := p.Handle(ctx, events.DynamoDBEvent{Records: records})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("%v, failures %v", err, resp.BatchItemFailures)
	}
	for orderID, history := range runs {
		if got := f.item(t, domain.RunID(orderID)); got["v"] != float64(len(history)) || got["kind"] != "fulfilment" {
			t.Fatalf("%s live: %v, want it at version %d", orderID, got, len(history))
		}
	}
	target := awstest.MustTables(t, f.client).Refs["ReadModelsTable"]
	got, err := projection.Rebuild(ctx, projection.RebuildConfig{API: f.client, EventsTable: f.store.EventsTable(), Target: target, Registry: reg, Source: unsealed{f.store}, Segments: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got.Applied != int64(len(records)) {
		t.Fatalf("rebuild %+v, want %d events applied", got, len(records))
	}
	c, err := projection.Verify(ctx, f.client, f.table, target)
	if err != nil {
		t.Fatal(err)
	}
	if c.Equal != len(runs) || c.Behind+c.Ahead+c.Missing != 0 || len(c.Different) != 0 {
		t.Fatalf("live and rebuilt runs: %+v, want %d equal", c, len(runs))
	}
	rebuilt := fixture{client: f.client, table: target}.item(t, domain.RunID(timeoutOrder))
	if rebuilt["step"] != "compensating" || rebuilt["cancelReason"] != "timeout" {
		t.Fatalf("rebuilt timed-out run: %v", rebuilt)
	}
}

// TestRunStepsAreBounded: a run with more events than MaxRunSteps lists the newest ones.
func TestRunStepsAreBounded(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	orderID := "o-long-" + ids.New()
	// Late reservations after the cancel, each released again: as many events as it takes.
	history := decideRun(t, order(orderID, "SKU-1"), replies(refused(domain.CommandReserve, "SKU-1", "insufficient-stock")),
		replies(ok(domain.CommandRelease, "SKU-1"), ok(domain.CommandCancel, "")))
	var fs domain.Fulfilment
	for _, e := range history {
		fs = fs.Evolve(e)
	}
	for held := false; len(history) < projection.MaxRunSteps+5; held = !held {
		r := domain.FulfilmentReply{Kind: domain.CommandReserve, SKU: "SKU-1", OK: true, EventID: ids.New()}
		if held {
			r = domain.FulfilmentReply{Kind: domain.CommandRelease, SKU: "SKU-1", OK: true}
		}
		d := fs.Decide(replies(r), runStart)
		if len(d.Events) != 1 {
			t.Fatalf("event %d decided %d events", len(history)+1, len(d.Events))
		}
		fs = fs.Evolve(d.Events[0])
		history = append(history, d.Events[0])
	}
	stored := f.appendRun(t, orderID, history)
	if err := f.proj.Apply(ctx, stored[len(stored)-1]); err != nil { // fills the gap: all of them
		t.Fatal(err)
	}
	got := f.item(t, domain.RunID(orderID))
	steps, _ := got["steps"].([]any)
	if len(steps) != projection.MaxRunSteps || got["v"] != float64(len(history)) {
		t.Fatalf("%d steps at version %v, want %d", len(steps), got["v"], projection.MaxRunSteps)
	}
	first, last := steps[0].(map[string]any), steps[len(steps)-1].(map[string]any)
	if first["version"] != float64(len(history)-projection.MaxRunSteps+1) || last["version"] != float64(len(history)) {
		t.Fatalf("steps from %v to %v, want the newest %d", first["version"], last["version"], projection.MaxRunSteps)
	}
	if got["finished"] != fs.Finished() {
		t.Fatalf("finished %v, want the domain's %v", got["finished"], fs.Finished())
	}
}
