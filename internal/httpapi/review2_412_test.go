package httpapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/eventfold/eventfold/internal/httpapi"
	"github.com/eventfold/eventfold/internal/store"
)

// TestReview2StarOnMissingLeavesNoRecord: If-Match: * on a resource that does not exist is 412 and
// writes nothing: its idempotency record is freed, as a 409 frees it, so it is never replayed. Once the
// item exists, the same request under the same key runs.
func TestReview2StarOnMissingLeavesNoRecord(t *testing.T) {
	hs := newHarness(t)
	at := map[string]string{"sku": "SKU-LATER"}
	for i := 0; i < 2; i++ { // the 412 is not recorded, so not replayed
		r := hs.do(t, request(t, "POST /inventory/{sku}/stock", `{"quantity":1}`, at, "if-match", "*", "idempotency-key", "k-star"))
		wantStatus(t, r, http.StatusPreconditionFailed, httpapi.TypePreconditionFailed)
		if r.Headers["Idempotent-Replayed"] != "" {
			t.Fatalf("attempt %d: the 412 was replayed", i)
		}
	}
	if events, err := hs.store.Load(context.Background(), "inventory-SKU-LATER", store.Span{}); err != nil || len(events) != 0 {
		t.Fatalf("item after If-Match: *: %d events, %v", len(events), err)
	}
	wantStatus(t, hs.do(t, request(t, "POST /inventory/{sku}/stock", `{"quantity":1}`, at)), http.StatusOK, "")
	r := hs.do(t, request(t, "POST /inventory/{sku}/stock", `{"quantity":1}`, at, "if-match", "*", "idempotency-key", "k-star"))
	if r.StatusCode != http.StatusOK || r.Headers["Idempotent-Replayed"] != "" {
		t.Fatalf("the key after a 412: %d %s replayed=%q", r.StatusCode, r.Body, r.Headers["Idempotent-Replayed"])
	}
}
