package query_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/query"
	"github.com/eventfold/eventfold/internal/store"
	"github.com/eventfold/eventfold/internal/template"
)

func TestMain(m *testing.M) { awstest.Main(m) }

var ids = store.NewIDs(nil)

type runsFixture struct {
	store *store.DynamoDB
	proj  *projection.Projector
	q     *query.Service
}

// newStore returns the DynamoDB Local client, a fresh set of the template's tables and the event
// store on them.
func newStore(t *testing.T) (*dynamodb.Client, template.Env, *store.DynamoDB) {
	t.Helper()
	client := awstest.DynamoDB(t)
	env := awstest.MustTables(t, client)
	reg, err := command.Registry()
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(client, store.Config{EventsTable: env.Refs["EventsTable"], SnapshotsTable: env.Refs["SnapshotsTable"], Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	return client, env, st
}

func newRunsFixture(t *testing.T) runsFixture {
	t.Helper()
	client, env, st := newStore(t)
	table := env.Refs["ReadModelsTable"]
	return runsFixture{store: st, proj: projection.New(client, table, st), q: query.New(query.Config{API: client, Table: table, Events: st})}
}

// run decides a run of a one-line order through the domain, started at start with a 15-minute
// deadline, then on each trigger, appends its events and projects them.
func (f runsFixture) run(t *testing.T, orderID string, start time.Time, triggers ...domain.FulfilmentTrigger) {
	t.Helper()
	o := domain.OrderPlaced{OrderID: orderID, CustomerID: "c1", PaymentAccountID: "acct-1", Currency: "EUR",
		Lines: []domain.OrderLine{{SKU: "SKU-1", Quantity: 1, UnitPrice: 100}}, Total: 100}
	var fs domain.Fulfilment
	for i, tr := range append([]domain.FulfilmentTrigger{domain.StartFulfilment{Order: o, Timeout: 15 * time.Minute}}, triggers...) {
		d := fs.Decide(tr, start)
		if len(d.Events) != 1 {
			t.Fatalf("%s: trigger %d decided %d events", orderID, i, len(d.Events))
		}
		fs = fs.Evolve(d.Events[0])
		data, err := json.Marshal(d.Events[0])
		if err != nil {
			t.Fatal(err)
		}
		res, err := f.store.Append(context.Background(), domain.RunID(orderID), int64(i), store.Event{ID: ids.New(), Type: d.Events[0].EventType(), Data: data})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.proj.Apply(context.Background(), res.Events[0]); err != nil {
			t.Fatal(err)
		}
	}
}

func reply(kind string, ok bool, reason string) domain.FulfilmentReplies {
	sku := ""
	if kind == domain.CommandReserve || kind == domain.CommandCommit || kind == domain.CommandRelease {
		sku = "SKU-1"
	}
	return domain.FulfilmentReplies{{Kind: kind, SKU: sku, OK: ok, Reason: reason, EventID: ids.New()}}
}

// TestStuckRuns lists the runs past their deadline and not finished: one reserving and one
// charging past their deadlines, and one whose deadline passed and whose compensation has not
// finished, earliest first; not one whose deadline is still to come, nor a finished one; paged,
// with cursors checked.
func TestStuckRuns(t *testing.T) {
	f := newRunsFixture(t)
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	suffix := ids.New()
	reserving, charging := "o-reserving-"+suffix, "o-charging-"+suffix
	f.run(t, charging, t0, reply(domain.CommandReserve, true, ""))             // deadline 09:15
	f.run(t, reserving, t0.Add(2*time.Minute))                                 // deadline 09:17
	f.run(t, "o-future-"+suffix, t0.Add(30*time.Minute))                       // deadline 09:45
	f.run(t, "o-finished-"+suffix, t0, reply(domain.CommandReserve, true, ""), // deadline 09:15, confirmed
		reply(domain.CommandCharge, true, ""), append(reply(domain.CommandCommit, true, ""), reply(domain.CommandConfirm, true, "")...))
	passed := "o-passed-" + suffix
	f.run(t, passed, t0.Add(time.Minute), domain.FireDeadline{ID: domain.RunID(passed) + "/deadline/" + itoa(t0.Add(16*time.Minute).Unix())}) // 09:16, compensating
	now := t0.Add(20 * time.Minute)

	p, err := f.q.StuckRuns(ctx, now, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []query.StuckRun{
		{OrderID: charging, Step: "charging", Deadline: "2026-05-01T09:15:00.000000000Z"},
		{OrderID: passed, Step: "compensating", Deadline: "2026-05-01T09:16:00.000000000Z"},
		{OrderID: reserving, Step: "reserving", Deadline: "2026-05-01T09:17:00.000000000Z"},
	}
	if len(p.Items) != 3 || p.Items[0] != want[0] || p.Items[1] != want[1] || p.Items[2] != want[2] || p.Next != "" {
		t.Fatalf("stuck runs at 09:20: %+v, want %+v", p, want)
	}
	// Just before the earliest deadline, none is stuck; at 09:16, one.
	if p, err := f.q.StuckRuns(ctx, t0.Add(15*time.Minute), "", 10); err != nil || len(p.Items) != 0 {
		t.Fatalf("stuck runs at the earliest deadline: %+v, %v; want none (a deadline at now has not passed)", p, err)
	}
	if p, err := f.q.StuckRuns(ctx, t0.Add(16*time.Minute), "", 10); err != nil || len(p.Items) != 1 || p.Items[0].OrderID != charging {
		t.Fatalf("stuck runs at 09:16: %+v, %v", p, err)
	}

	// A page at a time.
	var listed []string
	cursor, cursors := "", []string{}
	for page := 0; page < 5; page++ {
		p, err := f.q.StuckRuns(ctx, now, cursor, 1)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		for _, r := range p.Items {
			listed = append(listed, r.OrderID)
		}
		if p.Next == "" {
			break
		}
		cursor = p.Next
		cursors = append(cursors, cursor)
	}
	if len(listed) != 3 || listed[0] != charging || listed[1] != passed || listed[2] != reserving || len(cursors) == 0 {
		t.Fatalf("paged: %v with cursors %v", listed, cursors)
	}

	// Cursors it did not issue, or issued for a later now, are refused.
	raw, _ := base64.RawURLEncoding.DecodeString(cursors[0])
	var key map[string]string
	if err := json.Unmarshal(raw, &key); err != nil {
		t.Fatal(err)
	}
	edit := func(change func(map[string]string)) string {
		k := map[string]string{}
		for n, v := range key {
			k[n] = v
		}
		change(k)
		b, _ := json.Marshal(k)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	for name, c := range map[string]string{
		"not base64":         "!!",
		"not JSON":           base64.RawURLEncoding.EncodeToString([]byte("nope")),
		"another partition":  edit(func(k map[string]string) { k["waitingPartition"] = "orders" }),
		"not a run":          edit(func(k map[string]string) { k["pk"] = "order-" + suffix }),
		"a key too many":     edit(func(k map[string]string) { k["customerId"] = "c1" }),
		"a list's cursor":    edit(func(k map[string]string) { delete(k, "waitingUntil") }),
		"not a stored time":  edit(func(k map[string]string) { k["waitingUntil"] = "2026-05-01T09:15:00Z" }),
		"at or after now":    edit(func(k map[string]string) { k["waitingUntil"] = store.FormatTime(now) }),
		"a name twice":       base64.RawURLEncoding.EncodeToString([]byte(`{"pk":"fulfilment-a","pk":"fulfilment-b","waitingPartition":"runs","waitingUntil":"2026-05-01T09:15:00.000000000Z"}`)),
		"issued for a later": cursors[0], // used at 09:15, before its deadline
	} {
		at := now
		if name == "issued for a later" {
			at = t0.Add(15 * time.Minute)
		}
		if _, err := f.q.StuckRuns(ctx, at, c, 10); !errors.Is(err, query.ErrBadCursor) {
			t.Errorf("%s: %v, want ErrBadCursor", name, err)
		}
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
