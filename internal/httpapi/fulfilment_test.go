package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/httpapi"
	"github.com/eventfold/eventfold/internal/store"
)

// appendDomain appends domain events to stream directly (as the saga and the commands would), at
// a minute apart on the harness's clock, and returns the stream's version.
func (qh *queryHarness) appendDomain(t *testing.T, stream string, at int64, evs ...domain.Event) int64 {
	t.Helper()
	ids := store.NewIDs(nil)
	for _, e := range evs {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := qh.store.Append(context.Background(), stream, at, store.Event{ID: ids.New(), Type: e.EventType(), CorrelationID: "corr", Data: data}); err != nil {
			t.Fatal(err)
		}
		at++
		qh.clock.Advance(time.Minute)
	}
	return at
}

// TestQueriesFulfilment serves an order's run at GET /orders/{id}/fulfilment: 404 for an order
// without a run, a read-your-writes wait, the JSON shape with the run's steps, ETag the run's
// version, 404 version-not-found and 503 as the other by-ID routes, and asOf folded from the
// event store.
func TestQueriesFulfilment(t *testing.T) {
	qh := newQueryHarness(t)
	id := fmt.Sprintf("o%d", time.Now().UnixNano())
	params := map[string]string{"id": id}
	const route = "GET /orders/{id}/fulfilment"
	if resp, body := qh.get(t, route, params, nil); resp.StatusCode != http.StatusNotFound || body["type"] != httpapi.TypeNotFound {
		t.Fatalf("no run: %d %v, want 404 not-found", resp.StatusCode, body)
	}
	if resp, body := qh.get(t, route, map[string]string{"id": "no/such"}, nil); resp.StatusCode != http.StatusNotFound || body["type"] != httpapi.TypeNotFound {
		t.Fatalf("an ID that cannot be one: %d %v, want 404 not-found", resp.StatusCode, body)
	}

	// A run as the saga decides it: started, then both lines reserved (one refused first).
	order := domain.OrderPlaced{OrderID: id, CustomerID: queryOwner, PaymentAccountID: "acct-1", Currency: "EUR", Total: 300,
		Lines: []domain.OrderLine{{SKU: "SKU-1", Quantity: 1, UnitPrice: 100}, {SKU: "SKU-2", Quantity: 1, UnitPrice: 200}}}
	qh.appendDomain(t, "order-"+id, 0, order) // the order the run is of: its customer may see the run
	start := qh.clock.Now()
	var f domain.Fulfilment
	var history []domain.Event
	for _, tr := range []domain.FulfilmentTrigger{
		domain.StartFulfilment{Order: order, Timeout: 15 * time.Minute},
		domain.FulfilmentReplies{{Kind: domain.CommandReserve, SKU: "SKU-1", OK: true, EventID: "e1"}},
		domain.FulfilmentReplies{{Kind: domain.CommandReserve, SKU: "SKU-2", OK: false, Reason: "insufficient-stock"}},
	} {
		d := f.Decide(tr, start)
		f = f.Evolve(d.Events[0])
		history = append(history, d.Events[0])
	}
	stream := domain.RunID(id)
	qh.appendDomain(t, stream, 0, history[:2]...)
	afterFirst := start.Add(30 * time.Second) // the first event's time, and before the second's

	// Read-your-writes: the projector catches up while the query waits.
	go func() {
		time.Sleep(100 * time.Millisecond)
		qh.project(t, stream)
	}()
	resp, body := qh.get(t, route, params, map[string]string{"minVersion": "2"})
	if resp.StatusCode != 200 || resp.Headers["ETag"] != `"2"` {
		t.Fatalf("wait for version 2: %d %s %v", resp.StatusCode, resp.Body, resp.Headers)
	}
	var keys []string
	for k := range body {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"cancelReason", "deadline", "decisions", "finished", "lastError", "orderId", "step", "steps", "version"}; !slices.Equal(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	deadline := store.FormatTime(start.Add(15 * time.Minute).Truncate(time.Second))
	var got struct {
		OrderID, Step, CancelReason, LastError string
		Deadline                               struct {
			At      string
			Pending bool
		}
		Finished  bool
		Decisions int
		Steps     []struct {
			Step, At, EventType string
			Version             int64
		}
		Version int64
	}
	if err := json.Unmarshal([]byte(resp.Body), &got); err != nil {
		t.Fatal(err)
	}
	if got.OrderID != id || got.Step != "reserving" || got.CancelReason != "" || got.LastError != "" || got.Finished ||
		got.Decisions != domain.FulfilmentDecisions || got.Version != 2 || got.Deadline.At != deadline || !got.Deadline.Pending ||
		len(got.Steps) != 2 || got.Steps[0].Step != "reserving" || got.Steps[0].EventType != domain.TypeFulfilmentStarted ||
		got.Steps[0].Version != 1 || got.Steps[0].At != store.FormatTime(start) || got.Steps[1].EventType != domain.TypeFulfilmentReplied {
		t.Fatalf("run at version 2: %s", resp.Body)
	}

	// Version 3 exists in the event store, the read model does not reach it in time: retry.
	qh.appendDomain(t, stream, 2, history[2])
	resp, body = qh.get(t, route, params, map[string]string{"minVersion": "3"})
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Headers["Retry-After"] != "1" || body["type"] != httpapi.TypeNotYetConsistent {
		t.Fatalf("version 3 not projected: %d %v", resp.StatusCode, body)
	}
	if resp, body = qh.get(t, route, params, map[string]string{"minVersion": "9"}); resp.StatusCode != http.StatusNotFound || body["type"] != httpapi.TypeVersionNotFound {
		t.Fatalf("a version the run does not have: %d %v", resp.StatusCode, body)
	}
	qh.project(t, stream)
	resp, body = qh.get(t, route, params, map[string]string{"minVersion": "3"})
	if resp.StatusCode != 200 || body["step"] != "compensating" || body["cancelReason"] != "out-of-stock" ||
		body["lastError"] != "reserve SKU-2: insufficient-stock" || body["deadline"].(map[string]any)["pending"] != false || resp.Headers["ETag"] != `"3"` {
		t.Fatalf("run at version 3: %d %s", resp.StatusCode, resp.Body)
	}

	// As of a time: the run folded from the event store, as the projector folds it.
	resp, body = qh.get(t, route, params, map[string]string{"asOf": afterFirst.Format(time.RFC3339Nano)})
	if steps, _ := body["steps"].([]any); resp.StatusCode != 200 || body["version"] != float64(1) || body["step"] != "reserving" || len(steps) != 1 || resp.Headers["ETag"] != `"1"` {
		t.Fatalf("as of after the first event: %d %s", resp.StatusCode, resp.Body)
	}
	if resp, _ := qh.get(t, route, params, map[string]string{"asOf": "2000-01-01T00:00:00Z"}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("as of before the run: %d, want 404", resp.StatusCode)
	}
	if resp, _ := qh.get(t, route, params, map[string]string{"minVersion": "x"}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a bad minVersion: %d, want 400", resp.StatusCode)
	}
}

// TestQueriesOrderShowsStatusAndCancelReason: GET /orders/{id} shows the order's status and,
// once cancelled, why.
func TestQueriesOrderShowsStatusAndCancelReason(t *testing.T) {
	qh := newQueryHarness(t)
	id := fmt.Sprintf("o%d", time.Now().UnixNano())
	stream := "order-" + id
	qh.appendDomain(t, stream, 0, domain.OrderPlaced{OrderID: id, CustomerID: queryOwner, PaymentAccountID: "acct-1", Currency: "EUR", Total: 100,
		Lines: []domain.OrderLine{{SKU: "SKU-1", Quantity: 1, UnitPrice: 100}}})
	qh.project(t, stream)
	params := map[string]string{"id": id}
	if resp, body := qh.get(t, "GET /orders/{id}", params, nil); resp.StatusCode != 200 || body["status"] != "placed" || body["cancelReason"] != nil {
		t.Fatalf("placed: %d %s", resp.StatusCode, resp.Body)
	}
	qh.appendDomain(t, stream, 1, domain.OrderCancelled{OrderID: id, Reason: domain.ReasonTimeout})
	qh.project(t, stream)
	if resp, body := qh.get(t, "GET /orders/{id}", params, nil); resp.StatusCode != 200 || body["status"] != "cancelled" || body["cancelReason"] != "timeout" {
		t.Fatalf("cancelled: %d %s", resp.StatusCode, resp.Body)
	}
}
