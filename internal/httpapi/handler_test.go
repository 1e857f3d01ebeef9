package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/eventfold/eventfold/internal/auth"
	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/httpapi"
	"github.com/eventfold/eventfold/internal/idempotency"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/store"
	"github.com/eventfold/eventfold/internal/template"
)

func TestMain(m *testing.M) { awstest.Main(m) }

type harness struct {
	h      *httpapi.Handler
	store  *crypto.SealingStore
	idem   *idempotency.Store
	reqs   *awstest.Requests
	logs   *awstest.SyncBuffer
	env    template.Env
	client *dynamodb.Client
	cmds   *command.Service
}

// newHarness wires the handler as functions/commands does, on fresh tables in DynamoDB Local.
func newHarness(t *testing.T) *harness {
	t.Helper()
	reqs := &awstest.Requests{}
	client := reqs.Client(t)
	hs := wire(t, client, reqs, awstest.MustTables(t, client))
	// The accounts the fixtures' orders are paid from: the caller's.
	for _, acct := range []string{"acc-1", fixtureAccount} {
		if _, err := hs.cmds.OpenAccount(context.Background(), command.Meta{CommandID: "seed-" + acct, Caller: auth.User(testSubject)},
			domain.OpenAccount{AccountID: acct, Currency: "EUR"}); err != nil {
			t.Fatal(err)
		}
	}
	reqs.Take()
	return hs
}

// testSubject is the subject of the access token of the fixtures (testdata/*.json), the caller
// of every request unless a test says otherwise; fixtureAccount is the account their order is
// paid from, which newHarness opens for testSubject, as it does acc-1.
const (
	testSubject    = "00dad63f-04b8-4552-8337-a0b48690001b"
	fixtureAccount = "01J9ZQ4T8K5W3X2Y1V0B6N7M9A"
	testOperator   = "arn:aws:iam::123456789012:user/ops-alice"
)

// operatorRoutes are the routes template.yaml gives IAM auth: request sends them as an operator.
var operatorRoutes = map[string]bool{
	"DELETE /users/{id}": true, "POST /inventory/{sku}/stock": true, "GET /users": true, "GET /streams/{streamId}/events": true,
	"GET /ops/users/{id}": true, "GET /ops/accounts/{id}": true, "GET /ops/orders/{id}": true, "GET /ops/orders/{id}/fulfilment": true,
	"GET /ops/customers/{id}/orders": true,
}

// jwtAuthorizer is the authorizer context API Gateway's JWT authorizer passes (payload v2.0) for
// a Cognito access token of subject sub: the token's claims, as strings, and its scopes.
func jwtAuthorizer(sub string) *events.APIGatewayV2HTTPRequestContextAuthorizerDescription {
	return &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{
		Claims: map[string]string{
			"sub": sub, "username": sub, "scope": "aws.cognito.signin.user.admin", "token_use": "access",
			"client_id": "5tq6m2r3n1hfk9c0d8e7a4b2gs", "iss": "https://cognito-idp.us-west-2.amazonaws.com/us-west-2_aBcDeFgHi",
			"auth_time": "1764598800", "iat": "1764598800", "exp": "1764602400", "jti": "a3b1c2d4-e5f6-4789-8abc-def012345678",
		},
		Scopes: []string{"aws.cognito.signin.user.admin"},
	}}
}

// iamAuthorizer is the authorizer context of a route with IAM auth, for a request SigV4-signed by
// the IAM user principal.
func iamAuthorizer(principal string) *events.APIGatewayV2HTTPRequestContextAuthorizerDescription {
	return &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{IAM: &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{
		AccessKey: "AKIAIOSFODNN7EXAMPLE", AccountID: "123456789012", CallerID: "AIDAJQABLZS4A3QDU576Q", UserARN: principal, UserID: "AIDAJQABLZS4A3QDU576Q",
	}}
}

// as returns req sent by the user sub (a JWT authorizer context).
func as(req events.APIGatewayV2HTTPRequest, sub string) events.APIGatewayV2HTTPRequest {
	req.RequestContext.Authorizer = jwtAuthorizer(sub)
	return req
}

// asOperator returns req sent by an operator (an IAM authorizer context).
func asOperator(req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPRequest {
	req.RequestContext.Authorizer = iamAuthorizer(testOperator)
	return req
}

// anonymous returns req without an authorizer context, as no request through API Gateway is.
func anonymous(req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPRequest {
	req.RequestContext.Authorizer = nil
	return req
}

// wire builds a handler, as a new Lambda instance would, on existing tables.
func wire(t *testing.T, client *dynamodb.Client, reqs *awstest.Requests, env template.Env) *harness {
	t.Helper()
	return wireWith(t, client, reqs, env, nil, nil)
}

// wireWith is wire with the store and the idempotency records wrapped, to inject failures.
func wireWith(t *testing.T, client *dynamodb.Client, reqs *awstest.Requests, env template.Env,
	wrapStore func(store.EventStore) store.EventStore, wrapIdem func(httpapi.Idempotency) httpapi.Idempotency) *harness {
	t.Helper()
	reg, err := command.Registry()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := store.New(client, store.Config{
		EventsTable: env.Refs["EventsTable"], SnapshotsTable: env.Refs["SnapshotsTable"], ClaimsTable: env.Refs["ClaimsTable"], Registry: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	keys := crypto.NewKeyring(awstest.MustKeys(t, env), client, crypto.KeyringConfig{Table: env.Refs["KeysTable"], KeyID: env.Refs["DataKeyAlias"], MaxKeys: 100, TTL: time.Minute})
	st := crypto.NewSealingStore(raw, keys, domain.PersonalFields)
	var cst store.EventStore = st
	if wrapStore != nil {
		cst = wrapStore(st)
	}
	cmds, err := command.New(command.Config{Store: cst, EmailKey: []byte("0123456789abcdef0123456789abcdef"), Eraser: keys})
	if err != nil {
		t.Fatal(err)
	}
	logs := &awstest.SyncBuffer{}
	idem, err := idempotency.New(idempotency.Config{API: client, Table: env.Refs["IdempotencyTable"], TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var hidem httpapi.Idempotency = idem
	if wrapIdem != nil {
		hidem = wrapIdem(idem)
	}
	h, err := httpapi.New(httpapi.Config{Commands: cmds, Idempotency: hidem, Log: slog.New(slog.NewJSONHandler(logs, nil)), HashKey: testHashKey})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{h: h, store: st, idem: idem, reqs: reqs, logs: logs, env: env, client: client, cmds: cmds}
}

func fixture(t *testing.T, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var req events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(data, &req); err != nil {
		t.Fatal(err)
	}
	return req
}

// request builds a request for routeKey from the deposit fixture's shape.
func request(t *testing.T, routeKey, body string, params map[string]string, headers ...string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	req := fixture(t, "deposit.json")
	req.RouteKey, req.RequestContext.RouteKey = routeKey, routeKey
	method, path, _ := strings.Cut(routeKey, " ")
	for k, v := range params {
		path = strings.ReplaceAll(path, "{"+k+"}", v)
	}
	req.RawPath, req.RequestContext.HTTP.Path, req.RequestContext.HTTP.Method = path, path, method
	req.PathParameters = params
	if operatorRoutes[routeKey] {
		req = asOperator(req)
	}
	req.Body = body
	req.Headers = map[string]string{"content-type": "application/json"}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Headers[headers[i]] = headers[i+1]
	}
	return req
}

type reply struct {
	events.APIGatewayV2HTTPResponse
	ID       string   `json:"id"`
	Version  int64    `json:"version"`
	EventIDs []string `json:"eventIds"`
	Problem  httpapi.Problem
}

func (hs *harness) do(t *testing.T, req events.APIGatewayV2HTTPRequest) reply {
	t.Helper()
	resp, err := hs.h.Handle(context.Background(), req)
	if err != nil {
		t.Fatalf("Handle returned an error: %v", err)
	}
	r := reply{APIGatewayV2HTTPResponse: resp}
	switch resp.Headers["Content-Type"] {
	case "application/json":
		if err := json.Unmarshal([]byte(resp.Body), &r); err != nil {
			t.Fatalf("body %q: %v", resp.Body, err)
		}
	case "application/problem+json":
		if err := json.Unmarshal([]byte(resp.Body), &r.Problem); err != nil {
			t.Fatalf("problem %q: %v", resp.Body, err)
		}
		if r.Problem.Status != resp.StatusCode || r.Problem.Type == "" {
			t.Fatalf("problem %+v does not match status %d", r.Problem, resp.StatusCode)
		}
	default:
		t.Fatalf("response without a JSON content type: %+v", resp)
	}
	return r
}

func wantStatus(t *testing.T, r reply, status int, problemType string) {
	t.Helper()
	if r.StatusCode != status || (problemType != "" && r.Problem.Type != problemType) {
		t.Fatalf("got %d %s (%s), want %d %s", r.StatusCode, r.Problem.Type, r.Body, status, problemType)
	}
}

func (hs *harness) openAccount(t *testing.T) string {
	t.Helper()
	r := hs.do(t, request(t, "POST /accounts", `{"currency":"EUR"}`, nil))
	wantStatus(t, r, http.StatusCreated, "")
	return r.ID
}

func deposit(t *testing.T, acct string, amount int64, headers ...string) events.APIGatewayV2HTTPRequest {
	return request(t, "POST /accounts/{id}/deposits", fmt.Sprintf(`{"amount":%d}`, amount), map[string]string{"id": acct}, headers...)
}

func TestRegisterUser(t *testing.T) {
	hs := newHarness(t)
	r := hs.do(t, fixture(t, "register-user.json"))
	wantStatus(t, r, http.StatusCreated, "")
	if r.ID == "" || r.Version != 1 || len(r.EventIDs) != 1 || r.Headers["ETag"] != `"1"` || r.Headers["Location"] != "/users/"+r.ID {
		t.Fatalf("register = %+v", r)
	}
	if r.Headers["X-Correlation-Id"] != "corr-register-1" {
		t.Fatalf("correlation ID not echoed: %v", r.Headers)
	}
	events, err := hs.store.Load(context.Background(), "user-"+r.ID, store.Span{})
	if err != nil || len(events) != 1 || events[0].CorrelationID != "corr-register-1" || events[0].Subject != r.ID {
		t.Fatalf("stored %+v, %v", events, err)
	}
	// The same address, differently written, belongs to that user now.
	again := as(fixture(t, "register-user.json"), "auth0|5f7c8ec7c33c6c004bbafe82")
	again.Body = `{"email":" ANN@example.com","name":"Someone Else"}`
	wantStatus(t, hs.do(t, again), http.StatusUnprocessableEntity, httpapi.TypeRulePrefix+"email-taken")
	if logs := hs.logs.String(); strings.Contains(logs, "ann@example.com") || strings.Contains(strings.ToLower(logs), "ann example") || strings.Contains(logs, "Someone") {
		t.Fatalf("personal data in the logs:\n%s", logs)
	}
	if !strings.Contains(hs.logs.String(), `"correlation_id":"corr-register-1"`) {
		t.Fatalf("logs lack the correlation ID:\n%s", hs.logs.String())
	}
}

func TestBadRequestsAreProblemsAndChangeNothing(t *testing.T) {
	hs := newHarness(t)
	acct := hs.openAccount(t)
	big := `{"amount":1,"pad":"` + strings.Repeat("x", 70<<10) + `"}`
	tests := []struct {
		name   string
		req    events.APIGatewayV2HTTPRequest
		status int
		typ    string
	}{
		{"unknown field", request(t, "POST /accounts/{id}/deposits", `{"amount":1,"amout":2}`, map[string]string{"id": acct}), 400, httpapi.TypeMalformed},
		{"trailing data", request(t, "POST /accounts/{id}/deposits", `{"amount":1} {"amount":2}`, map[string]string{"id": acct}), 400, httpapi.TypeMalformed},
		{"not JSON", request(t, "POST /accounts/{id}/deposits", `{"amount":`, map[string]string{"id": acct}), 400, httpapi.TypeMalformed},
		{"no body", request(t, "POST /accounts/{id}/deposits", ``, map[string]string{"id": acct}), 400, httpapi.TypeMalformed},
		{"fraction", request(t, "POST /accounts/{id}/deposits", `{"amount":1.5}`, map[string]string{"id": acct}), 400, httpapi.TypeMalformed},
		{"array body", request(t, "POST /accounts/{id}/deposits", `[1]`, map[string]string{"id": acct}), 400, httpapi.TypeMalformed},
		{"zero amount", request(t, "POST /accounts/{id}/deposits", `{"amount":0}`, map[string]string{"id": acct}), 400, httpapi.TypeValidation},
		{"wrong content type", request(t, "POST /accounts/{id}/deposits", `{"amount":1}`, map[string]string{"id": acct}, "content-type", "text/plain"), 415, httpapi.TypeMediaType},
		{"too large", request(t, "POST /accounts/{id}/deposits", big, map[string]string{"id": acct}), 413, httpapi.TypeTooLarge},
		{"bad base64", func() events.APIGatewayV2HTTPRequest {
			r := deposit(t, acct, 1)
			r.Body, r.IsBase64Encoded = "%%%", true
			return r
		}(), 400, httpapi.TypeMalformed},
		{"bad If-Match", deposit(t, acct, 1, "if-match", "soon"), 400, httpapi.TypeMalformed},
		{"bad Idempotency-Key", deposit(t, acct, 1, "idempotency-key", "has space"), 400, httpapi.TypeMalformed},
		{"unknown account", deposit(t, "01JUNKNOWNACCOUNT000000000", 1), 404, httpapi.TypeNotFound},
		{"malformed account ID", deposit(t, "a b", 1), 404, httpapi.TypeNotFound},
		{"unknown route", request(t, "DELETE /accounts/{id}", ``, map[string]string{"id": acct}), 404, httpapi.TypeRouteNotFound},
		{"insufficient funds", request(t, "POST /accounts/{id}/withdrawals", `{"amount":1}`, map[string]string{"id": acct}), 422, httpapi.TypeRulePrefix + "insufficient-funds"},
		{"bad currency", request(t, "POST /accounts", `{"currency":"euro"}`, nil), 400, httpapi.TypeValidation},
		{"bad email", request(t, "POST /users", `{"email":"secret-value@@x","name":"N"}`, nil), 400, httpapi.TypeValidation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := hs.do(t, tt.req)
			wantStatus(t, r, tt.status, tt.typ)
			if strings.Contains(r.Body, "secret-value") {
				t.Fatalf("problem echoes the input: %s", r.Body)
			}
		})
	}
	events, err := hs.store.Load(context.Background(), "account-"+acct, store.Span{})
	if err != nil || len(events) != 1 {
		t.Fatalf("account has %d events after bad requests (%v), want only its opening", len(events), err)
	}
	var p httpapi.Problem
	r := hs.do(t, request(t, "POST /users", `{"email":"secret-value@@x","name":"N"}`, nil))
	p = r.Problem
	if len(p.InvalidParams) != 1 || p.InvalidParams[0].Name != "email" {
		t.Fatalf("validation problem = %+v, want the email field named", p)
	}
}

func TestIfMatchAndETag(t *testing.T) {
	hs := newHarness(t)
	acct := hs.openAccount(t)
	r := hs.do(t, deposit(t, acct, 10, "if-match", `"1"`))
	wantStatus(t, r, http.StatusOK, "")
	if r.Headers["ETag"] != `"2"` || r.Version != 2 {
		t.Fatalf("deposit at If-Match 1: %+v", r)
	}
	r = hs.do(t, deposit(t, acct, 10, "if-match", `W/"1"`))
	wantStatus(t, r, http.StatusConflict, httpapi.TypeConflict)
	if r.Problem.CurrentVersion == nil || *r.Problem.CurrentVersion != 2 || r.Headers["ETag"] != `"2"` {
		t.Fatalf("conflict = %+v, want current version 2", r)
	}
}

func TestIdempotencyKey(t *testing.T) {
	hs := newHarness(t)
	acct := hs.openAccount(t)
	first := hs.do(t, deposit(t, acct, 25, "idempotency-key", "dep-1"))
	wantStatus(t, first, http.StatusOK, "")
	for i := 0; i < 3; i++ {
		again := hs.do(t, deposit(t, acct, 25, "idempotency-key", "dep-1"))
		if again.StatusCode != first.StatusCode || again.Body != first.Body || again.Headers["Idempotent-Replayed"] != "true" || again.Headers["ETag"] != first.Headers["ETag"] {
			t.Fatalf("replay %d = %+v, want the first response %+v", i, again, first)
		}
	}
	events, _ := hs.store.Load(context.Background(), "account-"+acct, store.Span{})
	if len(events) != 2 {
		t.Fatalf("%d events after a deposit sent 4 times with one key, want 2", len(events))
	}
	// The same key with another body is refused.
	wantStatus(t, hs.do(t, deposit(t, acct, 26, "idempotency-key", "dep-1")), http.StatusUnprocessableEntity, httpapi.TypeKeyReused)
	// A create replays the same ID.
	order := fixture(t, "place-order-base64.json")
	o1 := hs.do(t, order)
	wantStatus(t, o1, http.StatusAccepted, "")
	o2 := hs.do(t, order)
	if o2.ID != o1.ID || o2.Headers["Location"] != "/orders/"+o1.ID {
		t.Fatalf("retried create made %s, first made %s", o2.ID, o1.ID)
	}
	// Business errors are recorded too: the retry gets the same 422 without running again.
	w1 := hs.do(t, request(t, "POST /accounts/{id}/withdrawals", `{"amount":1000}`, map[string]string{"id": acct}, "idempotency-key", "wd-1"))
	wantStatus(t, w1, http.StatusUnprocessableEntity, httpapi.TypeRulePrefix+"insufficient-funds")
	w2 := hs.do(t, request(t, "POST /accounts/{id}/withdrawals", `{"amount":1000}`, map[string]string{"id": acct}, "idempotency-key", "wd-1"))
	if w2.Headers["Idempotent-Replayed"] != "true" || w2.Body != w1.Body {
		t.Fatalf("replayed 422 = %+v", w2)
	}
}

func TestIdempotencyKeyInProgressAndExpiredLock(t *testing.T) {
	hs := newHarness(t)
	acct := hs.openAccount(t)
	req := deposit(t, acct, 5, "idempotency-key", "busy-1")
	// Another attempt holds the key; hash as the handler computes it.
	hash := requestHash(hs, req)
	if _, _, err := hs.idem.Begin(context.Background(), hs.h.RecordKey(auth.User(testSubject), "busy-1"), hash, time.Now().Add(time.Hour), idempotency.Attempt{CommandID: "c1"}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, hs.do(t, req), http.StatusConflict, httpapi.TypeKeyInProgress)
	// A crashed attempt whose lock (the Lambda deadline) ran out can be retried.
	req2 := deposit(t, acct, 6, "idempotency-key", "crashed-1")
	if _, _, err := hs.idem.Begin(context.Background(), hs.h.RecordKey(auth.User(testSubject), "crashed-1"), requestHash(hs, req2), time.Now().Add(-time.Second), idempotency.Attempt{CommandID: "c2"}); err != nil {
		t.Fatal(err)
	}
	r := hs.do(t, req2)
	wantStatus(t, r, http.StatusOK, "")
	if r.Version != 2 {
		t.Fatalf("retry after a crashed attempt: %+v", r)
	}
}

// requestHash is how the handler fingerprints a request for its idempotency record.
func requestHash(hs *harness, req events.APIGatewayV2HTTPRequest) string {
	return hs.h.RequestHash(req.RouteKey, req.RawPath, req.Headers["if-match"], []byte(req.Body))
}

var testHashKey = []byte("0123456789abcdef0123456789abcdef")

func TestBase64BodyAndCookies(t *testing.T) {
	hs := newHarness(t)
	r := hs.do(t, fixture(t, "place-order-base64.json"))
	wantStatus(t, r, http.StatusAccepted, "")
	events, err := hs.store.Load(context.Background(), "order-"+r.ID, store.Span{})
	if err != nil || len(events) != 1 {
		t.Fatal(events, err)
	}
	var placed domain.OrderPlaced
	if err := json.Unmarshal(events[0].Data, &placed); err != nil || placed.Total != 2*1250+499 || placed.ShippingAddress.City != "Berlin" || events[0].Subject != testSubject ||
		placed.PaymentAccountID != "01J9ZQ4T8K5W3X2Y1V0B6N7M9A" {
		t.Fatalf("order placed = %+v, %v", placed, err)
	}
}

// TestPlaceOrderNamesThePayingAccount: an order names the account that pays; one without it, or
// with one that cannot be an account ID, is a 400 naming the field, and nothing is written.
func TestPlaceOrderNamesThePayingAccount(t *testing.T) {
	hs := newHarness(t)
	without := strings.Replace(orderBody("", ""), `"paymentAccountId":"acc-1",`, "", 1)
	if without == orderBody("", "") {
		t.Fatal("orderBody names no paymentAccountId")
	}
	for name, body := range map[string]string{
		"missing":        without,
		"empty":          strings.Replace(orderBody("", ""), `"acc-1"`, `""`, 1),
		"with a slash":   strings.Replace(orderBody("", ""), `"acc-1"`, `"acc/1"`, 1),
		"too long":       strings.Replace(orderBody("", ""), `"acc-1"`, `"`+strings.Repeat("a", 129)+`"`, 1),
		"not a string":   strings.Replace(orderBody("", ""), `"acc-1"`, `7`, 1),
		"with a newline": strings.Replace(orderBody("", ""), `"acc-1"`, `"acc-1\n"`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			hs.reqs.Take()
			r := hs.do(t, request(t, "POST /orders", body, nil))
			if name == "not a string" {
				wantStatus(t, r, http.StatusBadRequest, httpapi.TypeMalformed)
			} else {
				wantStatus(t, r, http.StatusBadRequest, httpapi.TypeValidation)
				if p := r.Problem.InvalidParams; len(p) != 1 || p[0].Name != "paymentAccountId" {
					t.Fatalf("invalid params %+v, want paymentAccountId", p)
				}
			}
			if ops, _ := hs.reqs.Take(); slices.ContainsFunc(ops, func(op string) bool { return op == "PutItem" || op == "TransactWriteItems" }) {
				t.Fatalf("a refused order wrote: %v", ops)
			}
		})
	}
	r := hs.do(t, request(t, "POST /orders", orderBody("", ""), nil))
	wantStatus(t, r, http.StatusAccepted, "")
	events, err := hs.store.Load(context.Background(), "order-"+r.ID, store.Span{})
	if err != nil || len(events) != 1 {
		t.Fatal(events, err)
	}
	var placed domain.OrderPlaced
	if err := json.Unmarshal(events[0].Data, &placed); err != nil || placed.PaymentAccountID != "acc-1" || events[0].SchemaVersion != 2 {
		t.Fatalf("order placed = %+v at schema %d, %v; want it paid from acc-1, at schema 2", placed, events[0].SchemaVersion, err)
	}
}

func TestConcurrentDeposits(t *testing.T) {
	hs := newHarness(t)
	acct := hs.openAccount(t)
	const n = 20
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func(amount int) {
			defer wg.Done()
			resp, err := hs.h.Handle(context.Background(), deposit(t, acct, int64(amount)))
			if err != nil {
				statuses <- -1
				return
			}
			statuses <- resp.StatusCode
		}(i)
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Fatalf("a concurrent deposit answered %d", s)
		}
	}
	events, err := hs.store.Load(context.Background(), "account-"+acct, store.Span{})
	if err != nil {
		t.Fatal(err)
	}
	var a domain.Account
	for _, e := range events {
		de, _ := domain.Decode(e.Type, e.Data)
		a = a.Evolve(de)
	}
	if len(events) != n+1 || a.Balance != n*(n+1)/2 {
		t.Fatalf("%d events, balance %d; want %d events and %d", len(events), a.Balance, n+1, n*(n+1)/2)
	}
}

func TestSingleEventCommandIsOneLoadAndOneWrite(t *testing.T) {
	hs := newHarness(t)
	acct := hs.openAccount(t)
	hs.reqs.Take()
	wantStatus(t, hs.do(t, deposit(t, acct, 5)), http.StatusOK, "")
	ops, wcu := hs.reqs.Take()
	if strings.Join(ops, ",") != "Query,PutItem" || wcu != 1 {
		t.Fatalf("deposit: requests %v, %v WCU; want one Query (the events after the cached state), one PutItem, 1 WCU", ops, wcu)
	}
	// A cold instance has no cached state: it looks for a snapshot first.
	cold := wire(t, hs.reqs.Client(t), hs.reqs, hs.env)
	hs.reqs.Take()
	wantStatus(t, cold.do(t, deposit(t, acct, 5)), http.StatusOK, "")
	if ops, wcu = hs.reqs.Take(); strings.Join(ops, ",") != "GetItem,Query,PutItem" || wcu != 1 {
		t.Fatalf("cold deposit: requests %v, %v WCU; want GetItem (snapshot), Query, PutItem and 1 WCU", ops, wcu)
	}
	// Registering a user (no cached state: it holds personal data) is one Query and one write: a
	// transaction of the event, the email's uniqueness guard and the new subject's data key (a
	// GetItem finds none; one GenerateDataKey to KMS, no write of its own). 2 WCU per item.
	reg := fixture(t, "register-user.json")
	registered := hs.do(t, reg)
	wantStatus(t, registered, http.StatusCreated, "")
	if ops, wcu = hs.reqs.Take(); strings.Join(ops, ",") != "Query,GetItem,TransactWriteItems" || wcu != 6 {
		t.Fatalf("register: requests %v, %v WCU; want Query, GetItem, TransactWriteItems and 6 WCU", ops, wcu)
	}
	// An order of a customer whose key this instance holds, paid from an account whose state
	// it holds too (so the check that the account is the customer's costs nothing: an owner never
	// changes): one Query of the order's stream and one PutItem, 1 WCU. The first order of a
	// customer who has no key yet stores it with the order: a transaction.
	orderOf := func(customer, acct string) events.APIGatewayV2HTTPRequest {
		return as(request(t, "POST /orders", `{"paymentAccountId":"`+acct+`","currency":"EUR","lines":[{"sku":"SKU-1","quantity":1,"unitPrice":100}],`+
			`"shippingAddress":{"name":"Ann Example","line1":"1 Main Street","city":"Berlin","postalCode":"10115","country":"DE"}}`, nil), customer)
	}
	wantStatus(t, hs.do(t, orderOf(registered.ID, "acc-1")), http.StatusAccepted, "")
	if ops, wcu = hs.reqs.Take(); strings.Join(ops, ",") != "Query,PutItem" || wcu != 1 {
		t.Fatalf("order of a user: requests %v, %v WCU; want Query (order), PutItem and 1 WCU", ops, wcu)
	}
	// On an instance that holds neither, the account's owner is read from its first event: one
	// Query of one item (and the customer's key is fetched).
	wantStatus(t, cold.do(t, orderOf(registered.ID, "acc-1")), http.StatusAccepted, "")
	if ops, wcu = hs.reqs.Take(); strings.Join(ops, ",") != "Query,Query,GetItem,PutItem" || wcu != 1 {
		t.Fatalf("order on a cold instance: requests %v, %v WCU; want Query (the account's first event), Query (order), GetItem (key), PutItem and 1 WCU", ops, wcu)
	}
	newcomer := "auth0|" + store.NewIDs(nil).New()
	if _, err := hs.cmds.OpenAccount(context.Background(), command.Meta{CommandID: "open-newcomer", Caller: auth.User(newcomer)}, domain.OpenAccount{AccountID: "acc-newcomer", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	hs.reqs.Take()
	wantStatus(t, hs.do(t, orderOf(newcomer, "acc-newcomer")), http.StatusAccepted, "")
	if ops, wcu = hs.reqs.Take(); strings.Join(ops, ",") != "Query,GetItem,TransactWriteItems" || wcu != 4 {
		t.Fatalf("first order of a customer without a key: requests %v, %v WCU; want Query (order), GetItem, TransactWriteItems and 4 WCU", ops, wcu)
	}
	// With an Idempotency-Key: the record's begin and completion on top; a replay is one request.
	wantStatus(t, hs.do(t, deposit(t, acct, 5, "idempotency-key", "count-1")), http.StatusOK, "")
	ops, _ = hs.reqs.Take()
	if strings.Join(ops, ",") != "PutItem,Query,PutItem,UpdateItem" {
		t.Fatalf("deposit with a key: requests %v", ops)
	}
	hs.do(t, deposit(t, acct, 5, "idempotency-key", "count-1"))
	if ops, _ = hs.reqs.Take(); strings.Join(ops, ",") != "PutItem" {
		t.Fatalf("replay: requests %v, want one PutItem", ops)
	}
}

func TestRoutesMatchTemplate(t *testing.T) {
	tmpl := awstest.MustTemplate(t)
	if _, ok := tmpl.Resources["CommandsFunction"]; !ok {
		t.Fatal("template.yaml has no CommandsFunction")
	}
	var declared []string
	for _, e := range tmpl.Events("CommandsFunction", "HttpApi") {
		declared = append(declared, fmt.Sprintf("%v %v", e.Properties["Method"], e.Properties["Path"]))
	}
	sort.Strings(declared)
	hs := newHarness(t)
	if got := hs.h.Routes(); strings.Join(got, "\n") != strings.Join(declared, "\n") {
		t.Fatalf("handler routes:\n%s\ntemplate routes:\n%s", strings.Join(got, "\n"), strings.Join(declared, "\n"))
	}
}

// lostAfterAppend loses the response of its lose-th append (counting from 1): the write lands,
// the caller sees a failure (a timeout, a dropped connection).
type lostAfterAppend struct {
	store.EventStore
	mu    sync.Mutex
	count int
	lose  int
}

func (l *lostAfterAppend) AppendStreams(ctx context.Context, appends ...store.StreamAppend) ([]store.Appended, error) {
	res, err := l.EventStore.AppendStreams(ctx, appends...)
	l.mu.Lock()
	l.count++
	lost := l.count == l.lose
	l.mu.Unlock()
	if err == nil && lost {
		return nil, context.DeadlineExceeded
	}
	return res, err
}

// failingComplete loses the first Complete: the attempt appended, then could not record it.
type failingComplete struct {
	httpapi.Idempotency
	once sync.Once
}

func (f *failingComplete) Complete(ctx context.Context, key string, a idempotency.Attempt, resp idempotency.Response) error {
	fail := false
	f.once.Do(func() { fail = true })
	if fail {
		return errors.New("complete failed (simulated)")
	}
	return f.Idempotency.Complete(ctx, key, a, resp)
}

// TestRetryAfterAnUnknownOutcomeAppendsOnce: a deposit whose append landed but whose response
// was lost answers 500; its retry with the same Idempotency-Key finds the deposit instead of
// making another.
func TestRetryAfterAnUnknownOutcomeAppendsOnce(t *testing.T) {
	reqs := &awstest.Requests{}
	client := reqs.Client(t)
	env := awstest.MustTables(t, client)
	hs := wireWith(t, client, reqs, env, func(st store.EventStore) store.EventStore { return &lostAfterAppend{EventStore: st, lose: 2} }, nil)
	acct := hs.openAccount(t) // append 1
	dep := deposit(t, acct, 40, "idempotency-key", "dep-lost")
	wantStatus(t, hs.do(t, dep), http.StatusInternalServerError, httpapi.TypeInternal) // append 2 landed, reply lost
	again := hs.do(t, dep)
	wantStatus(t, again, http.StatusOK, "")
	events, err := hs.store.Load(context.Background(), "account-"+acct, store.Span{})
	if err != nil || len(events) != 2 || again.Version != 2 || again.EventIDs[0] != events[1].ID {
		t.Fatalf("after the retry: %d events (%v), reply %+v; want the opening and one deposit", len(events), err, again)
	}
}

// TestRetryAfterAFailedCompleteAppendsOnce: an attempt appends, then fails to record its
// response; once its lock (the invocation's deadline) has passed, the retry answers with what the
// attempt did, for updates and creates alike.
func TestRetryAfterAFailedCompleteAppendsOnce(t *testing.T) {
	reqs := &awstest.Requests{}
	client := reqs.Client(t)
	env := awstest.MustTables(t, client)
	hs := wireWith(t, client, reqs, env, nil, func(i httpapi.Idempotency) httpapi.Idempotency { return &failingComplete{Idempotency: i} })
	reg := fixture(t, "register-user.json")
	reg.Headers["idempotency-key"] = "reg-1"
	// The invocation's deadline, and so the attempt's lock: long enough for the registration (a
	// KMS call and a transaction) to finish on a loaded machine before it, as the test needs.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := hs.h.Handle(ctx, reg)
	if err != nil || resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("first attempt = %d, %v; want 500", resp.StatusCode, err)
	}
	wantStatus(t, hs.do(t, reg), http.StatusConflict, httpapi.TypeKeyInProgress)
	time.Sleep(time.Until(deadlineOf(ctx)) + 50*time.Millisecond)
	again := hs.do(t, reg)
	wantStatus(t, again, http.StatusCreated, "")
	events, err := hs.store.Load(context.Background(), "user-"+again.ID, store.Span{})
	if err != nil || len(events) != 1 || again.EventIDs[0] != events[0].ID {
		t.Fatalf("the retry answered %+v; the user stream holds %d events (%v): want the first attempt's user", again, len(events), err)
	}
	// And it is recorded now: a further retry replays it.
	if r := hs.do(t, reg); r.Headers["Idempotent-Replayed"] != "true" || r.ID != again.ID {
		t.Fatalf("replay = %+v", r)
	}
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// awaitAppend waits until attempt 1 has sent its append (reached), failing the test rather than
// hanging when the attempt ended before it got there (a machine too loaded for its deadline).
func awaitAppend(t *testing.T, reached, done <-chan struct{}) {
	t.Helper()
	select {
	case <-reached:
	case <-done:
		select {
		case <-reached:
		default:
			t.Fatal("attempt 1 ended before it sent its append: its deadline was too short for this machine")
		}
	}
}
