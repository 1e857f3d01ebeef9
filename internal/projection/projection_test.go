package projection_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/consumer"
	"github.com/eventfold/eventfold/internal/ddbstream"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/store"
)

func TestMain(m *testing.M) { awstest.Main(m) }

type fixture struct {
	client *dynamodb.Client
	store  *store.DynamoDB
	proj   *projection.Projector
	table  string
}

func newFixture(t testing.TB) fixture {
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
	return fixture{client: client, store: st, proj: projection.New(client, env.Refs["ReadModelsTable"], st), table: env.Refs["ReadModelsTable"]}
}

var ids = store.NewIDs(nil)

// unsealed is the fixture's store as a rebuild's Source: its events hold no sealed fields, so
// there is nothing to open.
type unsealed struct{ *store.DynamoDB }

func (unsealed) Open(context.Context, *store.Event) error { return nil }

func event(t testing.TB, e domain.Event) store.Event {
	t.Helper()
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return store.Event{ID: ids.New(), Type: e.EventType(), Data: data}
}

func (f fixture) item(t testing.TB, stream string) map[string]any {
	t.Helper()
	out, err := f.client.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(f.table),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: stream}}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := attributevalue.UnmarshalMap(out.Item, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestReadModelsEqualTheFoldUnderAnyDelivery is a property test: random account histories are
// appended to the event store, then delivered to the projector shuffled, with duplicates and
// replays. Every read model ends equal to the fold of its stream, at its stream's version.
func TestReadModelsEqualTheFoldUnderAnyDelivery(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))
	for trial := 0; trial < 8; trial++ {
		acct := ids.New()
		stream := "account-" + acct
		var a domain.Account
		history := []domain.Event{domain.AccountOpened{AccountID: acct, OwnerID: "o", Currency: "EUR"}}
		a = a.Evolve(history[0])
		var orders []string
		for i := 0; i < 5+rng.IntN(25); i++ {
			amount := int64(1 + rng.IntN(100))
			var e domain.Event = domain.MoneyDeposited{AccountID: acct, Amount: amount}
			switch rng.IntN(6) {
			case 0, 1:
				if a.Balance >= amount {
					e = domain.MoneyWithdrawn{AccountID: acct, Amount: amount}
				}
			case 2:
				// An order's charge, decided by the domain: once per order, never above the balance.
				order := fmt.Sprintf("o-%d", rng.IntN(8))
				if decided, err := a.Charge(domain.ChargeAccount{OrderID: order, CustomerID: "o", Currency: "EUR", Amount: amount}); err == nil && len(decided) == 1 {
					e, orders = decided[0], append(orders, order)
				}
			case 3:
				if len(orders) > 0 {
					if decided, err := a.Refund(orders[rng.IntN(len(orders))]); err == nil && len(decided) == 1 {
						e = decided[0]
					}
				}
			}
			a = a.Evolve(e)
			history = append(history, e)
		}
		var stored []store.Event
		for i, e := range history {
			res, err := f.store.Append(ctx, stream, int64(i), event(t, e))
			if err != nil {
				t.Fatal(err)
			}
			stored = append(stored, res.Events...)
		}
		// Deliveries: every event at least once, some twice or three times, in random order.
		var deliveries []store.Event
		for _, e := range stored {
			for n := 1 + rng.IntN(3); n > 0; n-- {
				deliveries = append(deliveries, e)
			}
		}
		rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
		for _, e := range deliveries {
			if err := f.proj.Apply(ctx, e); err != nil {
				t.Fatalf("trial %d: apply %s at %d: %v", trial, e.StreamID, e.Version, err)
			}
		}
		got := f.item(t, stream)
		if got["balance"] != float64(a.Balance) || got["v"] != float64(len(history)) || got["currency"] != "EUR" {
			t.Fatalf("trial %d: read model %v, want balance %d at version %d", trial, got, a.Balance, len(history))
		}
	}
}

func TestEveryReadModel(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	apply := func(stream string, events ...domain.Event) {
		t.Helper()
		for i, e := range events {
			res, err := f.store.Append(ctx, stream, int64(i), event(t, e))
			if err != nil {
				t.Fatal(err)
			}
			if err := f.proj.Apply(ctx, res.Events[0]); err != nil {
				t.Fatal(err)
			}
		}
	}
	apply("user-u1", domain.UserRegistered{UserID: "u1", Email: "a@example.com", Name: "A"}, domain.UserEmailChanged{UserID: "u1", Email: "b@example.com"}, domain.UserDeactivated{UserID: "u1"})
	apply("user-u2", domain.UserRegistered{UserID: "u2", Email: "c@example.com", Name: "C"}, domain.SubjectErased{UserID: "u2"})
	apply("inventory-SKU-1", domain.StockAdded{SKU: "SKU-1", Quantity: 10}, domain.StockReserved{SKU: "SKU-1", OrderID: "o1", Quantity: 4},
		domain.StockReserved{SKU: "SKU-1", OrderID: "o2", Quantity: 3}, domain.StockReleased{SKU: "SKU-1", OrderID: "o2", Quantity: 3},
		domain.StockCommitted{SKU: "SKU-1", OrderID: "o1", Quantity: 4})
	apply("inventory-SKU-2", domain.StockAdded{SKU: "SKU-2", Quantity: 5}, domain.StockReleased{SKU: "SKU-2", OrderID: "o3", Quantity: 0},
		domain.StockReserved{SKU: "SKU-2", OrderID: "o4", Quantity: 2})
	apply("order-o1", domain.OrderPlaced{OrderID: "o1", CustomerID: "c1", PaymentAccountID: "a1", Currency: "EUR", Lines: []domain.OrderLine{{SKU: "SKU-1", Quantity: 4, UnitPrice: 250}}, Total: 1000},
		domain.OrderCancelled{OrderID: "o1", Reason: "out-of-stock"})
	apply("account-a1", domain.AccountOpened{AccountID: "a1", OwnerID: "c1", Currency: "EUR"}, domain.MoneyDeposited{AccountID: "a1", Amount: 5000},
		domain.AccountCharged{AccountID: "a1", OrderID: "o1", Amount: 1000}, domain.AccountCharged{AccountID: "a1", OrderID: "o2", Amount: 1500},
		domain.AccountRefunded{AccountID: "a1", OrderID: "o1", Amount: 1000}, domain.AccountCharged{AccountID: "a1", OrderID: "o5", Amount: 0})
	golden(t, "testdata/every-read-model.golden.json", map[string]map[string]any{
		"user-u1": f.item(t, "user-u1"), "user-u2": f.item(t, "user-u2"), "inventory-SKU-1": f.item(t, "inventory-SKU-1"), "order-o1": f.item(t, "order-o1"),
		"inventory-SKU-2": f.item(t, "inventory-SKU-2"), "account-a1": f.item(t, "account-a1"),
	})
	for stream, want := range map[string]map[string]any{
		"user-u1":         {"email": "b@example.com", "userStatus": "deactivated", "v": float64(3), "kind": "user"},
		"inventory-SKU-1": {"onHand": float64(6), "reserved": float64(0), "v": float64(5), "kind": "inventory"},
		"inventory-SKU-2": {"onHand": float64(5), "reserved": float64(2), "v": float64(3), "kind": "inventory"},
		"account-a1":      {"balance": float64(3500), "v": float64(6), "kind": "account"},
		"order-o1":        {"orderStatus": "cancelled", "customerId": "c1", "total": float64(1000), "cancelReason": "out-of-stock", "lineCount": float64(1), "v": float64(2)},
	} {
		got := f.item(t, stream)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s.%s = %v, want %v", stream, k, got[k], v)
			}
		}
	}
	// The lists are indexes of the same items.
	out, err := f.client.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(f.table), IndexName: aws.String("OrdersByCustomer"),
		KeyConditionExpression: aws.String("customerId = :c"), ExpressionAttributeValues: map[string]types.AttributeValue{":c": &types.AttributeValueMemberS{Value: "c1"}}})
	if err != nil || len(out.Items) != 1 {
		t.Fatalf("orders by customer: %v, %v", out, err)
	}
}

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares the read-model items with a golden file (go test -update rewrites it).
// updatedAt, the time the events were recorded, is left out.
func golden(t *testing.T, path string, items map[string]map[string]any) {
	t.Helper()
	for _, it := range items {
		delete(it, "updatedAt")
	}
	got, err := json.MarshalIndent(items, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read models differ from %s:\n%s", path, got)
	}
}

func TestMissingEventsInTheStoreAreAnError(t *testing.T) {
	f := newFixture(t)
	e := event(t, domain.MoneyDeposited{AccountID: "x", Amount: 1})
	e.StreamID, e.Version = "account-"+ids.New(), 5 // the store holds nothing of this stream
	if err := f.proj.Apply(context.Background(), e); err == nil {
		t.Fatal("applying version 5 of an empty stream succeeded")
	}
	if got := f.item(t, e.StreamID); len(got) != 0 {
		t.Fatalf("read model written: %v", got)
	}
}

// TestDeliveryThroughTheConsumer runs the same property through the consumer's batch handling,
// as the projector Lambda does: stream records of several accounts in batches that repeat and
// reorder records across batches (as retries and replays do). Every read model ends equal to
// the fold of its stream.
func TestDeliveryThroughTheConsumer(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	reg, _ := command.Registry()
	p, err := consumer.New(consumer.Config{Name: "projector", Registry: reg, Handler: f.proj, Parking: noParking{t},
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), Unsealer: consumer.NoUnsealer})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 5))
	var records []events.DynamoDBEventRecord
	want := map[string]int64{}
	for a := 0; a < 4; a++ {
		acct := ids.New()
		stream := "account-" + acct
		history := []domain.Event{domain.AccountOpened{AccountID: acct, OwnerID: "o", Currency: "EUR"}}
		for i := 0; i < 10; i++ {
			amount := int64(1 + rng.IntN(50))
			history = append(history, domain.MoneyDeposited{AccountID: acct, Amount: amount})
			want[stream] += amount
		}
		for i, e := range history {
			res, err := f.store.Append(ctx, stream, int64(i), event(t, e))
			if err != nil {
				t.Fatal(err)
			}
			records = append(records, streamRecord(t, res.Events[0], len(records)+1))
		}
	}
	for round := 0; round < 6; round++ {
		batch := append([]events.DynamoDBEventRecord(nil), records...)
		rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		batch = batch[:rng.IntN(len(batch))+1]
		resp, err := p.Handle(ctx, events.DynamoDBEvent{Records: batch})
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("round %d: %v, failures %v", round, err, resp.BatchItemFailures)
		}
	}
	if resp, err := p.Handle(ctx, events.DynamoDBEvent{Records: records}); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("full replay: %v %v", err, resp.BatchItemFailures)
	}
	for stream, balance := range want {
		if got := f.item(t, stream); got["balance"] != float64(balance) || got["v"] != float64(11) {
			t.Fatalf("%s: read model %v, want balance %d at version 11", stream, got, balance)
		}
	}
}

type noParking struct{ t *testing.T }

func (n noParking) Park(_ context.Context, p consumer.Parked) error {
	n.t.Errorf("parked %s at %d: %s", p.StreamID, p.Version, p.Error)
	return nil
}

// streamRecord is the stream record DynamoDB Streams makes of a stored event.
func streamRecord(t *testing.T, e store.Event, seq int) events.DynamoDBEventRecord {
	t.Helper()
	rec, err := ddbstream.Record(e, fmt.Sprintf("%021d", seq))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}
