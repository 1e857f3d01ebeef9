package httpapi

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"
)

// bodyTypes are the request bodies of the routes, by the fuzzer's number.
var bodyTypes = []func() any{
	func() any { return new(amountBody) },
	func() any { return new(placeOrderBody) },
	func() any { return new(registerUserBody) },
	func() any { return new(openAccountBody) },
	func() any { return new(changeEmailBody) },
	func() any { return new(addStockBody) },
	func() any { return new(struct{}) },
}

// FuzzDecode: decode never panics; what it accepts holds only names of the target type, spelt
// as the type spells them, each once per object; re-encoded, it decodes to the same value; and
// it rejects every body with a duplicate name, with a 400 problem that quotes nothing of it.
func FuzzDecode(f *testing.F) {
	f.Add(0, []byte(`{"amount":5}`))
	f.Add(0, []byte(`{"AMOUNT":5}`))
	f.Add(0, []byte(`{"amount":1,"amount":1000}`))
	f.Add(0, []byte(`{"amount":1,"\u0061mount":1000}`))
	f.Add(0, []byte(`{"amount":1,"ann@example.com":2}`))
	f.Add(1, []byte(`{"paymentAccountId":"a","currency":"EUR","lines":[{"sku":"A","quantity":1,"unitPrice":1}],"shippingAddress":{"name":"n","line1":"l","city":"c","postalCode":"p","country":"DE"}}`))
	f.Add(1, []byte(`{"lines":[{"sku":"A","quantity":1,"quantity":2}],"shippingAddress":{"city":"c","city":"d"}}`))
	f.Add(1, []byte(`{"lines":null,"shippingAddress":null}`))
	f.Add(2, []byte(`{"email":"a@example.com","name":"A"} `))
	f.Add(2, []byte(`{"email":"a@example.com"}{}`))
	f.Add(6, []byte(`{}`))
	f.Add(6, []byte(`null`))
	f.Fuzz(func(t *testing.T, kind int, body []byte) {
		newBody := bodyTypes[(kind%len(bodyTypes)+len(bodyTypes))%len(bodyTypes)]
		v := newBody()
		err := decode(body, v)
		names, dup := objectNames(body)
		if err != nil {
			var p *Problem
			if !errors.As(err, &p) || p.Status != http.StatusBadRequest || p.Type != TypeMalformed {
				t.Fatalf("decode %q: %v, want a 400 malformed-request problem", body, err)
			}
			if !ownDetail(p.Detail) {
				t.Fatalf("decode %q: problem %q may quote the body", body, p.Detail)
			}
			return
		}
		if dup {
			t.Fatalf("decode accepted %q, which repeats a name", body)
		}
		known := jsonNames(reflect.TypeOf(v).Elem(), map[string]bool{})
		for _, name := range names {
			if !known[name] {
				t.Fatalf("decode accepted %q, with the name %q %T does not have", body, name, v)
			}
		}
		again, err := json.Marshal(v, json.FormatNilSliceAsNull(true))
		if err != nil {
			t.Fatalf("re-encode %+v: %v", v, err)
		}
		w := newBody()
		if err := decode(again, w); err != nil {
			t.Fatalf("decode of the re-encoded %s: %v", again, err)
		}
		if !reflect.DeepEqual(v, w) {
			t.Fatalf("%q decoded to %+v, re-encoded %s to %+v", body, v, again, w)
		}
	})
}

// objectNames lists the member names of every object in body, in order, and says whether an
// object has one twice. It reads with encoding/json v1's tokenizer, not the decoder under test.
func objectNames(body []byte) (names []string, dup bool) {
	type frame struct {
		object, wantName bool
		seen             map[string]bool
	}
	dec := stdjson.NewDecoder(bytes.NewReader(body))
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return names, dup
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch tok {
		case stdjson.Delim('{'), stdjson.Delim('['):
			if top != nil && top.object {
				top.wantName = true // the value of the member ends with this compound value
			}
			stack = append(stack, &frame{object: tok == stdjson.Delim('{'), wantName: true, seen: map[string]bool{}})
			continue
		case stdjson.Delim('}'), stdjson.Delim(']'):
			stack = stack[:len(stack)-1]
			continue
		}
		switch {
		case top != nil && top.object && top.wantName:
			name, _ := tok.(string)
			names = append(names, name)
			dup = dup || top.seen[name]
			top.seen[name], top.wantName = true, false
		case top != nil && top.object:
			top.wantName = true
		}
	}
}

// ObjectNames is objectNames, for the tests of package httpapi_test.
func ObjectNames(body []byte) (names []string, dup bool) { return objectNames(body) }

// jsonNames collects the JSON member names of t and of the structs it holds.
func jsonNames(t reflect.Type, into map[string]bool) map[string]bool {
	switch t.Kind() {
	case reflect.Slice, reflect.Pointer:
		return jsonNames(t.Elem(), into)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			into[name] = true
			jsonNames(f.Type, into)
		}
	}
	return into
}

// details are the problem details decode may give: fixed text, byte offsets and field paths.
var details = regexp.MustCompile(`^(?:the request needs a JSON body|the body must be a JSON object|` +
	`the body must hold one JSON object and nothing after it|the body ends in the middle of a JSON value|` +
	`the body is not valid JSON \(at byte \d+\)|the body has a field twice in one object \(at byte \d+\)|` +
	`the body has a field this route does not take \(at byte \d+\); field names match exactly|` +
	`a field of the body has the wrong type|the body is not valid JSON for this route|` +
	`field "([^"]*)" must be a JSON [a-z]+)$`)

// ownDetail says whether detail is one decode gives, naming at most the API's own fields.
func ownDetail(detail string) bool {
	m := details.FindStringSubmatch(detail)
	if m == nil {
		return false
	}
	if m[1] == "" {
		return true
	}
	known := map[string]bool{}
	for _, newBody := range bodyTypes {
		jsonNames(reflect.TypeOf(newBody()).Elem(), known)
	}
	for tok := range strings.SplitSeq(m[1], ".") {
		if _, err := strconv.Atoi(tok); err != nil && !known[tok] {
			return false
		}
	}
	return true
}

// TestDecodeProblems: what each kind of defect is told, and that it quotes no part of the body.
func TestDecodeProblems(t *testing.T) {
	tests := []struct {
		name, body string
		into       any
		detail     string
	}{
		{"empty", ``, new(amountBody), "the request needs a JSON body"},
		{"not an object", `[{"amount":1}]`, new(amountBody), "the body must be a JSON object"},
		{"null", `null`, new(amountBody), "the body must be a JSON object"},
		{"syntax", `{"amount" 1}`, new(amountBody), "the body is not valid JSON (at byte 10)"},
		{"not JSON", `ann@example.com`, new(amountBody), "the body is not valid JSON (at byte 0)"},
		{"cut short", `{"amount":`, new(amountBody), "the body ends in the middle of a JSON value"},
		{"unknown name cut short", `{"ann@example.com":`, new(amountBody), "the body has a field this route does not take (at byte 1); field names match exactly"},
		{"trailing", `{"amount":1} {"ann@example.com":2}`, new(amountBody), "the body must hold one JSON object and nothing after it"},
		{"unknown", `{"amount":1,"ann@example.com":2}`, new(amountBody), "the body has a field this route does not take (at byte 12); field names match exactly"},
		{"other case", `{"Amount":1}`, new(amountBody), "the body has a field this route does not take (at byte 1); field names match exactly"},
		{"duplicate", `{"amount":1,"amount":2}`, new(amountBody), "the body has a field twice in one object (at byte 12)"},
		{"type", `{"amount":"ann@example.com"}`, new(amountBody), `field "amount" must be a JSON integer`},
		{"nested type", `{"lines":[{"sku":1}]}`, new(placeOrderBody), `field "lines.0.sku" must be a JSON string`},
		{"fraction", `{"amount":1.5}`, new(amountBody), `field "amount" must be a JSON integer`},
		{"invalid UTF-8", "{\"amount\":1,\"x\xff\":2}", new(amountBody), "the body is not valid JSON (at byte 14)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := decode([]byte(tt.body), tt.into)
			var p *Problem
			if !errors.As(err, &p) || p.Status != http.StatusBadRequest || p.Type != TypeMalformed || p.Detail != tt.detail {
				t.Fatalf("decode(%q) = %v, want a 400 problem %q", tt.body, err, tt.detail)
			}
		})
	}
}
