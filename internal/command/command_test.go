package command_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/eventfold/eventfold/internal/auth"
	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/store"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func mustRegistry(tb testing.TB) *store.Registry {
	tb.Helper()
	reg, err := command.Registry()
	if err != nil {
		tb.Fatal(err)
	}
	return reg
}

func mustService(tb testing.TB, st store.EventStore, snapshotEvery int) *command.Service {
	tb.Helper()
	return mustServiceWith(tb, command.Config{Store: st, EmailKey: testKey, SnapshotEvery: snapshotEvery})
}

func mustServiceWith(tb testing.TB, cfg command.Config) *command.Service {
	tb.Helper()
	s, err := command.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

var ids = store.NewIDs(nil)

// owner is the user the tests' accounts belong to, and meta's caller.
const owner = "u1"

// meta is the metadata of a command the user owner sends.
func meta() command.Meta { return as(owner) }

// as is the metadata of a command the user sends.
func as(user string) command.Meta {
	return command.Meta{CommandID: ids.New(), CorrelationID: "corr-" + ids.New(), Caller: auth.User(user)}
}

// op is the metadata of a command an operator sends.
func op() command.Meta {
	return command.Meta{CommandID: ids.New(), CorrelationID: "corr-" + ids.New(), Caller: auth.Operator("arn:aws:iam::123456789012:user/ops")}
}

func TestConfigValidateReportsEverything(t *testing.T) {
	_, err := command.New(command.Config{EmailKey: []byte("short")})
	if err == nil || !strings.Contains(err.Error(), "Store") || !strings.Contains(err.Error(), "EmailKey") {
		t.Fatalf("New with a bad config: %v, want both problems named", err)
	}
}

// TestEmailKeyIsOptional: a service without an EmailKey (one that runs no user commands, the
// saga's) is valid and runs every other command; its user commands fail with ErrNoEmailKey and
// write nothing, rather than guard emails with a hash under an empty key. A key of 1 to 31 bytes
// is still refused.
func TestEmailKeyIsOptional(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{1, 16, 31} {
		if _, err := command.New(command.Config{Store: store.NewMemory(mustRegistry(t), nil), EmailKey: make([]byte, n)}); err == nil || !strings.Contains(err.Error(), "EmailKey") {
			t.Errorf("New with an EmailKey of %d bytes: %v, want it refused", n, err)
		}
	}
	st := store.NewMemory(mustRegistry(t), nil)
	eraser := &erasures{}
	svc := mustServiceWith(t, command.Config{Store: st, Eraser: eraser})
	user := ids.New()
	if _, err := svc.RegisterUser(ctx, as(user), domain.RegisterUser{UserID: user, Email: "a@example.com", Name: "A"}); !errors.Is(err, command.ErrNoEmailKey) {
		t.Fatalf("RegisterUser without an EmailKey: %v, want ErrNoEmailKey", err)
	}
	if _, err := svc.ChangeEmail(ctx, as(user), user, domain.ChangeEmail{Email: "b@example.com"}); !errors.Is(err, command.ErrNoEmailKey) {
		t.Fatalf("ChangeEmail without an EmailKey: %v, want ErrNoEmailKey", err)
	}
	if _, err := svc.EraseUser(ctx, op(), user); !errors.Is(err, command.ErrNoEmailKey) {
		t.Fatalf("EraseUser without an EmailKey: %v, want ErrNoEmailKey", err)
	}
	if got := eraser.take(); len(got) != 0 {
		t.Fatalf("erased %q without an EmailKey", got)
	}
	if events, err := st.Load(ctx, "user-"+user, store.Span{}); err != nil || len(events) != 0 {
		t.Fatalf("user stream holds %d events (%v), want none", len(events), err)
	}
	acct := ids.New()
	if _, err := svc.OpenAccount(ctx, as(user), domain.OpenAccount{AccountID: acct, OwnerID: user, Currency: "EUR"}); err != nil {
		t.Fatalf("OpenAccount without an EmailKey: %v", err)
	}
	if res, err := svc.ChargeAccount(ctx, meta(), acct, domain.ChargeAccount{OrderID: "o-1", CustomerID: user, Currency: "EUR"}); err != nil || len(res.EventIDs) != 1 {
		t.Fatalf("ChargeAccount without an EmailKey: %+v, %v", res, err)
	}
}

func TestEnvelopeCarriesMetadata(t *testing.T) {
	st := store.NewMemory(mustRegistry(t), nil)
	svc := mustService(t, st, 0)
	id := ids.New()
	m := as(id)
	res, err := svc.RegisterUser(context.Background(), m, domain.RegisterUser{UserID: id, Email: "Ann@Example.com", Name: "Ann"})
	if err != nil {
		t.Fatal(err)
	}
	if res.ID != id || res.StreamID != "user-"+id || res.Version != 1 || len(res.EventIDs) != 1 {
		t.Fatalf("result = %+v", res)
	}
	events, _ := st.Load(context.Background(), res.StreamID, store.Span{})
	e := events[0]
	if e.Type != domain.TypeUserRegistered || e.CorrelationID != m.CorrelationID || e.CausationID != m.CommandID || e.Subject != id || e.ID != res.EventIDs[0] {
		t.Fatalf("envelope = %+v", e)
	}
	var payload domain.UserRegistered
	if err := json.Unmarshal(e.Data, &payload); err != nil || payload.Email != "ann@example.com" {
		t.Fatalf("payload = %s (%v), want the normalised email", e.Data, err)
	}
}

func TestEmailIsUniqueAcrossUsers(t *testing.T) {
	ctx := context.Background()
	svc := mustService(t, store.NewMemory(mustRegistry(t), nil), 0)
	a, b := ids.New(), ids.New()
	if _, err := svc.RegisterUser(ctx, as(a), domain.RegisterUser{UserID: a, Email: "x@example.com", Name: "A"}); err != nil {
		t.Fatal(err)
	}
	_, err := svc.RegisterUser(ctx, as(b), domain.RegisterUser{UserID: b, Email: " X@Example.COM ", Name: "B"})
	if !errors.Is(err, domain.ErrEmailTaken) {
		t.Fatalf("second registration with the same email: %v, want ErrEmailTaken", err)
	}
	if _, err := svc.ChangeEmail(ctx, as(a), a, domain.ChangeEmail{Email: "y@example.com"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RegisterUser(ctx, as(b), domain.RegisterUser{UserID: b, Email: "x@example.com", Name: "B"}); err != nil {
		t.Fatalf("registration with a released email: %v", err)
	}
	if _, err := svc.ChangeEmail(ctx, as(b), b, domain.ChangeEmail{Email: "y@example.com"}); !errors.Is(err, domain.ErrEmailTaken) {
		t.Fatalf("change to another user's email: %v, want ErrEmailTaken", err)
	}
	// The same email again is a no-op: no event, no claim churn.
	res, err := svc.ChangeEmail(ctx, as(a), a, domain.ChangeEmail{Email: "Y@example.com"})
	if err != nil || len(res.EventIDs) != 0 || res.Version != 2 {
		t.Fatalf("no-op change = %+v, %v", res, err)
	}
}

func TestIfMatchPinsTheVersion(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory(mustRegistry(t), nil)
	svc := mustService(t, st, 0)
	acct := ids.New()
	if _, err := svc.OpenAccount(ctx, meta(), domain.OpenAccount{AccountID: acct, OwnerID: "u1", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	one := int64(1)
	m := meta()
	m.Expected = &one
	if res, err := svc.Deposit(ctx, m, acct, domain.Deposit{Amount: 5}); err != nil || res.Version != 2 {
		t.Fatalf("deposit at the current version: %+v, %v", res, err)
	}
	// Another command at the same, now stale, version. (The same command again is a retry of it:
	// see TestACommandIDAppliesOnce.)
	stale := meta()
	stale.Expected = &one
	_, err := svc.Deposit(ctx, stale, acct, domain.Deposit{Amount: 5})
	var ce *store.ConflictError
	if !errors.As(err, &ce) || ce.Expected != 1 || ce.Actual != 2 {
		t.Fatalf("deposit at a stale version: %v, want a conflict 1 vs 2", err)
	}
	events, _ := st.Load(ctx, "account-"+acct, store.Span{})
	if len(events) != 2 {
		t.Fatalf("%d events after a rejected deposit, want 2", len(events))
	}
}

// TestMustExist: given no stock of an item, when stock is added to it with MustExist, then
// ErrPreconditionFailed and no item; given the item, then the stock is added at any version.
func TestMustExist(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory(mustRegistry(t), nil)
	svc := mustService(t, st, 0)
	m := op()
	m.MustExist = true
	if _, err := svc.AddStock(ctx, m, domain.AddStock{SKU: "SKU-1", Quantity: 1}); !errors.Is(err, command.ErrPreconditionFailed) {
		t.Fatalf("stock for a new item with MustExist: %v, want ErrPreconditionFailed", err)
	}
	if events, _ := st.Load(ctx, "inventory-SKU-1", store.Span{}); len(events) != 0 {
		t.Fatalf("%d events after a failed precondition, want none", len(events))
	}
	if _, err := svc.AddStock(ctx, op(), domain.AddStock{SKU: "SKU-1", Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	if res, err := svc.AddStock(ctx, m, domain.AddStock{SKU: "SKU-1", Quantity: 1}); err != nil || res.Version != 2 {
		t.Fatalf("stock for an item with MustExist: %+v, %v", res, err)
	}
}

func TestUnknownOrMalformedIDsAreNotFound(t *testing.T) {
	ctx := context.Background()
	svc := mustService(t, store.NewMemory(mustRegistry(t), nil), 0)
	for _, id := range []string{"", "no such", "x/y", ids.New()} {
		if _, err := svc.Deposit(ctx, meta(), id, domain.Deposit{Amount: 1}); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("deposit to %q: %v, want ErrNotFound", id, err)
		}
	}
}

// conflicting wraps a store and makes the first appends lose to a concurrent writer.
type conflicting struct {
	store.EventStore
	mu    sync.Mutex
	loses int
}

func (c *conflicting) AppendStreams(ctx context.Context, appends ...store.StreamAppend) ([]store.Appended, error) {
	c.mu.Lock()
	lose := c.loses > 0
	c.loses--
	c.mu.Unlock()
	if lose {
		return nil, &store.ConflictError{StreamID: appends[0].StreamID, Expected: appends[0].Expected, Actual: appends[0].Expected + 1}
	}
	return c.EventStore.AppendStreams(ctx, appends...)
}

func TestConflictsAreRetriedOnlyWithoutIfMatch(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory(mustRegistry(t), nil)
	acct := ids.New()
	if _, err := mustService(t, mem, 0).OpenAccount(ctx, meta(), domain.OpenAccount{AccountID: acct, OwnerID: "u1", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	st := &conflicting{EventStore: mem, loses: 3}
	svc := mustService(t, st, 0)
	if res, err := svc.Deposit(ctx, meta(), acct, domain.Deposit{Amount: 7}); err != nil || res.Version != 2 {
		t.Fatalf("deposit after 3 lost races: %+v, %v", res, err)
	}
	st.loses = 1
	m := meta()
	v := int64(2)
	m.Expected = &v
	if _, err := svc.Deposit(ctx, m, acct, domain.Deposit{Amount: 7}); !errors.Is(err, store.ErrVersionConflict) {
		t.Fatalf("conflict with If-Match: %v, want it reported", err)
	}
	st.loses = 1000
	if _, err := svc.Deposit(ctx, meta(), acct, domain.Deposit{Amount: 7}); !errors.Is(err, store.ErrVersionConflict) {
		t.Fatalf("endless conflicts: %v, want the conflict after the last attempt", err)
	}
}

func TestConcurrentDepositsOnMemory(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory(mustRegistry(t), nil)
	svc := mustService(t, st, 0)
	acct := ids.New()
	if _, err := svc.OpenAccount(ctx, meta(), domain.OpenAccount{AccountID: acct, OwnerID: "u1", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 1; i <= 20; i++ {
		wg.Add(1)
		go func(amount int64) {
			defer wg.Done()
			if _, err := svc.Deposit(ctx, meta(), acct, domain.Deposit{Amount: amount}); err != nil {
				errs <- err
			}
		}(int64(i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := balance(t, st, acct); got != 210 {
		t.Fatalf("balance = %d, want 210", got)
	}
}

func balance(t *testing.T, st store.Reader, acct string) int64 {
	t.Helper()
	events, err := st.Load(context.Background(), "account-"+acct, store.Span{})
	if err != nil {
		t.Fatal(err)
	}
	var a domain.Account
	for _, e := range events {
		de, err := domain.Decode(e.Type, e.Data)
		if err != nil {
			t.Fatal(err)
		}
		a = a.Evolve(de)
	}
	return a.Balance
}

func TestSnapshotsBoundLoads(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory(mustRegistry(t), nil)
	svc := mustService(t, st, 5)
	acct := ids.New()
	if _, err := svc.OpenAccount(ctx, meta(), domain.OpenAccount{AccountID: acct, OwnerID: "u1", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 12; i++ {
		if _, err := svc.Deposit(ctx, meta(), acct, domain.Deposit{Amount: 10}); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := st.LoadSnapshot(ctx, "account-"+acct, 2)
	if err != nil || snap.Version < 10 {
		t.Fatalf("snapshot = %+v, %v; want one at version 10 or later", snap, err)
	}
	var a domain.Account
	if err := json.Unmarshal(snap.Data, &a); err != nil || a.Balance != int64(snap.Version-1)*10 {
		t.Fatalf("snapshot state %s (%v) does not match version %d", snap.Data, err, snap.Version)
	}
	// A new instance without cached states loads the snapshot plus the events after it; the
	// balance it sees is right: withdrawing one cent more than it is refused, the balance itself
	// is not.
	cold := mustServiceWith(t, command.Config{Store: st, EmailKey: testKey, SnapshotEvery: 5, CachedStates: -1})
	if _, err := cold.Withdraw(ctx, meta(), acct, domain.Withdraw{Amount: 121}); !errors.Is(err, domain.ErrInsufficientFunds) {
		t.Fatalf("withdraw 121 of 120: %v", err)
	}
	if _, err := cold.Withdraw(ctx, meta(), acct, domain.Withdraw{Amount: 120}); err != nil {
		t.Fatalf("withdraw 120 of 120: %v", err)
	}
	// A user's state holds personal data: no snapshots of it until snapshots are sealed.
	uid := ids.New()
	if _, err := svc.RegisterUser(ctx, as(uid), domain.RegisterUser{UserID: uid, Email: "s@example.com", Name: "S"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		if _, err := svc.ChangeEmail(ctx, as(uid), uid, domain.ChangeEmail{Email: fmt.Sprintf("s%d@example.com", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, schema := range []int{0, 1, 2} {
		if _, err := st.LoadSnapshot(ctx, "user-"+uid, schema); !errors.Is(err, store.ErrNoSnapshot) {
			t.Fatalf("user snapshot of schema %d: %v, want none", schema, err)
		}
	}
}

// TestUnreadableSnapshotIsIgnored: a snapshot that does not decode into the aggregate's state is
// ignored whole; the state is folded from the first event, not from what the decoder half-filled.
func TestUnreadableSnapshotIsIgnored(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory(mustRegistry(t), nil)
	svc := mustService(t, st, -1)
	acct := ids.New()
	if _, err := svc.OpenAccount(ctx, meta(), domain.OpenAccount{AccountID: acct, OwnerID: "u1", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	dep, err := svc.Deposit(ctx, meta(), acct, domain.Deposit{Amount: 100})
	if err != nil {
		t.Fatal(err)
	}
	bad := json.RawMessage(`{"ID":"x","Open":true,"Balance":100,"Currency":7}`)
	if err := st.SaveSnapshot(ctx, store.Snapshot{StreamID: "account-" + acct, Version: 2, EventID: dep.EventIDs[0], SchemaVersion: 2, Data: bad}); err != nil {
		t.Fatal(err)
	}
	cold := mustServiceWith(t, command.Config{Store: st, EmailKey: testKey, SnapshotEvery: -1, CachedStates: -1})
	if _, err := cold.Withdraw(ctx, meta(), acct, domain.Withdraw{Amount: 150}); !errors.Is(err, domain.ErrInsufficientFunds) {
		t.Fatalf("withdraw 150 of 100 through an unreadable snapshot: %v, want insufficient funds", err)
	}
}

// TestACommandIDAppliesOnce: attempts of one command share its ID. Whichever way a second attempt
// meets the first one's events (its If-Match is stale because of them, or its append loses the
// version race to them), it answers with them and appends nothing.
func TestACommandIDAppliesOnce(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		ifMatch bool
	}{{"without If-Match", false}, {"with If-Match", true}} {
		t.Run(tc.name, func(t *testing.T) {
			st := store.NewMemory(mustRegistry(t), nil)
			acct := ids.New()
			if _, err := mustService(t, st, 0).OpenAccount(ctx, meta(), domain.OpenAccount{AccountID: acct, OwnerID: "u1", Currency: "EUR"}); err != nil {
				t.Fatal(err)
			}
			m := meta()
			if tc.ifMatch {
				one := int64(1)
				m.Expected = &one
			}
			// The second attempt loads the stream at version 1, then the first attempt's
			// deposit lands just before its own append.
			race := &landFirst{EventStore: st}
			second := mustServiceWith(t, command.Config{Store: race, EmailKey: testKey})
			race.first = func() {
				if _, err := mustService(t, st, 0).Deposit(ctx, m, acct, domain.Deposit{Amount: 40}); err != nil {
					t.Fatal(err)
				}
			}
			res, err := second.Deposit(ctx, m, acct, domain.Deposit{Amount: 40})
			events, _ := st.Load(ctx, "account-"+acct, store.Span{})
			if err != nil || len(events) != 2 || res.Version != 2 || len(res.EventIDs) != 1 || res.EventIDs[0] != events[1].ID {
				t.Fatalf("second attempt = %+v, %v; the stream holds %d events; want the first attempt's deposit, once", res, err, len(events))
			}
			// And a further attempt (a retry, as the idempotency layer marks it) answers the same.
			m.Retry = true
			res, err = mustService(t, st, 0).Deposit(ctx, m, acct, domain.Deposit{Amount: 40})
			events, _ = st.Load(ctx, "account-"+acct, store.Span{})
			if err != nil || len(events) != 2 || res.Version != 2 || res.EventIDs[0] != events[1].ID {
				t.Fatalf("third attempt = %+v, %v; the stream holds %d events", res, err, len(events))
			}
		})
	}
}

// landFirst runs first just before its first append goes out.
type landFirst struct {
	store.EventStore
	once  sync.Once
	first func()
}

func (l *landFirst) AppendStreams(ctx context.Context, appends ...store.StreamAppend) ([]store.Appended, error) {
	l.once.Do(func() {
		if l.first != nil {
			l.first()
		}
	})
	return l.EventStore.AppendStreams(ctx, appends...)
}
