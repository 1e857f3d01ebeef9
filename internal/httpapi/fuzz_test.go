package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/httpapi"
	"github.com/eventfold/eventfold/internal/idempotency"
	"github.com/eventfold/eventfold/internal/store"
)

// noIdempotency fails the fuzz run if a request without Idempotency-Key reaches it.
type noIdempotency struct{ t *testing.T }

func (n noIdempotency) Begin(context.Context, string, string, time.Time, idempotency.Attempt) (*idempotency.Response, idempotency.Attempt, error) {
	n.t.Fatal("Begin called without an Idempotency-Key")
	return nil, idempotency.Attempt{}, nil
}
func (n noIdempotency) Release(context.Context, string, idempotency.Attempt) error {
	n.t.Fatal("Release called without an Idempotency-Key")
	return nil
}
func (n noIdempotency) Complete(context.Context, string, idempotency.Attempt, idempotency.Response) error {
	n.t.Fatal("Complete called without an Idempotency-Key")
	return nil
}
func (n noIdempotency) Abandon(context.Context, string, idempotency.Attempt) error {
	n.t.Fatal("Abandon called without an Idempotency-Key")
	return nil
}

// erased is an Eraser that erases nothing: the fuzzed handler's store holds no keys.
type erased struct{}

func (erased) Erase(context.Context, string) error { return nil }

// FuzzHandle sends arbitrary bodies, content types, encodings and If-Match values to every
// route of a handler on the in-memory store: every answer is a well-formed response, never an
// error, a panic or a 5xx; a body that repeats a name never succeeds, nor does a create with an
// If-Match.
func FuzzHandle(f *testing.F) {
	f.Add(0, `{"email":"a@example.com","name":"A"}`, "application/json", false, "")
	f.Add(3, `{"currency":"EUR"}`, "application/json; charset=utf-8", false, "")
	f.Add(4, `{"amount":5}`, "application/json", false, `"1"`)
	f.Add(4, `eyJhbW91bnQiOjV9`, "application/json", true, "")
	f.Add(7, `{"paymentAccountId":"a","currency":"EUR","lines":[{"sku":"A","quantity":1,"unitPrice":1}],"shippingAddress":{"name":"n","line1":"l","city":"c","postalCode":"p","country":"DE"}}`, "application/vnd.x+json", false, "")
	f.Add(1, `{"email":1}`, "text/plain", false, "W/\"x\"")
	f.Add(2, ``, "", false, "")
	// Routes by index: 1 POST /accounts, 4 POST /inventory/{sku}/stock, 5 POST /orders.
	f.Add(1, `{"currency":"EUR","currency":"USD"}`, "application/json", false, "")
	f.Add(1, `{"currency":"EUR"}`, "application/json", false, `"1"`)
	f.Add(1, `{"currency":"EUR"}`, "application/json", false, `*`)
	f.Add(1, `{"currency":"EUR","ann@example.com":1}`, "application/json", false, "")
	f.Add(4, `{"quantity":1,"quantity":1000}`, "application/json", false, "")
	f.Add(4, `{"QUANTITY":5}`, "application/json", false, "*")
	f.Add(5, `{"paymentAccountId":"a","currency":"EUR","lines":[{"sku":"A","quantity":1,"quantity":9,"unitPrice":1}],"shippingAddress":{"name":"n","line1":"l","city":"c","postalCode":"p","country":"DE"}}`, "application/json", false, "")
	f.Fuzz(func(t *testing.T, route int, body, contentType string, b64 bool, ifMatch string) {
		reg, err := command.Registry()
		if err != nil {
			t.Fatal(err)
		}
		cmds, err := command.New(command.Config{Store: store.NewMemory(reg, nil), EmailKey: make([]byte, 32), Eraser: erased{}})
		if err != nil {
			t.Fatal(err)
		}
		h, err := httpapi.New(httpapi.Config{Commands: cmds, Idempotency: noIdempotency{t}, Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), HashKey: make([]byte, 32)})
		if err != nil {
			t.Fatal(err)
		}
		routes := h.Routes()
		rk := routes[(route%len(routes)+len(routes))%len(routes)]
		req := events.APIGatewayV2HTTPRequest{
			RouteKey:        rk,
			RawPath:         "/fuzz",
			Headers:         map[string]string{"content-type": contentType, "if-match": ifMatch},
			PathParameters:  map[string]string{"id": "01JFUZZ", "sku": "SKU-1"},
			Body:            body,
			IsBase64Encoded: b64,
		}
		resp, err := h.Handle(context.Background(), req)
		if err != nil {
			t.Fatalf("Handle returned an error: %v", err)
		}
		if resp.StatusCode < 200 || resp.StatusCode >= 500 {
			t.Fatalf("status %d for %s %q: %s", resp.StatusCode, rk, body, resp.Body)
		}
		if resp.StatusCode < 300 {
			raw := []byte(body)
			if b64 {
				raw, _ = base64.StdEncoding.DecodeString(body)
			}
			if _, dup := httpapi.ObjectNames(raw); dup {
				t.Fatalf("%s accepted %q, which repeats a name: %s", rk, raw, resp.Body)
			}
			if ifMatch != "" && resp.Headers["Location"] != "" {
				t.Fatalf("%s with If-Match %q created %s", rk, ifMatch, resp.Headers["Location"])
			}
		}
		if !json.Valid([]byte(resp.Body)) || resp.Headers["X-Correlation-Id"] == "" {
			t.Fatalf("malformed response %+v", resp)
		}
		if resp.StatusCode >= 400 {
			var p httpapi.Problem
			if err := json.Unmarshal([]byte(resp.Body), &p); err != nil || p.Status != resp.StatusCode || p.Type == "" {
				t.Fatalf("malformed problem %s", resp.Body)
			}
		}
	})
}
