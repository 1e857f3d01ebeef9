package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/eventfold/eventfold/internal/auth"
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
	reqs  *awstest.Requests // every DynamoDB request the harness makes, read models and store alike
	cmds  *command.Service
	store *store.DynamoDB
	proj  *projection.Projector
	clock *storetest.Clock
}

func newQueryHarness(t *testing.T) *queryHarness {
	t.Helper()
	reqs := &awstest.Requests{}
	client := reqs.Client(t)
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
	q := httpapi.NewQueries(query.New(query.Config{API: client, Table: env.Refs["ReadModelsTable"], Events: st, MaxWait: time.Second}), slog.New(slog.NewJSONHandler(io.Discard, nil)))
	return &queryHarness{q: q, reqs: reqs, cmds: cmds, store: st, proj: projection.New(client, env.Refs["ReadModelsTable"], st), clock: clock}
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
	return qh.send(t, queryRequest(routeKey, params, query, queryOwner))
}

// queryRequest is a query as its natural caller sends it: an operator on an operator route, the
// user the path names on a route about a user, else owner.
func queryRequest(routeKey string, params, query map[string]string, owner string) events.APIGatewayV2HTTPRequest {
	req := events.APIGatewayV2HTTPRequest{RouteKey: routeKey, PathParameters: params, QueryStringParameters: query, Headers: map[string]string{}}
	switch {
	case operatorRoutes[routeKey]:
		return asOperator(req)
	case (routeKey == "GET /users/{id}" || routeKey == "GET /customers/{id}/orders") && auth.ValidSubject(params["id"]):
		return as(req, params["id"]) // the user asks about themself
	default:
		return as(req, owner)
	}
}

// send sends req, with the caller it names.
func (qh *queryHarness) send(t *testing.T, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, map[string]any) {
	t.Helper()
	routeKey := req.RouteKey
	resp, err := qh.q.Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
		t.Fatalf("%s: body %q: %v", routeKey, resp.Body, err)
	}
	return resp, body
}

// queryOwner owns the query tests' accounts and orders, and asks about them.
const queryOwner = "o1"

// qmeta is the metadata of a command queryOwner sends.
func qmeta() command.Meta { return qas(queryOwner) }

// qas is the metadata of a command the user sends.
func qas(user string) command.Meta {
	return command.Meta{CommandID: "cmd", CorrelationID: "corr", Caller: auth.User(user)}
}

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
	if _, err := qh.cmds.RegisterUser(ctx, qas(uid), domain.RegisterUser{UserID: uid, Email: "old@example.com", Name: "U"}); err != nil {
		t.Fatal(err)
	}
	before := qh.clock.Now()
	qh.clock.Advance(time.Minute)
	if _, err := qh.cmds.ChangeEmail(ctx, qas(uid), uid, domain.ChangeEmail{Email: "new@example.com"}); err != nil {
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
		if _, err := qh.cmds.RegisterUser(ctx, qas(id), domain.RegisterUser{UserID: id, Email: fmt.Sprintf("%s@example.com", id), Name: "U"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := qh.cmds.DeactivateUser(ctx, qas(users[3]), users[3]); err != nil {
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

// TestQueriesMinVersionReads counts the DynamoDB requests of read-your-writes reads: a read model
// that has the version costs one GetItem and no event store read; a version the event store does
// not have is answered at once, after one GetItem and one Query, not after the wait; a version the
// store has but the read model lacks is waited for, then 503.
func TestQueriesMinVersionReads(t *testing.T) {
	qh := newQueryHarness(t)
	ctx := context.Background()
	acct := "a" + fmt.Sprint(time.Now().UnixNano())
	if _, err := qh.cmds.OpenAccount(ctx, qmeta(), domain.OpenAccount{AccountID: acct, OwnerID: "o1", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	if _, err := qh.cmds.Deposit(ctx, qmeta(), acct, domain.Deposit{Amount: 5}); err != nil {
		t.Fatal(err)
	}
	qh.project(t, "account-"+acct)
	if _, err := qh.cmds.Deposit(ctx, qmeta(), acct, domain.Deposit{Amount: 7}); err != nil {
		t.Fatal(err) // version 3: in the store, not in the read model
	}
	params := map[string]string{"id": acct}
	for _, tc := range []struct {
		name       string
		params     map[string]string
		minVersion string
		status     int
		typ        string
		ops        []string // nil: check only that the store was read once and the read model polled
	}{
		{"the read model has it", params, "2", 200, "", []string{"GetItem"}},
		{"the read model is past it", params, "1", 200, "", []string{"GetItem"}},
		{"one above the head", params, "4", 404, httpapi.TypeVersionNotFound, []string{"GetItem", "Query"}},
		{"far above the head", params, fmt.Sprint(int64(1) << 53), 404, httpapi.TypeVersionNotFound, []string{"GetItem", "Query"}},
		{"a stream with no events", map[string]string{"id": "nobody"}, "1", 404, httpapi.TypeVersionNotFound, []string{"GetItem", "Query"}},
		{"in the store, the read model behind", params, "3", 503, httpapi.TypeNotYetConsistent, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			qh.reqs.Take()
			resp, body := qh.get(t, "GET /accounts/{id}", tc.params, map[string]string{"minVersion": tc.minVersion})
			ops, _ := qh.reqs.Take()
			if resp.StatusCode != tc.status || tc.typ != "" && body["type"] != tc.typ {
				t.Fatalf("%d %v, want %d %s", resp.StatusCode, body, tc.status, tc.typ)
			}
			if tc.ops != nil {
				if !slices.Equal(ops, tc.ops) {
					t.Fatalf("requests %v, want %v", ops, tc.ops)
				}
				return
			}
			if resp.Headers["Retry-After"] != "1" {
				t.Errorf("Retry-After %q, want 1", resp.Headers["Retry-After"])
			}
			gets := 0
			for _, op := range ops {
				if op == "GetItem" {
					gets++
				}
			}
			// One store read; the read model polled for the whole (1 s) wait, every 50 ms.
			if slices.Index(ops, "Query") != 1 || len(ops)-gets != 1 || gets < 3 {
				t.Fatalf("requests %v, want GetItem, Query, then GetItems until the wait ends", ops)
			}
		})
	}
}

// appendDeposits appends n deposits to an open account's stream directly, in transactions of up
// to 99 events, and returns the stream's version.
func (qh *queryHarness) appendDeposits(t *testing.T, acct string, at int64, n int) int64 {
	t.Helper()
	ids := store.NewIDs(nil)
	for n > 0 {
		batch := make([]store.Event, min(n, 99)) // and a version check: 100 items
		for i := range batch {
			batch[i] = store.Event{ID: ids.New(), Type: domain.TypeMoneyDeposited, CorrelationID: "corr",
				Data: json.RawMessage(fmt.Sprintf(`{"accountId":%q,"amount":1}`, acct))}
		}
		res, err := qh.store.Append(context.Background(), "account-"+acct, at, batch...)
		if err != nil {
			t.Fatal(err)
		}
		at, n = res.Version, n-len(batch)
	}
	return at
}

func TestQueriesAuditTrailPages(t *testing.T) {
	qh := newQueryHarness(t)
	ctx := context.Background()
	acct := "a" + fmt.Sprint(time.Now().UnixNano())
	if _, err := qh.cmds.OpenAccount(ctx, qmeta(), domain.OpenAccount{AccountID: acct, OwnerID: "o1", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	if v := qh.appendDeposits(t, acct, 1, 160); v != 161 {
		t.Fatalf("stream at %d, want 161", v)
	}
	stream := map[string]string{"streamId": "account-" + acct}
	// pages reads the whole trail, limit at a time (the default when ""), and returns the
	// versions seen and the cursors given.
	pages := func(t *testing.T, limit string) ([]int64, []string) {
		t.Helper()
		var (
			versions []int64
			cursors  []string
			cursor   string
		)
		for page := 0; page < 200; page++ {
			q := map[string]string{}
			if limit != "" {
				q["limit"] = limit
			}
			if cursor != "" {
				q["cursor"] = cursor
			}
			resp, body := qh.get(t, "GET /streams/{streamId}/events", stream, q)
			if resp.StatusCode != 200 {
				t.Fatalf("page %d: %d %s", page, resp.StatusCode, resp.Body)
			}
			for _, e := range body["events"].([]any) {
				versions = append(versions, int64(e.(map[string]any)["version"].(float64)))
			}
			next, _ := body["next"].(string)
			if next == "" {
				return versions, cursors
			}
			cursor = next
			cursors = append(cursors, next)
		}
		t.Fatal("the trail never ends")
		return nil, nil
	}
	for _, tc := range []struct {
		limit string
		pages int
	}{{"", 2}, {"2", 81}, {"161", 1}, {"160", 2}, {"1000", 1}} {
		t.Run("limit="+tc.limit, func(t *testing.T) {
			versions, cursors := pages(t, tc.limit)
			if len(versions) != 161 {
				t.Fatalf("%d events listed, want 161", len(versions))
			}
			for i, v := range versions {
				if v != int64(i+1) {
					t.Fatalf("event %d has version %d: %v", i, v, versions)
				}
			}
			if len(cursors)+1 != tc.pages {
				t.Fatalf("%d pages, want %d", len(cursors)+1, tc.pages)
			}
		})
	}

	// Cursors this trail did not issue are refused.
	_, cursors := pages(t, "100")
	if len(cursors) == 0 {
		t.Fatal("no cursor after the first page of 100")
	}
	own := cursors[0]
	other := "a" + fmt.Sprint(time.Now().UnixNano())
	if _, err := qh.cmds.OpenAccount(ctx, qmeta(), domain.OpenAccount{AccountID: other, OwnerID: "o1", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	qh.appendDeposits(t, other, 1, 2)
	_, body := qh.get(t, "GET /streams/{streamId}/events", map[string]string{"streamId": "account-" + other}, map[string]string{"limit": "1"})
	foreign, _ := body["next"].(string)
	uid := "u" + fmt.Sprint(time.Now().UnixNano())
	for i := 0; i < 2; i++ {
		if _, err := qh.cmds.RegisterUser(ctx, qas(fmt.Sprint(uid, i)), domain.RegisterUser{UserID: fmt.Sprint(uid, i), Email: fmt.Sprintf("%s-%d@example.com", uid, i), Name: "U"}); err != nil {
			t.Fatal(err)
		}
		qh.project(t, fmt.Sprint("user-", uid, i))
	}
	_, body = qh.get(t, "GET /users", nil, map[string]string{"status": "active", "limit": "1"})
	listCursor, _ := body["next"].(string)
	if foreign == "" || listCursor == "" {
		t.Fatalf("no cursors to try: %q %q", foreign, listCursor)
	}
	raw := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for name, q := range map[string]map[string]string{
		"not base64":             {"cursor": "!!"},
		"not JSON":               {"cursor": raw("nope")},
		"another stream's":       {"cursor": foreign},
		"a list's":               {"cursor": listCursor},
		"version altered to 1":   {"cursor": raw(fmt.Sprintf(`{"stream":"account-%s","from":1}`, acct))},
		"version not an integer": {"cursor": raw(fmt.Sprintf(`{"stream":"account-%s","from":"5"}`, acct))},
		"a field added":          {"cursor": raw(fmt.Sprintf(`{"stream":"account-%s","from":5,"x":1}`, acct))},
		"a value after it":       {"cursor": raw(fmt.Sprintf(`{"stream":"account-%s","from":5} {}`, acct))},
		"with from":              {"cursor": own, "from": "3"},
		"limit 0":                {"limit": "0"},
		"limit above 1000":       {"limit": "1001"},
		"from 0":                 {"from": "0"},
		"from not an integer":    {"from": "x"},
	} {
		resp, body := qh.get(t, "GET /streams/{streamId}/events", stream, q)
		if resp.StatusCode != 400 || body["type"] != httpapi.TypeValidation {
			t.Errorf("%s: %d %v", name, resp.StatusCode, body)
		}
	}
	// A list refuses the trail's cursor too.
	if resp, body := qh.get(t, "GET /users", nil, map[string]string{"status": "active", "cursor": own}); resp.StatusCode != 400 {
		t.Errorf("a trail cursor on a list: %d %v", resp.StatusCode, body)
	}
	// from starts the trail anywhere; a cursor goes on from there.
	resp, body := qh.get(t, "GET /streams/{streamId}/events", stream, map[string]string{"from": "160", "limit": "1"})
	if evs, _ := body["events"].([]any); resp.StatusCode != 200 || len(evs) != 1 || body["next"] == nil {
		t.Fatalf("from 160: %d %s", resp.StatusCode, resp.Body)
	}
	resp, body = qh.get(t, "GET /streams/{streamId}/events", stream, map[string]string{"cursor": body["next"].(string), "limit": "5"})
	if evs, _ := body["events"].([]any); resp.StatusCode != 200 || len(evs) != 1 || evs[0].(map[string]any)["version"] != float64(161) || body["next"] != nil {
		t.Fatalf("after 160: %d %s", resp.StatusCode, resp.Body)
	}
}

// TestReadmeReferencesEveryRoute keeps the README's HTTP API reference honest: its route tables
// list exactly the routes template.yaml declares, each once.
func TestReadmeReferencesEveryRoute(t *testing.T) {
	tmpl := awstest.MustTemplate(t)
	var declared []string
	for _, fn := range tmpl.OfType("AWS::Serverless::Function") {
		for _, e := range tmpl.Events(fn, "HttpApi") {
			declared = append(declared, fmt.Sprintf("%v %v", e.Properties["Method"], e.Properties["Path"]))
		}
	}
	if len(declared) == 0 {
		t.Fatal("template.yaml declares no HttpApi routes")
	}
	root, err := awstest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## HTTP API reference\n")
	if !ok {
		t.Fatal(`README.md has no "## HTTP API reference" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([A-Z]+ /[^`]*)` \\|")
	var listed []string
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		listed = append(listed, m[1])
	}
	slices.Sort(declared)
	slices.Sort(listed)
	if !slices.Equal(listed, declared) {
		t.Fatalf("README reference routes:\n%s\ntemplate.yaml routes:\n%s", strings.Join(listed, "\n"), strings.Join(declared, "\n"))
	}
}
