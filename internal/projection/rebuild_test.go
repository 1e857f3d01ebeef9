package projection_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/store"
)

func TestRebuildThenVerify(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	reg, _ := command.Registry()
	var streams []string
	for a := 0; a < 12; a++ {
		acct := ids.New()
		stream := "account-" + acct
		streams = append(streams, stream)
		history := []domain.Event{domain.AccountOpened{AccountID: acct, OwnerID: "o", Currency: "EUR"}}
		for i := 0; i < a+1; i++ {
			history = append(history, domain.MoneyDeposited{AccountID: acct, Amount: int64(10 * (i + 1))})
		}
		if a%3 == 1 { // some accounts pay orders, and get one refunded
			history = append(history, domain.AccountCharged{AccountID: acct, OrderID: "o-1", Amount: 5},
				domain.AccountCharged{AccountID: acct, OrderID: "o-2", Amount: 3}, domain.AccountRefunded{AccountID: acct, OrderID: "o-1", Amount: 5})
		}
		for i, e := range history {
			res, err := f.store.Append(ctx, stream, int64(i), event(t, e))
			if err != nil {
				t.Fatal(err)
			}
			if a > 0 { // the live projector has not seen the first account yet
				if err := f.proj.Apply(ctx, res.Events[0]); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// The rebuilt table: the template's read-model table under another stack name.
	target := awstest.MustTables(t, f.client).Refs["ReadModelsTable"]
	var mu sync.Mutex
	var reports int
	got, err := projection.Rebuild(ctx, projection.RebuildConfig{API: f.client, EventsTable: f.store.EventsTable(), Target: target, Registry: reg, Source: unsealed{f.store}, Segments: 4, Report: func(projection.Progress) { mu.Lock(); reports++; mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	if got.Applied != got.Scanned || got.Applied < 12+78 || reports == 0 {
		t.Fatalf("progress %+v after %d reports", got, reports)
	}
	c, err := projection.Verify(ctx, f.client, f.table, target)
	if err != nil {
		t.Fatal(err)
	}
	if c.Equal != 11 || c.Behind != 1 || c.Ahead != 0 || len(c.Different) != 0 {
		t.Fatalf("comparison %+v, want 11 equal and the unprojected account behind", c)
	}
	// An account opened after the rebuild's scan is only live; running the rebuild again into the
	// same table (the catch-up after a cutover) applies it, and only it.
	late := ids.New()
	res, err := f.store.Append(ctx, "account-"+late, 0, event(t, domain.AccountOpened{AccountID: late, OwnerID: "o", Currency: "EUR"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.proj.Apply(ctx, res.Events[0]); err != nil {
		t.Fatal(err)
	}
	if c, err = projection.Verify(ctx, f.client, f.table, target); err != nil || c.Missing != 1 {
		t.Fatalf("after a late account: %+v, %v; want it counted as only live", c, err)
	}
	caught, err := projection.Rebuild(ctx, projection.RebuildConfig{API: f.client, EventsTable: f.store.EventsTable(), Target: target, Registry: reg, Source: unsealed{f.store}, Segments: 4})
	if err != nil {
		t.Fatal(err)
	}
	if caught.Scanned != got.Scanned+1 || caught.Total != 1 || caught.Applied != 1 {
		t.Fatalf("catch-up progress %+v; want all %d events scanned and only the late one applied", caught, got.Scanned+1)
	}
	if c, err = projection.Verify(ctx, f.client, f.table, target); err != nil || c.Missing != 0 || c.Equal != 12 || len(c.Different) != 0 {
		t.Fatalf("after the catch-up: %+v, %v", c, err)
	}
	// A live item at the same version with other content is a difference.
	_, err = f.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(f.table),
		Key:                       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: streams[5]}},
		UpdateExpression:          aws.String("SET balance = :b"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":b": &types.AttributeValueMemberN{Value: "-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if c, err = projection.Verify(ctx, f.client, f.table, target); err != nil || fmt.Sprint(c.Different) != fmt.Sprint([]string{streams[5]}) {
		t.Fatalf("after corrupting %s: %+v, %v", streams[5], c, err)
	}
}

// TestCatchUpRacesTheProjectorOnItsTable is step 3 of the cutover under load: after the
// projector has been pointed at the rebuilt table, the catch-up pass runs into it while the
// projector writes to it too — events appended after the cutover, delivered out of order so that
// it fills gaps from the store, and repeated. Events appended before the cutover reached only the
// old table. Both write the same items with conditional version checks; neither fails, and every
// read model ends equal to the fold of its stream.
func TestCatchUpRacesTheProjectorOnItsTable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	reg, _ := command.Registry()
	target := awstest.MustTables(t, f.client).Refs["ReadModelsTable"]
	const accounts = 8
	var (
		streams = make([]string, accounts)
		heads   = make([]int64, accounts)
		want    = make([]int64, accounts)
	)
	deposit := func(t *testing.T, a int, amount int64) store.Event {
		t.Helper()
		acct := strings.TrimPrefix(streams[a], "account-")
		res, err := f.store.Append(ctx, streams[a], heads[a], event(t, domain.MoneyDeposited{AccountID: acct, Amount: amount}))
		if err != nil {
			t.Fatal(err)
		}
		heads[a]++
		want[a] += amount
		return res.Events[0]
	}
	for a := range streams {
		acct := ids.New()
		streams[a] = "account-" + acct
		if _, err := f.store.Append(ctx, streams[a], 0, event(t, domain.AccountOpened{AccountID: acct, OwnerID: "o", Currency: "EUR"})); err != nil {
			t.Fatal(err)
		}
		heads[a] = 1
		for i := 0; i < 3; i++ {
			deposit(t, a, int64(i+1))
		}
	}
	// 1. The rebuild.
	if _, err := projection.Rebuild(ctx, projection.RebuildConfig{API: f.client, EventsTable: f.store.EventsTable(), Target: target, Registry: reg, Source: unsealed{f.store}, Segments: 2}); err != nil {
		t.Fatal(err)
	}
	// Appended before the cutover: only the old table's projector gets these.
	for a := range streams {
		deposit(t, a, 10)
		deposit(t, a, 20)
	}
	// 2. The cutover: from here on the projector writes to target.
	live := projection.New(f.client, target, f.store)
	var late []store.Event
	for a := range streams {
		late = append(late, deposit(t, a, 100))
	}
	// 3. The catch-up pass, while the projector gets the late events and more are appended.
	done := make(chan error, 1)
	go func() {
		_, err := projection.Rebuild(ctx, projection.RebuildConfig{API: f.client, EventsTable: f.store.EventsTable(), Target: target, Registry: reg, Source: unsealed{f.store}, Segments: 2})
		done <- err
	}()
	for round := 0; round < 3; round++ {
		for a := range streams {
			deposit(t, a, 1000)
			late = append(late, deposit(t, a, 1))
		}
		// Newest first: each one fills the gap before it from the store; then the rest arrive
		// again, as duplicates.
		for i := len(late) - 1; i >= 0; i-- {
			if err := live.Apply(ctx, late[i]); err != nil {
				t.Fatalf("the projector on the new table: %v", err)
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("the catch-up pass: %v", err)
	}
	for a, stream := range streams {
		got := fixture{client: f.client, table: target}.item(t, stream)
		if got["balance"] != float64(want[a]) || got["v"] != float64(heads[a]) {
			t.Errorf("%s in the new table: %v; want balance %d at version %d", stream, got, want[a], heads[a])
		}
	}
}

// TestRebuildAgreesWithTheProjectorOnEveryEventType: histories holding every event type of the
// domain, projected live, and rebuilt from the event store into a fresh table, give equal items.
func TestRebuildAgreesWithTheProjectorOnEveryEventType(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	reg, _ := command.Registry()
	histories := map[string][]domain.Event{
		"user-u1": {domain.UserRegistered{UserID: "u1", Email: "a@example.com", Name: "A"}, domain.UserEmailChanged{UserID: "u1", Email: "b@example.com"},
			domain.UserDeactivated{UserID: "u1"}, domain.SubjectErased{UserID: "u1"}},
		"account-a1": {domain.AccountOpened{AccountID: "a1", OwnerID: "u1", Currency: "EUR"}, domain.MoneyDeposited{AccountID: "a1", Amount: 900},
			domain.MoneyWithdrawn{AccountID: "a1", Amount: 100}, domain.AccountCharged{AccountID: "a1", OrderID: "o1", Amount: 300},
			domain.AccountCharged{AccountID: "a1", OrderID: "o2", Amount: 0}, domain.AccountRefunded{AccountID: "a1", OrderID: "o1", Amount: 300}},
		"inventory-S1": {domain.StockAdded{SKU: "S1", Quantity: 10}, domain.StockReserved{SKU: "S1", OrderID: "o1", Quantity: 3},
			domain.StockReserved{SKU: "S1", OrderID: "o2", Quantity: 2}, domain.StockReleased{SKU: "S1", OrderID: "o1", Quantity: 3},
			domain.StockCommitted{SKU: "S1", OrderID: "o2", Quantity: 2}, domain.StockReleased{SKU: "S1", OrderID: "o3", Quantity: 0}},
		"order-o1": {domain.OrderPlaced{OrderID: "o1", CustomerID: "u1", PaymentAccountID: "a1", Currency: "EUR", Lines: []domain.OrderLine{{SKU: "S1", Quantity: 3, UnitPrice: 100}}, Total: 300},
			domain.OrderCancelled{OrderID: "o1", Reason: "timeout"}},
		"order-o2": {domain.OrderPlaced{OrderID: "o2", CustomerID: "u1", PaymentAccountID: "a1", Currency: "EUR", Lines: []domain.OrderLine{{SKU: "S1", Quantity: 2, UnitPrice: 0}}},
			domain.OrderConfirmed{OrderID: "o2"}},
		"fulfilment-o1": fulfilmentHistory(),
	}
	seen := map[string]bool{}
	for stream, history := range histories {
		for i, e := range history {
			seen[e.EventType()] = true
			res, err := f.store.Append(ctx, stream, int64(i), event(t, e))
			if err != nil {
				t.Fatal(err)
			}
			if err := f.proj.Apply(ctx, res.Events[0]); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, typ := range domain.EventTypes() {
		if !seen[typ] {
			t.Errorf("no history holds a %s", typ)
		}
	}
	target := awstest.MustTables(t, f.client).Refs["ReadModelsTable"]
	if _, err := projection.Rebuild(ctx, projection.RebuildConfig{API: f.client, EventsTable: f.store.EventsTable(), Target: target, Registry: reg, Source: unsealed{f.store}, Segments: 2}); err != nil {
		t.Fatal(err)
	}
	c, err := projection.Verify(ctx, f.client, f.table, target)
	if err != nil || c.Equal != len(histories) || len(c.Different) != 0 || c.Missing != 0 || c.Behind != 0 || c.Ahead != 0 {
		t.Fatalf("live and rebuilt: %+v, %v; want all %d equal", c, err, len(histories))
	}
	if got := f.item(t, "account-a1"); got["balance"] != float64(800) {
		t.Errorf("account balance %v, want 800", got["balance"])
	}
	if got := f.item(t, "inventory-S1"); got["onHand"] != float64(8) || got["reserved"] != float64(0) {
		t.Errorf("inventory %v, want 8 on hand, none reserved", got)
	}
}

// fulfilmentHistory is a run's events as the decisions record them: started, a line reserved,
// the deadline passed, compensated.
func fulfilmentHistory() []domain.Event {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	var f domain.Fulfilment
	var out []domain.Event
	for _, t := range []domain.FulfilmentTrigger{
		domain.StartFulfilment{Order: domain.OrderPlaced{OrderID: "o1", CustomerID: "u1", PaymentAccountID: "a1", Currency: "EUR",
			Lines: []domain.OrderLine{{SKU: "S1", Quantity: 3, UnitPrice: 100}}, Total: 300}, Timeout: time.Minute},
		domain.FulfilmentReplies{{Kind: domain.CommandReserve, SKU: "S1", OK: true, EventID: "e1"}},
		nil, // the deadline, by ID
		domain.FulfilmentReplies{{Kind: domain.CommandRelease, SKU: "S1", OK: true}, {Kind: domain.CommandCancel, OK: true}},
	} {
		if t == nil {
			t = domain.FireDeadline{ID: f.Deadline.ID}
		}
		for _, e := range f.Decide(t, at).Events {
			f, out = f.Evolve(e), append(out, e)
		}
	}
	return out
}
