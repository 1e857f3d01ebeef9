package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/httpapi"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/query"
	"github.com/eventfold/eventfold/internal/store"
)

// sealedQueries wires the query handler as functions/queries does (the event store behind the
// sealing layer), with a keyring of its own, on the tables of hs.
func sealedQueries(t *testing.T, hs *harness) (*httpapi.Queries, *crypto.Keyring) {
	t.Helper()
	reg, err := command.Registry()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := store.New(hs.client, store.Config{EventsTable: hs.env.Refs["EventsTable"], SnapshotsTable: hs.env.Refs["SnapshotsTable"], Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	keys := crypto.NewKeyring(awstest.MustKeys(t, hs.env), hs.client, crypto.KeyringConfig{Table: hs.env.Refs["KeysTable"], KeyID: hs.env.Refs["DataKeyAlias"], MaxKeys: 100, TTL: time.Minute})
	q := query.New(query.Config{API: hs.client, Table: hs.env.Refs["ReadModelsTable"], Events: crypto.NewSealingStore(raw, keys, domain.PersonalFields), Envelopes: raw, MaxWait: 2 * time.Second}) // as app.Queries wires it
	return httpapi.NewQueries(q, slog.New(slog.NewJSONHandler(io.Discard, nil))), keys
}

func qget(t *testing.T, q *httpapi.Queries, routeKey string, params, query map[string]string) (int, string, map[string]any) {
	t.Helper()
	resp, err := q.Handle(context.Background(), queryRequest(routeKey, params, query, testSubject))
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
		t.Fatalf("%s: %q: %v", routeKey, resp.Body, err)
	}
	return resp.StatusCode, resp.Body, body
}

// TestReview2AuditTrailOfErasedUser: the audit trail of a user, before and after their erasure,
// shows envelopes only: no email, no name, no address, and no ciphertext of them.
func TestReview2AuditTrailOfErasedUser(t *testing.T) {
	hs := newHarness(t)
	user := hs.do(t, request(t, "POST /users", `{"email":"secret.person@example.com","name":"Secret Person"}`, nil, "x-correlation-id", "corr-1"))
	wantStatus(t, user, http.StatusCreated, "")
	order := hs.do(t, request(t, "POST /orders", `{"paymentAccountId":"acc-1","currency":"EUR","lines":[{"sku":"SKU-1","quantity":1,"unitPrice":5}],`+
		`"shippingAddress":{"name":"Secret Person","line1":"Hidden Street 1","city":"Nowhere","postalCode":"12345","country":"DE"}}`, nil))
	wantStatus(t, order, http.StatusAccepted, "")
	q, _ := sealedQueries(t, hs)
	leaks := []string{"secret", "Secret", "Hidden", "Nowhere", "12345", "sealed", "ZWYx"}
	check := func(when string) {
		for _, stream := range []string{"user-" + user.ID, "order-" + order.ID} {
			status, raw, body := qget(t, q, "GET /streams/{streamId}/events", map[string]string{"streamId": stream}, nil)
			if status != http.StatusOK {
				t.Fatalf("%s: audit trail of %s: %d %s", when, stream, status, raw)
			}
			for _, l := range leaks {
				if strings.Contains(raw, l) {
					t.Fatalf("%s: audit trail of %s holds %q: %s", when, stream, l, raw)
				}
			}
			for _, e := range body["events"].([]any) {
				for k := range e.(map[string]any) {
					switch k {
					case "id", "version", "type", "schemaVersion", "recordedAt", "correlationId", "causationId":
					default:
						t.Fatalf("%s: audit entry of %s has %q: %s", when, stream, k, raw)
					}
				}
			}
		}
	}
	check("before erasure")
	wantStatus(t, hs.do(t, request(t, "DELETE /users/{id}", "", map[string]string{"id": user.ID})), http.StatusOK, "")
	check("after erasure")
	_, raw, _ := qget(t, q, "GET /streams/{streamId}/events", map[string]string{"streamId": "user-" + user.ID}, nil)
	if !strings.Contains(raw, domain.TypeSubjectErased) {
		t.Fatalf("audit trail after erasure lacks %s: %s", domain.TypeSubjectErased, raw)
	}
}

// TestReview2QueryParameters: minVersion, limit, from and cursors refused as the reference says,
// at once; tampered cursors list no other customer's orders nor another stream.
func TestReview2QueryParameters(t *testing.T) {
	hs := newHarness(t)
	acct := hs.openAccount(t)
	q, _ := sealedQueries(t, hs)
	for _, mv := range []string{"-1", "abc", "1e3", "1.0", " 1", "0x1", "9007199254740993", "99999999999999999999", "1 ", "١"} {
		if status, raw, body := qget(t, q, "GET /accounts/{id}", map[string]string{"id": acct}, map[string]string{"minVersion": mv}); status != 400 || body["type"] != httpapi.TypeValidation {
			t.Errorf("minVersion %q: %d %s", mv, status, raw)
		}
	}
	// Above the head: 404 version-not-found at once, whatever the number.
	for _, mv := range []string{"2", "9007199254740992"} {
		start := time.Now()
		if status, raw, body := qget(t, q, "GET /accounts/{id}", map[string]string{"id": acct}, map[string]string{"minVersion": mv}); status != 404 || body["type"] != httpapi.TypeVersionNotFound {
			t.Errorf("minVersion %s: %d %s", mv, status, raw)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("minVersion %s above the head answered after %v, want at once", mv, d)
		}
	}
	for _, lim := range []string{"0", "-1", "101", "1.5", "x", "4294967297"} {
		if status, raw, _ := qget(t, q, "GET /customers/{id}/orders", map[string]string{"id": "01J9ZQ4T8K5W3X2Y1V0B6N7M8C"}, map[string]string{"limit": lim}); status != 400 {
			t.Errorf("orders limit %q: %d %s", lim, status, raw)
		}
		if status, raw, _ := qget(t, q, "GET /users", nil, map[string]string{"status": "active", "limit": lim}); status != 400 {
			t.Errorf("users limit %q: %d %s", lim, status, raw)
		}
	}
	for _, lim := range []string{"0", "1001", "-5", "4294967297"} {
		if status, raw, _ := qget(t, q, "GET /streams/{streamId}/events", map[string]string{"streamId": "account-" + acct}, map[string]string{"limit": lim}); status != 400 {
			t.Errorf("audit limit %q: %d %s", lim, status, raw)
		}
	}
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for name, c := range map[string]struct{ route, param, id, cursor string }{
		"list cursor of another customer": {"GET /customers/{id}/orders", "id", "01J9ZQ4T8K5W3X2Y1V0B6N7M8C", enc(`{"pk":"order-x","customerId":"01J9ZQ4T8K5W3X2Y1V0B6N7M8D"}`)},
		"list cursor with a third key":    {"GET /customers/{id}/orders", "id", "01J9ZQ4T8K5W3X2Y1V0B6N7M8C", enc(`{"pk":"order-x","customerId":"01J9ZQ4T8K5W3X2Y1V0B6N7M8C","v":"1"}`)},
		"list cursor, customer twice":     {"GET /customers/{id}/orders", "id", "01J9ZQ4T8K5W3X2Y1V0B6N7M8C", enc(`{"pk":"order-x","customerId":"01J9ZQ4T8K5W3X2Y1V0B6N7M8D","customerId":"01J9ZQ4T8K5W3X2Y1V0B6N7M8C"}`)},
		"audit cursor of another stream":  {"GET /streams/{streamId}/events", "streamId", "account-" + acct, enc(`{"stream":"account-other","from":2}`)},
		"audit cursor, stream twice":      {"GET /streams/{streamId}/events", "streamId", "account-" + acct, enc(`{"stream":"account-other","stream":"account-` + acct + `","from":2}`)},
		"audit cursor at version 1":       {"GET /streams/{streamId}/events", "streamId", "account-" + acct, enc(`{"stream":"account-` + acct + `","from":1}`)},
	} {
		status, raw, body := qget(t, q, c.route, map[string]string{c.param: c.id}, map[string]string{"cursor": c.cursor})
		if status != 400 || body["type"] != httpapi.TypeValidation {
			t.Errorf("%s: %d %s", name, status, raw)
		}
	}
}

// TestReview2AuditTrailMakesNoKMSCalls: the audit trail shows envelopes only, so it has no
// reason to unwrap anyone's key: listing a user's trail makes no KMS call.
func TestReview2AuditTrailMakesNoKMSCalls(t *testing.T) {
	hs := newHarness(t)
	user := hs.do(t, request(t, "POST /users", `{"email":"kms.count@example.com","name":"Count"}`, nil))
	wantStatus(t, user, http.StatusCreated, "")
	q, keys := sealedQueries(t, hs)
	if status, raw, _ := qget(t, q, "GET /streams/{streamId}/events", map[string]string{"streamId": "user-" + user.ID}, nil); status != 200 {
		t.Fatalf("%d %s", status, raw)
	}
	if n := keys.KMSCalls(); n != 0 {
		t.Fatalf("the audit trail made %d KMS calls, want 0: it shows no payload", n)
	}
}
