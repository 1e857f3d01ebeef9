package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/httpapi"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/query"
	"github.com/eventfold/eventfold/internal/store"
	"github.com/eventfold/eventfold/internal/store/storetest"
)

type queryHarness struct {
	q     *httpapi.Queries
	cmds  *command.Service
	store *store.DynamoDB
	proj  *projection.Projector
	clock *storetest.Clock
}

func newQueryHarness(t *testing.T) *queryHarness {
	t.Helper()
	client := awstest.DynamoDB(t)
	env := awstest.MustTables(t, client)
	reg, _ := command.Registry()
	clock := storetest.NewClock(time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC))
	st, err := store.New(client, store.Config{EventsTable: env.Refs["EventsTable"], SnapshotsTable: env.Refs["SnapshotsTable"],
		ClaimsTable: env.Refs["ClaimsTable"], Registry: reg, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	cmds, err := command.New(command.Config{Store: st, EmailKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	q := httpapi.NewQueries(query.New(client, env.Refs["ReadModelsTable"], st, 300*time.Millisecond), slog.New(slog.NewJSONHandler(io.Discard, nil)))
	return &queryHarness{q: q, cmds: cmds, store: st, proj: projection.New(client, env.Refs["ReadModelsTable"], st), clock: clock}
}

// project applies every event of stream to the read models.
func (qh *queryHarness) project(t *testing.T, stream string) {
	t.Helper()
	events, err := qh.store.Load(context.Background(), stream, store.Span{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if err := qh.proj.Apply(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func (qh *queryHarness) get(t *testing.T, routeKey string, params, query map[string]string) (events.APIGatewayV2HTTPResponse, map[string]any) {
	t.Helper()
	resp, err := qh.q.Handle(context.Background(), events.APIGatewayV2HTTPRequest{RouteKey: routeKey, PathParameters: params, QueryStringParameters: query, Headers: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
		t.Fatalf("%s: body %q: %v", routeKey, resp.Body, err)
	}
	return resp, body
}

func qmeta() command.Meta { return command.Meta{CommandID: "cmd", CorrelationID: "corr"} }

func TestQueriesByIDWaitAndAsOf(t *testing.T) {
	qh := newQueryHarness(t)
	ctx := context.Background()
	acct := "a" + fmt.Sprint(time.Now().UnixNano())
	if _, err := qh.cmds.OpenAccount(ctx, qmeta(), domain.OpenAccount{AccountID: acct, OwnerID: "o1", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	qh.clock.Advance(time.Hour)
	if _, err := qh.cmds.Deposit(ctx, qmeta(), acct, domain.Deposit{Amount: 100}); err != nil {
		t.Fatal(err)
	}
	between := qh.clock.Now().Add(30 * time.Minute)
	qh.clock.Advance(time.Hour)
	if _, err := qh.cmds.Deposit(ctx, qmeta(), acct, domain.Deposit{Amount: 50}); err != nil {
		t.Fatal(err)
	}
	params := map[string]string{"id": acct}
	if resp, _ := qh.get(t, "GET /accounts/{id}", params, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("before projection: %d, want 404", resp.StatusCode)
	}
	// Read-your-writes: the projector catches up while the query waits.
	go func() {
		time.Sleep(100 * time.Millisecond)
		qh.project(t, "account-"+acct)
	}()
	resp, body := qh.get(t, "GET /accounts/{id}", params, map[string]string{"minVersion": "3"})
	if resp.StatusCode != 200 || body["balance"] != float64(150) || body["version"] != float64(3) || resp.Headers["ETag"] != `"3"` {
		t.Fatalf("wait for version 3: %d %v %v", resp.StatusCode, body, resp.Headers)
	}
	// Version 4 exists in the event store, the read model does not reach it in time: retry.
	if _, err := qh.cmds.Deposit(ctx, qmeta(), acct, domain.Deposit{Amount: 1}); err != nil {
		t.Fatal(err)
	}
	resp, body = qh.get(t, "GET /accounts/{id}", params, map[string]string{"minVersion": "4"})
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Headers["Retry-After"] != "1" || body["type"] != httpapi.TypeNotYetConsistent {
		t.Fatalf("version 4 not projected: %d %v %v", resp.StatusCode, body, resp.Headers)
	}
	// Version 9 does not exist, nor does the account "nobody": waiting cannot help.
	if resp, _ = qh.get(t, "GET /accounts/{id}", params, map[string]string{"minVersion": "9"}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a version the stream does not have: %d, want 404", resp.StatusCode)
	}
	if resp, _ = qh.get(t, "GET /accounts/{id}", map[string]string{"id": "nobody"}, map[string]string{"minVersion": "1"}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a version of an account that does not exist: %d, want 404", resp.StatusCode)
	}
	if resp, _ = qh.get(t, "GET /customers/{id}/orders", map[string]string{"id": strings.Repeat("c", 3000)}, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an overlong customer ID: %d, want 400", resp.StatusCode)
	}
	resp, body = qh.get(t, "GET /accounts/{id}", params, map[string]string{"asOf": between.Format(time.RFC3339)})
	if resp.StatusCode != 200 || body["balance"] != float64(100) || body["version"] != float64(2) {
		t.Fatalf("as of between the deposits: %d %v", resp.StatusCode, body)
	}
	// As of a time for the other read models too: a user before and after an email change.
	uid := "u" + fmt.Sprint(time.Now().UnixNano())
	if _, err := qh.cmds.RegisterUser(ctx, qmeta(), domain.RegisterUser{UserID: uid, Email: "old@example.com", Name: "U"}); err != nil {
		t.Fatal(err)
	}
	before := qh.clock.Now()
	qh.clock.Advance(time.Minute)
	if _, err := qh.cmds.ChangeEmail(ctx, qmeta(), uid, domain.ChangeEmail{Email: "new@example.com"}); err != nil {
		t.Fatal(err)
	}
	if resp, body := qh.get(t, "GET /users/{id}", map[string]string{"id": uid}, map[string]string{"asOf": before.Format(time.RFC3339Nano)}); resp.StatusCode != 200 || body["email"] != "old@example.com" || body["version"] != float64(1) {
		t.Fatalf("user as of before the change: %d %v", resp.StatusCode, body)
	}
	if resp, _ := qh.get(t, "GET /users/{id}", map[string]string{"id": uid}, map[string]string{"asOf": "2000-01-01T00:00:00Z"}); resp.StatusCode != 404 {
		t.Fatalf("user as of before it existed: %d, want 404", resp.StatusCode)
	}
	for q, want := range map[string]int{"asOf=yesterday": 400, "minVersion=-1": 400, "minVersion=x": 400} {
		k, v, _ := strings.Cut(q, "=")
		if resp, _ := qh.get(t, "GET /accounts/{id}", params, map[string]string{k: v}); resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", q, resp.StatusCode, want)
		}
	}
	if resp, _ := qh.get(t, "GET /accounts/{id}", map[string]string{"id": "no/such"}, nil); resp.StatusCode != 404 {
		t.Errorf("malformed ID: %d, want 404", resp.StatusCode)
	}
	// The audit trail lists envelopes, never payloads.
	resp, body = qh.get(t, "GET /streams/{streamId}/events", map[string]string{"streamId": "account-" + acct}, map[string]string{"from": "2"})
	entries, _ := body["events"].([]any)
	if resp.StatusCode != 200 || len(entries) != 3 || strings.Contains(resp.Body, "amount") || !strings.Contains(resp.Body, `"correlationId":"corr"`) {
		t.Fatalf("audit trail: %d %s", resp.StatusCode, resp.Body)
	}
}

func TestQueriesListsWithCursors(t *testing.T) {
	qh := newQueryHarness(t)
	ctx := context.Background()
	var users []string
	for i := 0; i < 4; i++ {
		id := fmt.Sprintf("u%d-%d", i, time.Now().UnixNano())
		users = append(users, id)
		if _, err := qh.cmds.RegisterUser(ctx, qmeta(), domain.RegisterUser{UserID: id, Email: fmt.Sprintf("%s@example.com", id), Name: "U"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := qh.cmds.DeactivateUser(ctx, qmeta(), users[3]); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		qh.project(t, "user-"+u)
	}
	var seen []string
	cursor := ""
	for page := 0; page < 5; page++ {
		q := map[string]string{"status": "active", "limit": "2"}
		if cursor != "" {
			q["cursor"] = cursor
		}
		resp, body := qh.get(t, "GET /users", nil, q)
		if resp.StatusCode != 200 {
			t.Fatalf("page %d: %d %s", page, resp.StatusCode, resp.Body)
		}
		for _, it := range body["items"].([]any) {
			seen = append(seen, it.(map[string]any)["id"].(string))
		}
		next, _ := body["next"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != 3 {
		t.Fatalf("active users listed: %v, want the 3 active ones", seen)
	}
	for name, q := range map[string]map[string]string{
		"bad status":             {"status": "gone"},
		"bad cursor":             {"status": "active", "cursor": "!!"},
		"cursor of another list": {"status": "deactivated", "cursor": cursor},
		"limit too high":         {"status": "active", "limit": "1000"},
	} {
		if resp, body := qh.get(t, "GET /users", nil, q); resp.StatusCode != 400 || body["type"] != httpapi.TypeValidation {
			t.Errorf("%s: %d %v", name, resp.StatusCode, body)
		}
	}
}

func TestQueryRoutesMatchTemplate(t *testing.T) {
	tmpl := awstest.MustTemplate(t)
	var declared []string
	for _, e := range tmpl.Events("QueriesFunction", "HttpApi") {
		declared = append(declared, fmt.Sprintf("%v %v", e.Properties["Method"], e.Properties["Path"]))
	}
	got := httpapi.NewQueries(nil, slog.New(slog.NewJSONHandler(io.Discard, nil))).Routes()
	if strings.Join(got, "\n") != strings.Join(slices.Sorted(slices.Values(declared)), "\n") {
		t.Fatalf("handler routes:\n%s\ntemplate routes:\n%s", strings.Join(got, "\n"), strings.Join(declared, "\n"))
	}
}
