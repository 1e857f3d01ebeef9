package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/eventfold/eventfold/internal/httpapi"
	"github.com/eventfold/eventfold/internal/store"
)

// writes are the DynamoDB operations of ops that write.
func writes(ops []string) []string {
	var w []string
	for _, op := range ops {
		switch op {
		case "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem":
			w = append(w, op)
		}
	}
	return w
}

// TestIfMatchOnCreateRoutes: a create makes a resource that has no current version yet, so no
// If-Match can hold (RFC 9110 §13.1.1): any well-formed one is 412, a malformed one 400, and
// either way nothing is written, not even an idempotency record, and nothing is read.
func TestIfMatchOnCreateRoutes(t *testing.T) {
	hs := newHarness(t)
	creates := []struct{ route, body string }{
		{"POST /users", `{"email":"ann@example.com","name":"Ann"}`},
		{"POST /accounts", `{"currency":"EUR"}`},
		{"POST /orders", orderBody("", "")},
	}
	n := 0
	for _, c := range creates {
		for _, tt := range []struct {
			ifMatch string
			status  int
			typ     string
		}{
			{`"1"`, http.StatusPreconditionFailed, httpapi.TypePreconditionFailed},
			{`"0"`, http.StatusPreconditionFailed, httpapi.TypePreconditionFailed},
			{`W/"1"`, http.StatusPreconditionFailed, httpapi.TypePreconditionFailed},
			{`*`, http.StatusPreconditionFailed, httpapi.TypePreconditionFailed},
			{`soon`, http.StatusBadRequest, httpapi.TypeMalformed},
			{`"1", "2"`, http.StatusBadRequest, httpapi.TypeMalformed},
			{` `, http.StatusBadRequest, httpapi.TypeMalformed},
		} {
			t.Run(c.route+" "+tt.ifMatch, func(t *testing.T) {
				n++
				key := fmt.Sprintf("create-%d", n)
				// Each registration is another user's: a user registers once.
				sub := testSubject
				if c.route == "POST /users" {
					sub = fmt.Sprintf("%s-%d", testSubject, n)
				}
				hs.reqs.Take()
				for i := 0; i < 2; i++ {
					r := hs.do(t, as(request(t, c.route, c.body, nil, "if-match", tt.ifMatch, "idempotency-key", key), sub))
					wantStatus(t, r, tt.status, tt.typ)
					if r.Headers["Idempotent-Replayed"] != "" || r.Headers["Location"] != "" {
						t.Fatalf("attempt %d: %+v", i, r)
					}
				}
				if ops, _ := hs.reqs.Take(); len(ops) > 0 {
					t.Fatalf("a create with If-Match reached DynamoDB: %v", ops)
				}
				// No record was made under the key: it is free for the request without If-Match.
				r := hs.do(t, as(request(t, c.route, strings.Replace(c.body, "ann@", fmt.Sprintf("ann%d@", n), 1), nil, "idempotency-key", key), sub))
				if r.StatusCode/100 != 2 || r.Headers["Idempotent-Replayed"] != "" {
					t.Fatalf("the key after a refused create: %d %s", r.StatusCode, r.Body)
				}
			})
		}
	}
}

// TestIfMatchOnUpdateRoutes: on every other route a malformed If-Match is 400, a version is
// the version the client acted on, and * holds when the resource exists and fails with 412 when
// it does not, writing nothing — even where the command would otherwise create it (stock).
func TestIfMatchOnUpdateRoutes(t *testing.T) {
	hs := newHarness(t)
	user := hs.do(t, request(t, "POST /users", `{"email":"ann@example.com","name":"Ann"}`, nil))
	wantStatus(t, user, http.StatusCreated, "")
	acct := hs.openAccount(t)
	wantStatus(t, hs.do(t, deposit(t, acct, 100)), http.StatusOK, "")
	wantStatus(t, hs.do(t, request(t, "POST /inventory/{sku}/stock", `{"quantity":1}`, map[string]string{"sku": "SKU-1"})), http.StatusOK, "")
	// missingUser is a user ID (a canonical ULID) no user has: an ID that cannot be a user's is 404
	// before If-Match is looked at.
	const missingUser, missingAccount, missingSKU = "01J9ZQ4T8K5W3X2Y1V0B6N7M8D", "01JUNKNOWNACCOUNT000000000", "SKU-NEW"
	// In order: the user's email changes before the user is deactivated, then erased.
	routes := []struct {
		route, body string
		param       string
		id, missing string
		version     int64 // the aggregate's version before the route runs
	}{
		{"PUT /users/{id}/email", `{"email":"bea@example.com"}`, "id", user.ID, missingUser, 1},
		{"POST /users/{id}/deactivate", ``, "id", user.ID, missingUser, 2},
		{"POST /accounts/{id}/deposits", `{"amount":5}`, "id", acct, missingAccount, 2},
		{"POST /accounts/{id}/withdrawals", `{"amount":5}`, "id", acct, missingAccount, 3},
		{"POST /inventory/{sku}/stock", `{"quantity":1}`, "sku", "SKU-1", missingSKU, 1},
		{"DELETE /users/{id}", ``, "id", user.ID, missingUser, 3},
	}
	for _, rt := range routes {
		t.Run(rt.route, func(t *testing.T) {
			at := map[string]string{rt.param: rt.id}
			for _, bad := range []string{`soon`, `"x"`, `"1", "2"`, `**`, ` `} {
				hs.reqs.Take()
				wantStatus(t, hs.do(t, request(t, rt.route, rt.body, at, "if-match", bad)), http.StatusBadRequest, httpapi.TypeMalformed)
				if ops, _ := hs.reqs.Take(); len(ops) > 0 {
					t.Fatalf("If-Match %q reached DynamoDB: %v", bad, ops)
				}
			}
			// A version other than the current one is a conflict.
			wantStatus(t, hs.do(t, request(t, rt.route, rt.body, at, "if-match", etagOf(rt.version+1))), http.StatusConflict, httpapi.TypeConflict)
			// * on a resource that does not exist: 412, nothing written.
			hs.reqs.Take()
			missing := request(t, rt.route, rt.body, map[string]string{rt.param: rt.missing}, "if-match", "*")
			if strings.Contains(rt.route, " /users/{id}/") {
				missing = as(missing, rt.missing) // only a user acts on their user, and that one does not exist
			}
			wantStatus(t, hs.do(t, missing), http.StatusPreconditionFailed, httpapi.TypePreconditionFailed)
			if ops, _ := hs.reqs.Take(); len(writes(ops)) > 0 {
				t.Fatalf("If-Match: * on a missing resource wrote: %v", ops)
			}
			// * on one that exists: the command runs, at whatever version it finds.
			r := hs.do(t, request(t, rt.route, rt.body, at, "if-match", "*"))
			wantStatus(t, r, http.StatusOK, "")
			if r.Version != rt.version+1 {
				t.Fatalf("If-Match: * at version %d answered %+v", rt.version, r)
			}
		})
	}
	// The stock that * refused to create does not exist.
	events, err := hs.store.Load(context.Background(), "inventory-"+missingSKU, store.Span{})
	if err != nil || len(events) != 0 {
		t.Fatalf("inventory %s has %d events (%v) after If-Match: *, want none", missingSKU, len(events), err)
	}
}

func etagOf(v int64) string { return `"` + strconv.FormatInt(v, 10) + `"` }
