package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/eventfold/eventfold/internal/httpapi"
)

// TestReview2IfMatchWithIdempotencyKey: a malformed If-Match on an update route leaves no record
// under the key; a replay answers the recorded response and never runs the command again, and a
// replay with another If-Match is the key reused, not a run that skips the check; a 409 frees the
// key for the corrected request.
func TestReview2IfMatchWithIdempotencyKey(t *testing.T) {
	hs := newHarness(t)
	acct := hs.openAccount(t) // version 1
	at := map[string]string{"id": acct}

	// Malformed: 400, nothing read or written, the key stays free.
	hs.reqs.Take()
	wantStatus(t, hs.do(t, request(t, "POST /accounts/{id}/deposits", `{"amount":5}`, at, "if-match", `"1`+"\x00"+`"`, "idempotency-key", "k-bad")), http.StatusBadRequest, httpapi.TypeMalformed)
	if ops, _ := hs.reqs.Take(); len(ops) > 0 {
		t.Fatalf("malformed If-Match reached DynamoDB: %v", ops)
	}
	r := hs.do(t, request(t, "POST /accounts/{id}/deposits", `{"amount":5}`, at, "idempotency-key", "k-bad"))
	wantStatus(t, r, http.StatusOK, "")
	if r.Headers["Idempotent-Replayed"] != "" || r.Version != 2 {
		t.Fatalf("the key after a malformed If-Match: %+v", r)
	}

	// A run with If-Match, then its replay: the same answer, no second deposit.
	first := hs.do(t, request(t, "POST /accounts/{id}/deposits", `{"amount":7}`, at, "if-match", `"2"`, "idempotency-key", "k-1"))
	wantStatus(t, first, http.StatusOK, "")
	replay := hs.do(t, request(t, "POST /accounts/{id}/deposits", `{"amount":7}`, at, "if-match", `"2"`, "idempotency-key", "k-1"))
	if replay.StatusCode != http.StatusOK || replay.Headers["Idempotent-Replayed"] != "true" || replay.Version != first.Version {
		t.Fatalf("replay: %d %s %+v", replay.StatusCode, replay.Body, replay.Headers)
	}
	// The same key with another If-Match, or none: reused, not run.
	for _, m := range []string{`"3"`, `3`, `*`, ``} {
		h := []string{"idempotency-key", "k-1"}
		if m != "" {
			h = append(h, "if-match", m)
		}
		wantStatus(t, hs.do(t, request(t, "POST /accounts/{id}/deposits", `{"amount":7}`, at, h...)), http.StatusUnprocessableEntity, httpapi.TypeKeyReused)
	}
	// A stale If-Match: 409, the key freed; the corrected request under it runs once.
	wantStatus(t, hs.do(t, request(t, "POST /accounts/{id}/deposits", `{"amount":9}`, at, "if-match", `"2"`, "idempotency-key", "k-2")), http.StatusConflict, httpapi.TypeConflict)
	ok := hs.do(t, request(t, "POST /accounts/{id}/deposits", `{"amount":9}`, at, "if-match", `"3"`, "idempotency-key", "k-2"))
	wantStatus(t, ok, http.StatusOK, "")
	if ok.Version != 4 || ok.Headers["Idempotent-Replayed"] != "" {
		t.Fatalf("corrected request: %+v", ok)
	}
}
