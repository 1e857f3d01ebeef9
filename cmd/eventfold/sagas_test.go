package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/app"
	"github.com/eventfold/eventfold/internal/auth"
	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/consumer"
	"github.com/eventfold/eventfold/internal/ddbstream"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/schedule"
	"github.com/eventfold/eventfold/internal/store"
)

// sagaStack is a cliStack with its keys, and the saga's command side and sealing store built
// independently of the command under test, to set up orders and runs.
type sagaStack struct {
	cliStack
	side *app.SagaSide
	proj *projection.Projector
	ids  *store.IDs
}

func newSagaStack(t *testing.T) sagaStack {
	t.Helper()
	s := sagaStack{cliStack: newCLIStack(t, "sg"), ids: store.NewIDs(nil)}
	kmsClient := awstest.MustKeys(t, s.env)
	cfg := app.SagaConfig{EventsTable: s.env.Refs["EventsTable"], SnapshotsTable: s.env.Refs["SnapshotsTable"], ParkingTable: s.env.Refs["ParkingTable"],
		KeysConfig: app.KeysConfig{KeysTable: s.env.Refs["KeysTable"], DataKey: s.env.Refs["DataKeyAlias"]},
		Schedules:  schedule.Config{Group: s.name + "-test", RoleARN: "arn:aws:iam::000000000000:role/test", DeadLetterARN: "arn:aws:sqs:us-east-1:000000000000:test"}}
	var err error
	s.side, err = app.Saga(cfg, app.Clients{DynamoDB: s.client, KMS: kmsClient, Scheduler: localaws.Scheduler(awstest.KMSEndpoint(t))},
		slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.proj = projection.New(s.client, s.env.Refs["ReadModelsTable"], s.raw)
	return s
}

// order adds stock of a SKU of its own and places an order of one unit of it, paid by an
// account of the customer's holding nothing; it returns the order as placed.
func (s sagaStack) order(t *testing.T) domain.OrderPlaced {
	t.Helper()
	ctx := context.Background()
	sku := "SKU-" + s.ids.New()
	if _, err := s.side.Commands.AddStock(ctx, withCaller(command.Meta{CommandID: s.ids.New()}, auth.Operator("arn:aws:iam::123456789012:user/ops")), domain.AddStock{SKU: sku, Quantity: 5}); err != nil {
		t.Fatal(err)
	}
	o := domain.OrderPlaced{OrderID: s.ids.New(), CustomerID: s.ids.New(), PaymentAccountID: s.ids.New(), Currency: "EUR",
		Lines: []domain.OrderLine{{SKU: sku, Quantity: 1, UnitPrice: 100}}, Total: 100}
	if _, err := s.side.Commands.OpenAccount(ctx, withCaller(command.Meta{CommandID: s.ids.New()}, auth.User(o.CustomerID)),
		domain.OpenAccount{AccountID: o.PaymentAccountID, OwnerID: o.CustomerID, Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.side.Commands.PlaceOrder(ctx, withCaller(command.Meta{CommandID: s.ids.New()}, auth.User(o.CustomerID)), domain.PlaceOrder{OrderID: o.OrderID, CustomerID: o.CustomerID,
		PaymentAccountID: o.PaymentAccountID, Currency: o.Currency, Lines: o.Lines,
		ShippingAddress: domain.Address{Name: "Ann Example", Line1: "1 Main St", City: "Springfield", PostalCode: "12345", Country: "US"}}); err != nil {
		t.Fatal(err)
	}
	return o
}

// appendRun appends the run's events e to its stream at version v, as the saga envelopes them,
// and projects them into the read model; it returns the run after them.
func (s sagaStack) appendRun(t *testing.T, f domain.Fulfilment, orderID string, events ...domain.Event) domain.Fulfilment {
	t.Helper()
	ctx := context.Background()
	envs := make([]store.Event, len(events))
	for i, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		envs[i] = store.Event{ID: s.ids.New(), Type: e.EventType(), Data: data}
		f = f.Evolve(e)
	}
	res, err := s.side.Store.AppendStreams(ctx, store.StreamAppend{StreamID: domain.RunID(orderID), Expected: f.Version - int64(len(events)), Events: envs})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range res[0].Events {
		if err := s.proj.Apply(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// stuckInCharging places an order and records its run as the current decisions make it, started
// at start: reserved (the reservation made as the saga makes it), then charging, and the
// charge never answered. It returns the order and the run.
func (s sagaStack) stuckInCharging(t *testing.T, start time.Time) (domain.OrderPlaced, domain.Fulfilment) {
	t.Helper()
	o := s.order(t)
	var f domain.Fulfilment
	d := f.Decide(domain.StartFulfilment{Order: o, Timeout: 15 * time.Minute}, start)
	f = s.appendRun(t, f, o.OrderID, d.Events...)
	if len(d.Commands) != 1 || d.Commands[0].Kind != domain.CommandReserve {
		t.Fatalf("the run started issuing %+v, want one reserve", d.Commands)
	}
	c := d.Commands[0]
	res, err := s.side.Commands.ReserveStock(context.Background(), command.Meta{CommandID: c.ID}, c.SKU, domain.Reserve{OrderID: o.OrderID, Quantity: c.Quantity})
	if err != nil || len(res.EventIDs) != 1 {
		t.Fatalf("reserve: %v %+v", err, res)
	}
	d = f.Decide(domain.FulfilmentReplies{{Kind: domain.CommandReserve, SKU: c.SKU, OK: true, EventID: res.EventIDs[0]}}, start.Add(time.Second))
	f = s.appendRun(t, f, o.OrderID, d.Events...)
	if f.Step != domain.StepCharging {
		t.Fatalf("run step %s, want charging", f.Step)
	}
	return o, f
}

// sagas runs `eventfold sagas verb args` on the stack and returns its error and output.
func (s sagaStack) sagas(verb string, args ...string) (error, string) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), append(append([]string{"sagas", verb}, s.common...), args...), &out, &errOut)
	return err, out.String() + errOut.String()
}

func TestSagasListStuckAndRedrive(t *testing.T) {
	ctx := context.Background()
	s := newSagaStack(t)
	o, f := s.stuckInCharging(t, time.Now().Add(-time.Hour))
	deadline := f.Deadline.At

	// sagas list: the unfinished run, charging, waiting on its deadline.
	err, out := s.sagas("list")
	if err != nil {
		t.Fatalf("sagas list: %v\n%s", err, out)
	}
	if want := o.OrderID + "\tcharging\t" + store.FormatTime(deadline) + "\t-\n"; !strings.Contains(out, want) || !strings.Contains(out, "1 unfinished\n") {
		t.Fatalf("sagas list:\n%s\nwant the line %q and 1 unfinished", out, want)
	}

	// sagas list -stuck: listed after its deadline, not before.
	for _, tc := range []struct {
		now    time.Time
		listed bool
	}{{deadline.Add(-time.Minute), false}, {deadline.Add(time.Minute), true}} {
		err, out := s.sagas("list", "-stuck", "-now", tc.now.Format(time.RFC3339))
		if err != nil {
			t.Fatalf("sagas list -stuck -now %s: %v\n%s", tc.now, err, out)
		}
		want := "0 stuck\n"
		if tc.listed {
			want = o.OrderID + "\tcharging\t" + store.FormatTime(deadline) + "\n1 stuck\n"
		}
		if out != want {
			t.Errorf("sagas list -stuck -now %s (deadline %s):\n%s\nwant\n%s", tc.now.Format(time.RFC3339), deadline.Format(time.RFC3339), out, want)
		}
	}
	// -now without -stuck is refused.
	if err, _ := s.sagas("list", "-now", deadline.Format(time.RFC3339)); err == nil || !strings.Contains(err.Error(), "-stuck") {
		t.Errorf("sagas list -now without -stuck: %v, want an error naming -stuck", err)
	}

	// sagas redrive of an order without a run: a clear error, nothing written.
	nobody := s.ids.New()
	if err, out := s.sagas("redrive", nobody); err == nil || !strings.Contains(err.Error(), "has no fulfilment run") {
		t.Fatalf("sagas redrive of an order without a run: %v\n%s", err, out)
	}
	if events, err := s.raw.Load(ctx, domain.RunID(nobody), store.Span{}); err != nil || len(events) != 0 {
		t.Fatalf("the redrive of an order without a run wrote %d events (%v)", len(events), err)
	}

	// sagas redrive, past the deadline: compensates and cancels the order, reason timeout.
	err, out = s.sagas("redrive", o.OrderID)
	if err != nil {
		t.Fatalf("sagas redrive: %v\n%s", err, out)
	}
	if want := o.OrderID + "\tstep cancelled\treason timeout\tfinished true\n"; out != want {
		t.Fatalf("sagas redrive:\n%s\nwant\n%s", out, want)
	}
	orderEvents, err := s.raw.Load(ctx, "order-"+o.OrderID, store.Span{})
	if err != nil {
		t.Fatal(err)
	}
	last := orderEvents[len(orderEvents)-1]
	var cancelled domain.OrderCancelled
	if last.Type != domain.TypeOrderCancelled || json.Unmarshal(last.Data, &cancelled) != nil || cancelled.Reason != domain.ReasonTimeout {
		t.Fatalf("the order's last event is %s %s, want OrderCancelled for timeout", last.Type, last.Data)
	}
	itemEvents, err := s.raw.Load(ctx, "inventory-"+o.Lines[0].SKU, store.Span{})
	if err != nil {
		t.Fatal(err)
	}
	if typ := itemEvents[len(itemEvents)-1].Type; typ != domain.TypeStockReleased {
		t.Fatalf("the item's last event is %s, want its reservation released", typ)
	}
	// Redriving the finished run again changes nothing.
	if err, out := s.sagas("redrive", "-kms-endpoint", awstest.KMSEndpoint(t), o.OrderID); err != nil || !strings.Contains(out, "step cancelled") {
		t.Fatalf("second sagas redrive: %v\n%s", err, out)
	}
	if again, err := s.raw.Load(ctx, "order-"+o.OrderID, store.Span{}); err != nil || len(again) != len(orderEvents) {
		t.Fatalf("the second redrive appended to the order: %d events, had %d (%v)", len(again), len(orderEvents), err)
	}
}

func TestSagasCheck(t *testing.T) {
	s := newSagaStack(t)
	now := time.Now()
	good, _ := s.stuckInCharging(t, now)

	// A run started under another decisions version, decided as this build decides otherwise.
	other := s.order(t)
	var f domain.Fulfilment
	d := f.Decide(domain.StartFulfilment{Order: other, Timeout: 15 * time.Minute}, now)
	started := d.Events[0].(domain.FulfilmentStarted)
	started.Decisions = domain.FulfilmentDecisions + 1
	s.appendRun(t, f, other.OrderID, started)

	err, out := s.sagas("check")
	if err != nil {
		t.Fatalf("sagas check of runs recorded by this build's decisions: %v\n%s", err, out)
	}
	if strings.Contains(out, "differs:") || !strings.Contains(out, "checked 2 unfinished runs") || !strings.Contains(out, ": 0 differ, 1 started under other decisions") ||
		!strings.Contains(out, "other decisions: "+other.OrderID+" started under decisions 2") {
		t.Fatalf("sagas check:\n%s", out)
	}

	// A run whose recorded reply leads where this build's decisions do not: it issued nothing
	// after its reservation, where they charge.
	bad := s.order(t)
	f = domain.Fulfilment{}
	d = f.Decide(domain.StartFulfilment{Order: bad, Timeout: 15 * time.Minute}, now)
	f = s.appendRun(t, f, bad.OrderID, d.Events...)
	reply := f.Decide(domain.FulfilmentReplies{{Kind: domain.CommandReserve, SKU: bad.Lines[0].SKU, OK: true, EventID: s.ids.New()}}, now).Events[0].(domain.FulfilmentReplied)
	if reply.Step != domain.StepCharging || len(reply.Issued) != 1 {
		t.Fatalf("the current decisions reply %+v, want charging and one command", reply)
	}
	reply.Issued = nil
	s.appendRun(t, f, bad.OrderID, reply)

	err, out = s.sagas("check")
	if err == nil {
		t.Fatalf("sagas check with a run that differs: no error\n%s", out)
	}
	if !strings.Contains(out, "differs: "+bad.OrderID+" at version 2:") || !strings.Contains(out, ": 1 differ,") ||
		strings.Contains(out, "differs: "+good.OrderID) || strings.Contains(out, "differs: "+other.OrderID) {
		t.Fatalf("sagas check:\n%s", out)
	}
}

func TestParkedReplayOfTheSaga(t *testing.T) {
	ctx := context.Background()
	s := newSagaStack(t)
	o := s.order(t)
	placed, err := s.raw.Load(ctx, "order-"+o.OrderID, store.Span{})
	if err != nil || len(placed) != 1 {
		t.Fatalf("the order's events: %d, %v", len(placed), err)
	}
	rec, err := ddbstream.Record(placed[0], "100")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(rec)
	if err := s.side.Parking.Park(ctx, consumer.Parked{Consumer: "saga", StreamID: "order-" + o.OrderID, Version: 1, Sequence: "100",
		Record: raw, Error: "simulated", ParkedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if out := eventfold(t, append([]string{"parked", "list", "-consumer", "saga"}, s.common...)...); !strings.Contains(out, "1 parked") {
		t.Fatalf("parked list -consumer saga:\n%s", out)
	}
	out := eventfold(t, append([]string{"parked", "replay", "-consumer", "saga"}, s.common...)...)
	if want := "replayed: order-" + o.OrderID + " at 1\n"; out != want {
		t.Fatalf("parked replay -consumer saga:\n%s\nwant\n%s", out, want)
	}
	// The saga ran the order: it reserved, charged an account that holds nothing, compensated
	// and cancelled.
	f, _, _, err := s.side.Saga.Load(ctx, o.OrderID)
	if err != nil || f.Step != domain.StepCancelled || f.Reason != domain.ErrInsufficientFunds.Code {
		t.Fatalf("run after the replay: step %q reason %q (%v), want cancelled for %s", f.Step, f.Reason, err, domain.ErrInsufficientFunds.Code)
	}
	if out := eventfold(t, append([]string{"parked", "list", "-consumer", "saga"}, s.common...)...); !strings.Contains(out, "0 parked") {
		t.Fatalf("parked list -consumer saga after the replay:\n%s", out)
	}
	// Another consumer's replay is refused before anything is read.
	if err, _, _ := runOut(t, append([]string{"parked", "replay", "-consumer", "nobody"}, s.common...)...); err == nil || !strings.Contains(err.Error(), "the projector and the saga") {
		t.Fatalf("parked replay -consumer nobody: %v", err)
	}
}

// TestSagaEnvIsTheTemplatesSagaEnvironment: the saga the commands build is configured from the
// template's SagaFunction environment, every variable of it resolved, the tables, the data key
// and the schedule group as the flags name them, else as a local deployment names them.
func TestSagaEnvIsTheTemplatesSagaEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
		want  map[string]string
	}{
		{"as the template names them", nil, map[string]string{
			"EVENTS_TABLE": "st-EventsTable", "SNAPSHOTS_TABLE": "st-SnapshotsTable", "PARKING_TABLE": "st-ParkingTable",
			"KEYS_TABLE": "st-KeysTable", "DATA_KEY": "alias/st-data", "SCHEDULE_GROUP": "st-FulfilmentSchedules",
			"SCHEDULER_ROLE_ARN": "arn:aws:iam::" + localaws.Account + ":role/st-SchedulerRole",
			"DEADLINE_DLQ_ARN":   "arn:aws:sqs:" + localaws.Region + ":" + localaws.Account + ":st-DeadlineDeadLetterQueue",
			"FULFILMENT_TIMEOUT": "15m",
		}},
		{"as the flags name them", []string{"-events-table", "ev", "-snapshots-table", "sn", "-parking-table", "pk", "-keys-table", "kt",
			"-data-key", "alias/mine", "-schedule-group", "grp"}, map[string]string{
			"EVENTS_TABLE": "ev", "SNAPSHOTS_TABLE": "sn", "PARKING_TABLE": "pk", "KEYS_TABLE": "kt", "DATA_KEY": "alias/mine", "SCHEDULE_GROUP": "grp",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c common
			fs := newFlagSet("sagas test", "", "")
			c.attach(fs, eventsTable, snapshotsTable, parkingTable, keysTable)
			c.attachScheduleGroup(fs)
			if err := fs.parse(append([]string{"-template", "../../template.yaml", "-stack", "st"}, tc.flags...), io.Discard, io.Discard); err != nil {
				t.Fatal(err)
			}
			d, err := c.resolve()
			if err != nil {
				t.Fatal(err)
			}
			vars, err := d.sagaEnv()
			if err != nil {
				t.Fatal(err)
			}
			declared := maps.Clone(d.tmpl.Resources[sagaFunction].Properties["Environment"].(map[string]any)["Variables"].(map[string]any))
			if g, ok := d.tmpl.Globals["Function"].(map[string]any)["Environment"].(map[string]any); ok {
				for k, v := range g["Variables"].(map[string]any) {
					if _, own := declared[k]; !own {
						declared[k] = v // the Globals' apply too, as in Lambda
					}
				}
			}
			if len(vars) != len(declared) {
				t.Errorf("%d variables, the template declares %d: %v", len(vars), len(declared), vars)
			}
			for name, want := range tc.want {
				if vars[name] != want {
					t.Errorf("%s = %q, want %q", name, vars[name], want)
				}
			}
			if _, err := app.SagaFromEnv(func(name string) string { return vars[name] }); err != nil {
				t.Errorf("app.SagaFromEnv: %v", err)
			}
		})
	}
}
