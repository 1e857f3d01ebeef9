package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/eventfold/eventfold/internal/httpapi"
)

// orderCustomer is the customer of orderBody's orders: a user ID, as a customer ID must be.
const orderCustomer = "01J9ZQ4T8K5W3X2Y1V0B6N7M8C"

// orderBody is a valid order body with one part replaced: lines and address are spliced in raw.
func orderBody(lines, address string) string {
	if lines == "" {
		lines = `[{"sku":"SKU-1","quantity":1,"unitPrice":100}]`
	}
	if address == "" {
		address = `{"name":"N","line1":"L","city":"C","postalCode":"P","country":"DE"}`
	}
	return `{"paymentAccountId":"acc-1","currency":"EUR","lines":` + lines + `,"shippingAddress":` + address + `}`
}

// TestStrictJSON: a body is read exactly as it is written, or not at all. Field names match
// exactly, a name appears once per object, every name is one the route knows — at the top level
// and in nested objects alike. Each rejection is a 400 that quotes nothing of the body, and
// reaches no table.
func TestStrictJSON(t *testing.T) {
	hs := newHarness(t)
	acct := hs.openAccount(t)
	dep := func(body string) events.APIGatewayV2HTTPRequest {
		return request(t, "POST /accounts/{id}/deposits", body, map[string]string{"id": acct})
	}
	order := func(body string) events.APIGatewayV2HTTPRequest { return request(t, "POST /orders", body, nil) }
	// The control: the valid order body is accepted, so the cases below fail for their defect.
	wantStatus(t, hs.do(t, order(orderBody("", ""))), http.StatusAccepted, "")
	tests := []struct {
		name string
		req  events.APIGatewayV2HTTPRequest
	}{
		{"name in upper case", dep(`{"AMOUNT":5}`)},
		{"name in title case", dep(`{"Amount":5}`)},
		{"name case-mismatched on a create", request(t, "POST /users", `{"Email":"ann@example.com","name":"N"}`, nil)},
		{"name case-mismatched in a line", order(orderBody(`[{"SKU":"SKU-1","quantity":1,"unitPrice":100}]`, ""))},
		{"name case-mismatched in the address", order(orderBody("", `{"name":"N","line1":"L","City":"C","postalCode":"P","country":"DE"}`))},
		{"duplicate name", dep(`{"amount":1,"amount":1000}`)},
		{"duplicate name, escaped", dep(`{"amount":1,"\u0061mount":1000}`)},
		{"duplicate name on a create", request(t, "POST /accounts", `{"currency":"EUR","currency":"USD"}`, nil)},
		{"duplicate name in a line", order(orderBody(`[{"sku":"SKU-1","quantity":1,"quantity":1000,"unitPrice":100}]`, ""))},
		{"duplicate name in the address", order(orderBody("", `{"name":"N","line1":"L","city":"C","postalCode":"P","country":"DE","country":"FR"}`))},
		{"duplicate nested object", order(`{"currency":"EUR","lines":[],"shippingAddress":{},"shippingAddress":{"country":"DE"}}`)},
		{"unknown name", dep(`{"amount":1,"ann@example.com":"secret-value"}`)},
		{"unknown name first", dep(`{"ann@example.com":"secret-value","amount":1}`)},
		{"unknown name in a line", order(orderBody(`[{"sku":"SKU-1","quantity":1,"unitPrice":100,"ann@example.com":"secret-value"}]`, ""))},
		{"unknown name in the address", order(orderBody("", `{"name":"N","line1":"L","city":"C","postalCode":"P","country":"DE","ann@example.com":"secret-value"}`))},
		{"unknown name on a route without a body", request(t, "POST /users/{id}/deactivate", `{"ann@example.com":"secret-value"}`, map[string]string{"id": "01JUNKNOWNUSER000000000000"})},
		{"unknown name, repeated", dep(`{"ann@example.com":1,"ann@example.com":2,"amount":1}`)},
		{"null body", dep(`null`)},
		{"string body", dep(`"ann@example.com"`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs.reqs.Take()
			r := hs.do(t, tt.req)
			wantStatus(t, r, http.StatusBadRequest, httpapi.TypeMalformed)
			body := strings.ReplaceAll(r.Body, r.Problem.CorrelationID, "")
			for _, leak := range []string{"ann@example.com", "example", "secret-value", "FR", "1000"} {
				if strings.Contains(body, leak) {
					t.Errorf("problem quotes the body (%q): %s", leak, r.Body)
				}
			}
			if ops, _ := hs.reqs.Take(); len(ops) > 0 {
				t.Errorf("a rejected body reached DynamoDB: %v", ops)
			}
		})
	}
	if r := hs.do(t, deposit(t, acct, 1)); r.Version != 2 {
		t.Fatalf("after the rejected deposits the account is at version %d (%s), want 2: only this deposit", r.Version, r.Body)
	}
	// A field of the wrong type is named: it is one of the route's own names.
	r := hs.do(t, order(orderBody(`[{"sku":"SKU-1","quantity":"1","unitPrice":100}]`, "")))
	wantStatus(t, r, http.StatusBadRequest, httpapi.TypeMalformed)
	if !strings.Contains(r.Problem.Detail, `"lines.0.quantity"`) || !strings.Contains(r.Problem.Detail, "integer") {
		t.Fatalf("type error detail = %q, want it to name lines.0.quantity and its kind", r.Problem.Detail)
	}
}
