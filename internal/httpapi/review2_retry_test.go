package httpapi_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/store"
)

// afterFirstLoad runs hook once, just after the first Load of its instance has returned: for a
// retry, the look for the command's own events; the load that the command decides on follows.
type afterFirstLoad struct {
	store.EventStore
	once sync.Once
	hook func()
}

func (a *afterFirstLoad) Load(ctx context.Context, stream string, span store.Span) ([]store.Event, error) {
	events, err := a.EventStore.Load(ctx, stream, span)
	a.once.Do(func() {
		if a.hook != nil {
			a.hook()
		}
	})
	return events, err
}

// lateBetweenCheckAndLoad runs req as attempt 1, whose append is on the wire when its lock (its
// deadline) ends, then as attempt 2 on another instance, with attempt 1's write landing after
// attempt 2 looked for the command's events and before it loads the stream to decide. It returns
// attempt 2's answer and a third retry's.
func lateBetweenCheckAndLoad(t *testing.T, plain, hsA, hsB *harness, a *inFlight, b *afterFirstLoad, req events.APIGatewayV2HTTPRequest) (reply, reply) {
	t.Helper()
	ctxA, cancel := context.WithTimeout(context.Background(), 2*time.Second) // room to reach the append on a loaded machine
	defer cancel()
	aDone := make(chan struct{})
	go func() { defer close(aDone); hsA.h.Handle(ctxA, req) }()
	awaitAppend(t, a.reached, aDone)
	time.Sleep(time.Until(deadlineOf(ctxA)) + 50*time.Millisecond) // attempt 1 has timed out
	b.hook = func() { close(a.land); <-a.landed }
	r2 := hsB.do(t, req)
	<-aDone
	return r2, plain.do(t, req)
}

func lateHarnesses(t *testing.T) (plain, hsA, hsB *harness, a *inFlight, b *afterFirstLoad) {
	t.Helper()
	reqs := &awstest.Requests{}
	client := reqs.Client(t)
	env := awstest.MustTables(t, client)
	plain = wire(t, client, reqs, env)
	hsA = wireWith(t, client, reqs, env, func(st store.EventStore) store.EventStore { a = newInFlight(st); return a }, nil)
	b = &afterFirstLoad{}
	hsB = wireWith(t, client, reqs, env, func(st store.EventStore) store.EventStore { b.EventStore = st; return b }, nil)
	return plain, hsA, hsB, a, b
}

// TestReview2LateAppendBetweenRetryCheckAndLoadDepositsTwice: the retry of an Idempotency-Key
// looks for the command's events before it loads the stream; attempt 1's late write lands in
// between, so the load already holds it, the decision is made again on top of it, and its append
// succeeds: one request, two deposits.
func TestReview2LateAppendBetweenRetryCheckAndLoadDepositsTwice(t *testing.T) {
	plain, hsA, hsB, a, b := lateHarnesses(t)
	acct := plain.openAccount(t)
	r2, r3 := lateBetweenCheckAndLoad(t, plain, hsA, hsB, a, b, deposit(t, acct, 40, "idempotency-key", "dep-window"))

	events, err := plain.store.Load(context.Background(), "account-"+acct, store.Span{})
	if err != nil {
		t.Fatal(err)
	}
	deposits := 0
	for _, e := range events {
		if e.Type == "MoneyDeposited" {
			deposits++
		}
	}
	t.Logf("attempt 2: %d version %d; retry: %d version %d; %d deposits", r2.StatusCode, r2.Version, r3.StatusCode, r3.Version, deposits)
	if deposits != 1 || r2.StatusCode != http.StatusOK || r2.Version != 2 || r3.Version != 2 {
		t.Fatalf("one request with one Idempotency-Key made %d deposits, answered version %d then %d (want 1 deposit, version 2)", deposits, r2.Version, r3.Version)
	}
}

// TestReview2LateCreateBetweenRetryCheckAndLoad: the same window on a create. The retry's load
// finds the aggregate its own earlier attempt made, the domain refuses to create it again (409
// already-exists), the handler takes that 409 for "wrote nothing" and abandons the key; the
// client's next retry of the same key then creates a second account.
func TestReview2LateCreateBetweenRetryCheckAndLoad(t *testing.T) {
	plain, hsA, hsB, a, b := lateHarnesses(t)
	req := request(t, "POST /accounts", `{"currency":"EUR"}`, nil, "idempotency-key", "open-window")
	r2, r3 := lateBetweenCheckAndLoad(t, plain, hsA, hsB, a, b, req)
	t.Logf("attempt 2: %d %s id %s; retry: %d %s id %s", r2.StatusCode, r2.Problem.Type, r2.ID, r3.StatusCode, r3.Problem.Type, r3.ID)
	if r2.StatusCode != http.StatusCreated || r3.StatusCode != http.StatusCreated || r2.ID != r3.ID {
		t.Fatalf("one create with one Idempotency-Key answered %d (%s) then %d (id %q, first %q): want 201 for the one account twice",
			r2.StatusCode, r2.Problem.Type, r3.StatusCode, r3.ID, r2.ID)
	}
}

// TestReview2LateRegistrationBetweenRetryCheckAndLoad: the same on POST /users, a transaction with
// the email claim and the new data key.
func TestReview2LateRegistrationBetweenRetryCheckAndLoad(t *testing.T) {
	plain, hsA, hsB, a, b := lateHarnesses(t)
	req := request(t, "POST /users", `{"email":"late@example.com","name":"Late Comer"}`, nil, "idempotency-key", "reg-window")
	r2, r3 := lateBetweenCheckAndLoad(t, plain, hsA, hsB, a, b, req)
	t.Logf("attempt 2: %d %s id %s; retry: %d %s id %s", r2.StatusCode, r2.Problem.Type, r2.ID, r3.StatusCode, r3.Problem.Type, r3.ID)
	if r2.StatusCode != http.StatusCreated || r3.StatusCode != http.StatusCreated || r2.ID != r3.ID {
		t.Fatalf("one registration with one Idempotency-Key answered %d (%s) then %d %s: want 201 for the one user twice",
			r2.StatusCode, r2.Problem.Type, r3.StatusCode, r3.Problem.Type)
	}
}

// TestReview2LateRegistrationRacingTheRetrysAppend: attempt 1's registration (event, email claim,
// new data key: one transaction) lands after attempt 2 loaded and sealed under a key of its own,
// just before attempt 2's transaction. That one fails on the event's version and on the key's
// insert, while its claim (owned by the same stream) would pass: the user must see the one
// registration (201), not email-taken, a 409 or a 500. This holds.
func TestReview2LateRegistrationRacingTheRetrysAppend(t *testing.T) {
	reqs := &awstest.Requests{}
	client := reqs.Client(t)
	env := awstest.MustTables(t, client)
	plain := wire(t, client, reqs, env)
	var a *inFlight
	hsA := wireWith(t, client, reqs, env, func(st store.EventStore) store.EventStore { a = newInFlight(st); return a }, nil)
	b := &beforeFirstAppend{}
	hsB := wireWith(t, client, reqs, env, func(st store.EventStore) store.EventStore { b.EventStore = st; return b }, nil)
	req := request(t, "POST /users", `{"email":"race@example.com","name":"Race Winner"}`, nil, "idempotency-key", "reg-race")

	ctxA, cancel := context.WithTimeout(context.Background(), 2*time.Second) // room to reach the append on a loaded machine
	defer cancel()
	aDone := make(chan struct{})
	go func() { defer close(aDone); hsA.h.Handle(ctxA, req) }()
	awaitAppend(t, a.reached, aDone)
	time.Sleep(time.Until(deadlineOf(ctxA)) + 50*time.Millisecond)
	b.hook = func() { close(a.land); <-a.landed }
	r2 := hsB.do(t, req)
	<-aDone
	r3 := plain.do(t, req)
	wantStatus(t, r2, http.StatusCreated, "")
	if r3.StatusCode != http.StatusCreated || r3.ID != r2.ID || r3.Headers["Idempotent-Replayed"] != "true" {
		t.Fatalf("the retry after attempt 2: %+v; want attempt 2's 201 replayed", r3)
	}
	if n := plain.registeredUsers(t); n != 1 {
		t.Fatalf("%d users registered by one request", n)
	}
}
