package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/auth"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/query"
	"github.com/eventfold/eventfold/internal/store"
)

// TestReview12MinVersionHidesOthersLaggingStreams asks, as bob, for a version of ann's account
// and of ann's order that the event store has and the read model has not reached yet (no
// projector runs here): the answer must be the one a stream that does not exist gets
// (ErrNoVersion, at once), not ErrBehind (503 not-yet-consistent), which would tell bob that
// ann's account or order exists and has that version.
func TestReview12MinVersionHidesOthersLaggingStreams(t *testing.T) {
	client, env, st := newStore(t)
	q := query.New(query.Config{API: client, Table: env.Refs["ReadModelsTable"], Events: st, MaxWait: 3 * time.Second})
	ctx := context.Background()

	accountID, orderID := ids.New(), ids.New()
	appendEvent(t, st, "account-"+accountID, domain.AccountOpened{AccountID: accountID, OwnerID: "ann", Currency: "EUR"})
	appendEvent(t, st, "order-"+orderID, domain.OrderPlaced{OrderID: orderID, CustomerID: "ann", PaymentAccountID: accountID,
		Currency: "EUR", Lines: []domain.OrderLine{{SKU: "SKU-1", Quantity: 1, UnitPrice: 100}}, Total: 100})

	bob, ann := auth.User("bob"), auth.User("ann")
	for _, tc := range []struct {
		name string
		get  func(c auth.Caller, id string) error
		id   string
	}{
		{"account", func(c auth.Caller, id string) error { _, err := q.Account(ctx, c, id, 1); return err }, accountID},
		{"order", func(c auth.Caller, id string) error { _, err := q.Order(ctx, c, id, 1); return err }, orderID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.get(bob, ids.New()); !errors.Is(err, query.ErrNoVersion) {
				t.Fatalf("no such %s: %v, want ErrNoVersion", tc.name, err)
			}
			// The owner waits, and is told the read model is behind: the test's premise.
			if err := tc.get(ann, tc.id); !errors.Is(err, query.ErrBehind) {
				t.Fatalf("ann's own %s: %v, want ErrBehind", tc.name, err)
			}
			start := time.Now()
			err := tc.get(bob, tc.id)
			if !errors.Is(err, query.ErrNoVersion) || errors.Is(err, query.ErrBehind) {
				t.Errorf("bob asking for ann's %s at version 1: %v, want ErrNoVersion as for one that does not exist", tc.name, err)
			}
			if d := time.Since(start); d > 1500*time.Millisecond {
				t.Errorf("bob asking for ann's %s waited %v: a wait tells the stream exists", tc.name, d)
			}
		})
	}
}

// TestReview12MinVersionHidesOthersStaleItems is the case of a read model that has an earlier
// version of ann's account: bob asking for the next one is answered at once, as about one that
// does not exist, and ann waits for it.
func TestReview12MinVersionHidesOthersStaleItems(t *testing.T) {
	client, env, st := newStore(t)
	table := env.Refs["ReadModelsTable"]
	q := query.New(query.Config{API: client, Table: table, Events: st, MaxWait: 3 * time.Second})
	ctx := context.Background()
	accountID := ids.New()
	stream := "account-" + accountID
	appendEvent(t, st, stream, domain.AccountOpened{AccountID: accountID, OwnerID: "ann", Currency: "EUR"})
	opened, err := st.Load(ctx, stream, store.Span{})
	if err != nil || len(opened) != 1 {
		t.Fatal(opened, err)
	}
	if err := projection.New(client, table, st).Apply(ctx, opened[0]); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(domain.MoneyDeposited{AccountID: accountID, Amount: 5})
	if _, err := st.Append(ctx, stream, 1, store.Event{ID: ids.New(), Type: domain.TypeMoneyDeposited, Data: data}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Account(ctx, auth.User("ann"), accountID, 2); !errors.Is(err, query.ErrBehind) {
		t.Fatalf("ann, her account at version 2: %v, want ErrBehind", err)
	}
	start := time.Now()
	if _, err := q.Account(ctx, auth.User("bob"), accountID, 2); !errors.Is(err, query.ErrNoVersion) || errors.Is(err, query.ErrBehind) {
		t.Errorf("bob, ann's account at version 2: %v, want ErrNoVersion", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("bob asking for ann's account waited %v", d)
	}
}

func appendEvent(t *testing.T, st *store.DynamoDB, stream string, e domain.Event) {
	t.Helper()
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(context.Background(), stream, 0, store.Event{ID: ids.New(), Type: e.EventType(), Data: data}); err != nil {
		t.Fatal(err)
	}
}

// openingStore is the sealing store as the temporal queries see it: it counts the loads, each
// of which opens the personal fields of what it loads.
type openingStore struct {
	query.Events
	loads atomic.Int64
}

func (o *openingStore) Load(ctx context.Context, stream string, span store.Span) ([]store.Event, error) {
	o.loads.Add(1)
	return o.Events.Load(ctx, stream, span)
}

// TestReview12AsOfOpensNothingOfOthers: bob asking for ann's order (whose shipping address is
// ann's personal data) or account as of a time is told there is none, and the service does not
// open ann's events to tell him so: the ownership is read from the envelopes, as
// Fulfilment's is, before the sealing store is read.
func TestReview12AsOfOpensNothingOfOthers(t *testing.T) {
	client, env, st := newStore(t)
	opening := &openingStore{Events: st}
	q := query.New(query.Config{API: client, Table: env.Refs["ReadModelsTable"], Events: opening, Envelopes: st})
	ctx := context.Background()
	accountID, orderID := ids.New(), ids.New()
	appendEvent(t, st, "account-"+accountID, domain.AccountOpened{AccountID: accountID, OwnerID: "ann", Currency: "EUR"})
	appendEvent(t, st, "order-"+orderID, domain.OrderPlaced{OrderID: orderID, CustomerID: "ann", PaymentAccountID: accountID,
		Currency: "EUR", Lines: []domain.OrderLine{{SKU: "SKU-1", Quantity: 1, UnitPrice: 100}}, Total: 100})
	later := time.Now().Add(time.Hour)

	bob, ann := auth.User("bob"), auth.User("ann")
	if _, err := q.OrderAsOf(ctx, bob, orderID, later); !errors.Is(err, query.ErrNotFound) {
		t.Fatalf("bob, ann's order: %v", err)
	}
	if _, err := q.AccountAsOf(ctx, bob, accountID, later); !errors.Is(err, query.ErrNotFound) {
		t.Fatalf("bob, ann's account: %v", err)
	}
	if n := opening.loads.Load(); n != 0 {
		t.Errorf("bob's questions about ann's order and account opened %d loads of ann's events", n)
	}
	if o, err := q.OrderAsOf(ctx, ann, orderID, later); err != nil || o.CustomerID != "ann" {
		t.Fatalf("ann, her order: %+v %v", o, err)
	}
	if a, err := q.AccountAsOf(ctx, ann, accountID, later); err != nil || a.OwnerID != "ann" {
		t.Fatalf("ann, her account: %+v %v", a, err)
	}
	if _, err := q.OrderAsOf(ctx, bob, ids.New(), later); !errors.Is(err, query.ErrNotFound) {
		t.Fatalf("bob, no such order: %v", err)
	}
}
