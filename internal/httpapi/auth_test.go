package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/httpapi"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/query"
	"github.com/eventfold/eventfold/internal/store"
)

// The callers of the authorisation matrix.
const (
	nobody   = iota // no authorizer context
	other           // another user, registered, with an account of their own
	operator        // an IAM principal
	owner           // the user the path names, or whose account or order it names
	callers
)

var callerNames = [callers]string{"no caller", "another user", "an operator", "the owner"}

const otherSubject = "auth0|5f7c8ec7c33c6c004bbafe82"

// tableCounts counts the items of every table of the harness's stack.
func (hs *harness) tableCounts(t *testing.T) map[string]int32 {
	t.Helper()
	tmpl := awstest.MustTemplate(t)
	tables, err := tmpl.Tables(hs.env)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int32{}
	for _, tb := range tables {
		name := aws.ToString(tb.Create.TableName)
		var n int32
		in := &dynamodb.ScanInput{TableName: aws.String(name), Select: ddbtypes.SelectCount, ConsistentRead: aws.Bool(true)}
		for p := dynamodb.NewScanPaginator(hs.client, in); p.HasMorePages(); {
			page, err := p.NextPage(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			n += page.Count
		}
		counts[name] = n
	}
	return counts
}

// authWorld is a user (the owner, testSubject) with an account, an order paid from it and its
// fulfilment run; another user with an account; stock of SKU-1; all projected.
type authWorld struct {
	hs                   *harness
	q                    *httpapi.Queries
	account, otherAcct   string
	order, placedVersion string
}

func newAuthWorld(t *testing.T) *authWorld {
	t.Helper()
	hs := newHarness(t) // opens acc-1 and the fixture's account for testSubject
	ctx := context.Background()
	w := &authWorld{hs: hs, account: "acc-1"}
	for _, u := range []struct{ sub, email string }{{testSubject, "owner@example.com"}, {otherSubject, "other@example.com"}} {
		r := hs.do(t, as(request(t, "POST /users", `{"email":"`+u.email+`","name":"N"}`, nil), u.sub))
		wantStatus(t, r, http.StatusCreated, "")
	}
	otherAcct := hs.do(t, as(request(t, "POST /accounts", `{"currency":"EUR"}`, nil), otherSubject))
	wantStatus(t, otherAcct, http.StatusCreated, "")
	w.otherAcct = otherAcct.ID
	wantStatus(t, hs.do(t, deposit(t, "acc-1", 100)), http.StatusOK, "")
	wantStatus(t, hs.do(t, request(t, "POST /inventory/{sku}/stock", `{"quantity":5}`, map[string]string{"sku": "SKU-1"})), http.StatusOK, "")
	placed := hs.do(t, request(t, "POST /orders", orderBody("", ""), nil))
	wantStatus(t, placed, http.StatusAccepted, "")
	w.order = placed.ID
	// The order's run, as the saga starts it.
	events, err := hs.store.Load(ctx, "order-"+w.order, store.Span{})
	if err != nil || len(events) != 1 {
		t.Fatal(events, err)
	}
	var op domain.OrderPlaced
	if err := json.Unmarshal(events[0].Data, &op); err != nil {
		t.Fatal(err)
	}
	run := domain.Fulfilment{}.Decide(domain.StartFulfilment{Order: op, Timeout: time.Hour}, time.Now())
	data, _ := json.Marshal(run.Events[0])
	if _, err := hs.store.AppendStreams(ctx, store.StreamAppend{StreamID: domain.RunID(w.order),
		Events: []store.Event{{ID: store.NewIDs(nil).New(), Type: run.Events[0].EventType(), Data: data}}}); err != nil {
		t.Fatal(err)
	}
	proj := projection.New(hs.client, hs.env.Refs["ReadModelsTable"], hs.store)
	for _, stream := range []string{"user-" + testSubject, "user-" + otherSubject, "account-acc-1", "account-" + w.otherAcct,
		"inventory-SKU-1", "order-" + w.order, domain.RunID(w.order)} {
		evs, err := hs.store.Load(ctx, stream, store.Span{})
		if err != nil || len(evs) == 0 {
			t.Fatalf("%s: %d events, %v", stream, len(evs), err)
		}
		for _, e := range evs {
			if err := proj.Apply(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	w.q = httpapi.NewQueries(query.New(query.Config{API: hs.client, Table: hs.env.Refs["ReadModelsTable"], Events: hs.store, MaxWait: 200 * time.Millisecond}),
		slog.New(slog.NewJSONHandler(io.Discard, nil)))
	hs.reqs.Take()
	return w
}

// send sends req as the caller (self is the owner's subject for this route).
func (w *authWorld) send(t *testing.T, req events.APIGatewayV2HTTPRequest, who int, self string) events.APIGatewayV2HTTPResponse {
	t.Helper()
	switch who {
	case nobody:
		req = anonymous(req)
	case other:
		req = as(req, otherSubject)
	case operator:
		req = asOperator(req)
	case owner:
		req = as(req, self)
	}
	handle := w.hs.h.Handle
	if strings.HasPrefix(req.RouteKey, "GET ") {
		handle = w.q.Handle
	}
	resp, err := handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

type authCase struct {
	route  string
	params map[string]string
	query  map[string]string
	body   string
	self   string // the owner's subject, when not testSubject
	want   [callers]int
	// missing, for the routes whose refusal of another user depends on stored data: the same
	// request about one that does not exist, which must be answered exactly alike.
	missing map[string]string
}

// TestAuthorisationMatrix: every route, sent by no caller, another user, an operator and the
// owner (as API Gateway's authorizers pass them, payload v2.0), answers the status the rules
// say; a refused request writes nothing to any table; a refusal that depends on stored data (an
// account or order that is someone else's) is indistinguishable from the answer about one that
// does not exist.
func TestAuthorisationMatrix(t *testing.T) {
	w := newAuthWorld(t)
	acct, order := map[string]string{"id": w.account}, map[string]string{"id": w.order}
	noAcct, noOrder := map[string]string{"id": "01JUNKNOWNACCOUNT000000000"}, map[string]string{"id": "01JUNKNOWNORDER00000000000"}
	self := map[string]string{"id": testSubject}
	const (
		u, f, nf, ok = http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusOK
	)
	// Queries first (on the world as set up), then the commands, the erasure last.
	cases := []authCase{
		{route: "GET /users/{id}", params: self, want: [callers]int{u, f, ok, ok}},
		{route: "GET /users/{id}", params: self, query: map[string]string{"asOf": time.Now().Add(time.Hour).Format(time.RFC3339)}, want: [callers]int{u, f, ok, ok}},
		{route: "GET /accounts/{id}", params: acct, want: [callers]int{u, nf, ok, ok}, missing: noAcct},
		{route: "GET /accounts/{id}", params: acct, query: map[string]string{"minVersion": "2"}, want: [callers]int{u, nf, ok, ok}, missing: noAcct},
		{route: "GET /accounts/{id}", params: acct, query: map[string]string{"asOf": time.Now().Add(time.Hour).Format(time.RFC3339)}, want: [callers]int{u, nf, ok, ok}, missing: noAcct},
		{route: "GET /inventory/{sku}", params: map[string]string{"sku": "SKU-1"}, want: [callers]int{u, ok, ok, ok}},
		{route: "GET /orders/{id}", params: order, want: [callers]int{u, nf, ok, ok}, missing: noOrder},
		{route: "GET /orders/{id}", params: order, query: map[string]string{"minVersion": "1"}, want: [callers]int{u, nf, ok, ok}, missing: noOrder},
		{route: "GET /orders/{id}", params: order, query: map[string]string{"asOf": time.Now().Add(time.Hour).Format(time.RFC3339)}, want: [callers]int{u, nf, ok, ok}, missing: noOrder},
		{route: "GET /orders/{id}/fulfilment", params: order, want: [callers]int{u, nf, ok, ok}, missing: noOrder},
		{route: "GET /orders/{id}/fulfilment", params: order, query: map[string]string{"minVersion": "1"}, want: [callers]int{u, nf, ok, ok}, missing: noOrder},
		{route: "GET /orders/{id}/fulfilment", params: order, query: map[string]string{"asOf": time.Now().Add(time.Hour).Format(time.RFC3339)}, want: [callers]int{u, nf, ok, ok}, missing: noOrder},
		{route: "GET /customers/{id}/orders", params: self, want: [callers]int{u, f, ok, ok}},
		{route: "GET /users", query: map[string]string{"status": "active"}, want: [callers]int{u, f, ok, f}},
		{route: "GET /streams/{streamId}/events", params: map[string]string{"streamId": "account-" + w.account}, want: [callers]int{u, f, ok, f}},
		{route: "GET /ops/users/{id}", params: self, want: [callers]int{u, f, ok, f}},
		{route: "GET /ops/accounts/{id}", params: acct, want: [callers]int{u, f, ok, f}},
		{route: "GET /ops/orders/{id}", params: order, want: [callers]int{u, f, ok, f}},
		{route: "GET /ops/orders/{id}/fulfilment", params: order, want: [callers]int{u, f, ok, f}},
		{route: "GET /ops/customers/{id}/orders", params: self, want: [callers]int{u, f, ok, f}},

		// A newcomer registers; the other user is registered already (409), an operator is no user.
		{route: "POST /users", body: `{"email":"new@example.com","name":"New"}`, self: "00dad63f-04b8-4552-8337-a0b48690002c",
			want: [callers]int{u, http.StatusConflict, f, http.StatusCreated}},
		{route: "PUT /users/{id}/email", params: self, body: `{"email":"owner2@example.com"}`, want: [callers]int{u, f, f, ok}},
		{route: "POST /users/{id}/deactivate", params: self, want: [callers]int{u, f, f, ok}},
		// Anyone may open an account of their own; an operator owns none.
		{route: "POST /accounts", body: `{"currency":"EUR"}`, want: [callers]int{u, http.StatusCreated, f, http.StatusCreated}},
		{route: "POST /accounts/{id}/deposits", params: acct, body: `{"amount":5}`, want: [callers]int{u, nf, f, ok}, missing: noAcct},
		{route: "POST /accounts/{id}/withdrawals", params: acct, body: `{"amount":5}`, want: [callers]int{u, nf, f, ok}, missing: noAcct},
		{route: "POST /inventory/{sku}/stock", params: map[string]string{"sku": "SKU-1"}, body: `{"quantity":1}`, want: [callers]int{u, f, ok, f}},
		// The order is paid from the owner's account: the other user may not pay with it.
		{route: "POST /orders", body: orderBody("", ""), want: [callers]int{u, http.StatusUnprocessableEntity, f, http.StatusAccepted}},
		{route: "DELETE /users/{id}", params: self, want: [callers]int{u, f, ok, f}},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.route] = true
	}
	all := append(w.hs.h.Routes(), w.q.Routes()...)
	if missing := slices.DeleteFunc(slices.Clone(all), func(r string) bool { return covered[r] }); len(missing) > 0 {
		t.Fatalf("routes without a case: %v", missing)
	}
	for _, c := range cases {
		name := c.route
		if len(c.query) > 0 {
			name += fmt.Sprint(" ", c.query)
		}
		t.Run(name, func(t *testing.T) {
			sub := c.self
			if sub == "" {
				sub = testSubject
			}
			for who := range callers {
				req := request(t, c.route, c.body, c.params)
				req.QueryStringParameters = c.query
				before := w.hs.tableCounts(t)
				resp := w.send(t, req, who, sub)
				if resp.StatusCode != c.want[who] {
					t.Fatalf("%s: %d %s, want %d", callerNames[who], resp.StatusCode, resp.Body, c.want[who])
				}
				if resp.StatusCode >= 400 {
					if after := w.hs.tableCounts(t); !maps.Equal(before, after) {
						t.Fatalf("%s: refused with %d, but the tables went from %v to %v", callerNames[who], resp.StatusCode, before, after)
					}
					if resp.Headers["ETag"] != "" {
						t.Fatalf("%s: a refusal with ETag %s", callerNames[who], resp.Headers["ETag"])
					}
				}
				if who == nobody && (resp.Headers["WWW-Authenticate"] != "Bearer" || !strings.Contains(resp.Body, httpapi.TypeUnauthenticated)) {
					t.Fatalf("no caller: %v %s", resp.Headers, resp.Body)
				}
				if resp.StatusCode == f && !strings.Contains(resp.Body, httpapi.TypeForbidden) {
					t.Fatalf("%s: 403 of type %s", callerNames[who], resp.Body)
				}
				if who == other && c.missing != nil {
					// Someone else's answers as one that does not exist.
					absent := request(t, c.route, c.body, c.missing)
					absent.QueryStringParameters = c.query
					want := w.send(t, absent, other, sub)
					if got, exp := problemOf(t, resp), problemOf(t, want); got.Type != exp.Type || got.Detail != exp.Detail || got.Status != exp.Status ||
						resp.StatusCode != want.StatusCode || resp.Headers["ETag"] != want.Headers["ETag"] {
						t.Fatalf("someone else's: %d %+v %v; one that does not exist: %d %+v %v", resp.StatusCode, got, resp.Headers, want.StatusCode, exp, want.Headers)
					}
				}
			}
		})
	}
}

// problemOf is a problem response without its correlation ID.
func problemOf(t *testing.T, resp events.APIGatewayV2HTTPResponse) httpapi.Problem {
	t.Helper()
	var p httpapi.Problem
	if err := json.Unmarshal([]byte(resp.Body), &p); err != nil {
		t.Fatalf("problem %q: %v", resp.Body, err)
	}
	p.CorrelationID = ""
	return p
}

// TestIdempotencyKeyIsTheCallers: user B sending the key user A used, with the same request,
// runs B's own request: B does not get A's recorded response, and A's replay is still A's.
func TestIdempotencyKeyIsTheCallers(t *testing.T) {
	hs := newHarness(t)
	const b = otherSubject
	a1 := hs.do(t, request(t, "POST /accounts", `{"currency":"EUR"}`, nil, "idempotency-key", "open-1"))
	wantStatus(t, a1, http.StatusCreated, "")
	b1 := hs.do(t, as(request(t, "POST /accounts", `{"currency":"EUR"}`, nil, "idempotency-key", "open-1"), b))
	wantStatus(t, b1, http.StatusCreated, "")
	if b1.Headers["Idempotent-Replayed"] != "" || b1.ID == a1.ID {
		t.Fatalf("B reusing A's key got %+v; A got %+v", b1, a1)
	}
	// Each account is its opener's.
	if r := hs.do(t, as(deposit(t, b1.ID, 5), b)); r.StatusCode != http.StatusOK {
		t.Fatalf("B's deposit to B's account: %d %s", r.StatusCode, r.Body)
	}
	wantStatus(t, hs.do(t, as(deposit(t, a1.ID, 5), b)), http.StatusNotFound, httpapi.TypeNotFound)
	// Each replays their own.
	if a2 := hs.do(t, request(t, "POST /accounts", `{"currency":"EUR"}`, nil, "idempotency-key", "open-1")); a2.Headers["Idempotent-Replayed"] != "true" || a2.ID != a1.ID {
		t.Fatalf("A's replay: %+v", a2)
	}
	if b2 := hs.do(t, as(request(t, "POST /accounts", `{"currency":"EUR"}`, nil, "idempotency-key", "open-1"), b)); b2.Headers["Idempotent-Replayed"] != "true" || b2.ID != b1.ID {
		t.Fatalf("B's replay: %+v", b2)
	}
	// The records name neither caller in the clear.
	out, err := hs.client.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(hs.env.Refs["IdempotencyTable"])})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(out.Items)
	if len(out.Items) != 2 || strings.Contains(string(raw), testSubject) || strings.Contains(string(raw), "5f7c8ec7") {
		t.Fatalf("idempotency records: %d, %s", len(out.Items), raw)
	}
}

// TestCallerIsNotLogged: neither the token nor its claims reach the logs, nor the caller as such
// (a user's stream ID, which holds their ID, is logged as every stream ID is: it is pseudonymous).
func TestCallerIsNotLogged(t *testing.T) {
	hs := newHarness(t)
	wantStatus(t, hs.do(t, fixture(t, "register-user.json")), http.StatusCreated, "")
	wantStatus(t, hs.do(t, as(deposit(t, "acc-1", 5), otherSubject)), http.StatusNotFound, httpapi.TypeNotFound)
	logs := hs.logs.String()
	for _, secret := range []string{otherSubject, "Bearer", "eyJ", "cognito-idp", "5tq6m2r3n1hfk9c0d8e7a4b2gs", testOperator} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the logs hold %q:\n%s", secret, logs)
		}
	}
}
