package httpapi

import (
	stdjson "encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// review2Bodies are bodies two JSON readers are known to read differently somewhere: escapes in
// names, surrogates, invalid UTF-8, number forms, BOM, whitespace, NUL, nesting.
var review2Bodies = []struct {
	kind int // index into bodyTypes
	body string
}{
	{0, `{"\u0061mount":5}`},
	{0, `{"amount":1,"\u0061mount":1000}`},
	{0, `{"am\u006Funt":1,"amount":1000}`},
	{0, `{"amount":-0}`},
	{0, `{"amount":1.0}`},
	{0, `{"amount":1e2}`},
	{0, `{"amount":1E2}`},
	{0, `{"amount":100e-2}`},
	{0, `{"amount":1e400}`},
	{0, `{"amount":9223372036854775807}`},
	{0, `{"amount":9223372036854775808}`},
	{0, `{"amount":-9223372036854775809}`},
	{0, `{"amount":18446744073709551616}`},
	{0, `{"amount":null}`},
	{0, `{"amount":true}`},
	{0, `{"amount":"5"}`},
	{0, "\ufeff{\"amount\":5}"},
	{0, "{\"amount\":5}\ufeff"},
	{0, "{\u00a0\"amount\":5}"},
	{0, "{\v\"amount\":5}"},
	{0, "{\f\"amount\":5}"},
	{0, "{\"amount\":5}\x00"},
	{0, "{\"amount\x00\":5}"},
	{0, `{"amount\u0000":5}`},
	{0, `{"amount":5,"amount\u0000":7}`},
	{0, "{\r\n\t\"amount\" : 5 }\r\n"},
	{0, `{"amount":05}`},
	{0, `{"amount":+5}`},
	{0, `{"amount":0x5}`},
	{0, `{"amount":5,}`},
	{0, `{'amount':5}`},
	{0, `{amount:5}`},
	{0, `{"amount":5}/*x*/`},
	{0, `{"Amount":5}`},
	{0, `{"amount":5,"AMOUNT":7}`},
	{0, "{\"amount\":5,\"amo\u017Funt\":7}"},
	{2, `{"email":"a@example.com","name":"\ud800"}`},
	{2, `{"email":"a@example.com","name":"\udc00\ud800"}`},
	{2, `{"email":"a@example.com","name":"\ud83d\ude00"}`},
	{2, "{\"email\":\"a@example.com\",\"name\":\"\xff\"}"},
	{2, "{\"email\":\"a@example.com\",\"name\":\"\xed\xa0\x80\"}"},
	{2, `{"email":"a@example.com","name":"a\u0000b"}`},
	{2, "{\"email\":\"a@example.com\",\"name\":\"a\x00b\"}"},
	{2, "{\"email\":\"a@example.com\",\"name\":\"a\tb\"}"},
	{2, `{"email":"a@example.com","na\ud800me":"x"}`},
	{2, `{"email":"a@example.com","name":"x","name\ud800":"y"}`},
	{2, "{\"email\":\"a@example.com\",\"name\":\"x\",\"name\xff\":\"y\"}"},
	{2, "{\"email\":\"a@example.com\",\"name\":\"x\u2028\"}"},
	{1, `{"lines":[{"sku":"A","quantity":1,"unitPrice":1}],"lines":[]}`},
	{1, `{"lines":[{"sku":"A","quantity":1,"unitPrice":1,"Quantity":9}]}`},
	{1, `{"lines":[{"sku":"A","quantity":1.0,"unitPrice":1}]}`},
	{1, `{"shippingAddress":{"line2":"x","LINE2":"y"}}`},
	{1, `{"shippingAddress":null,"customerId":"C"}`},
	{1, `{"lines":null}`},
	{1, `{"lines":{}}`},
	{1, `{"lines":[null]}`},
	{6, `{}`},
	{6, `{"":1}`},
	{6, `{"a":1}`},
}

// v1Reads decodes body with encoding/json v1, what a proxy or another tool in front of the API
// might use.
func v1Reads(kind int, body []byte) (any, error) {
	v := bodyTypes[kind]()
	err := stdjson.Unmarshal(body, v)
	return v, err
}

// TestReview2StrictAgreesWithV1: every body decode accepts, encoding/json v1 accepts too, and
// reads as the same value: no accepted body means one thing here and another to a reader in
// front (say, one that checks an amount).
func TestReview2StrictAgreesWithV1(t *testing.T) {
	for _, tc := range review2Bodies {
		v := bodyTypes[tc.kind]()
		err := decode([]byte(tc.body), v)
		w, werr := v1Reads(tc.kind, []byte(tc.body))
		if err != nil {
			var p *Problem
			if !errors.As(err, &p) || !ownDetail(p.Detail) {
				t.Errorf("decode %q: %v", tc.body, err)
			}
			continue
		}
		if werr != nil {
			t.Errorf("decode accepted %q, which v1 refuses (%v): %+v", tc.body, werr, v)
			continue
		}
		if !reflect.DeepEqual(v, w) {
			t.Errorf("decode read %q as %+v, v1 as %+v", tc.body, v, w)
		}
	}
}

// FuzzReview2StrictAgreesWithV1: what decode accepts, v1 reads the same; a refusal quotes no part
// of the body.
func FuzzReview2StrictAgreesWithV1(f *testing.F) {
	for _, tc := range review2Bodies {
		f.Add(tc.kind, []byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, kind int, body []byte) {
		kind = (kind%len(bodyTypes) + len(bodyTypes)) % len(bodyTypes)
		v := bodyTypes[kind]()
		err := decode(body, v)
		if err != nil {
			var p *Problem
			if !errors.As(err, &p) || !ownDetail(p.Detail) {
				t.Fatalf("decode %q: %v", body, err)
			}
			// No piece of the body of 4 or more bytes that is no field name appears in the detail.
			for _, w := range strings.FieldsFunc(string(body), func(r rune) bool {
				return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '@')
			}) {
				if len(w) >= 4 && strings.Contains(p.Detail, w) && !strings.Contains(p.Detail, `"`+w) && !strings.Contains(p.Detail, "."+w) && !fixedWord(w) {
					t.Fatalf("decode %q: problem %q holds %q of the body", body, p.Detail, w)
				}
			}
			return
		}
		w, werr := v1Reads(kind, body)
		if werr != nil {
			t.Fatalf("decode accepted %q, which v1 refuses (%v)", body, werr)
		}
		if !reflect.DeepEqual(v, w) {
			t.Fatalf("decode read %q as %+v, v1 as %+v", body, v, w)
		}
	})
}

// fixedWord says whether w is a word of decode's own fixed texts.
func fixedWord(w string) bool {
	return strings.Contains("the request needs a JSON body must be object hold one and nothing after it ends in middle of value "+
		"is not valid at byte has field twice this route does not take names match exactly wrong type for integer number array boolean string",
		w)
}

// TestReview2DeepNesting: a body nested as deep as the size limit allows is refused quickly, with
// a problem that quotes nothing, wherever the nesting is (a known field, an unknown one, the top).
func TestReview2DeepNesting(t *testing.T) {
	const depth = 32 << 10 // 64 KiB of brackets
	for name, body := range map[string]string{
		"known field":   `{"lines":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`,
		"unknown field": `{"x":` + strings.Repeat(`{"x":`, depth/5) + `1` + strings.Repeat("}", depth/5) + `}`,
		"open only":     `{"lines":` + strings.Repeat("[", 2*depth),
		"address":       `{"shippingAddress":` + strings.Repeat(`{"name":`, depth/8) + `"n"` + strings.Repeat("}", depth/8) + `}`,
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			err := decode([]byte(body), new(placeOrderBody))
			var p *Problem
			if !errors.As(err, &p) || !ownDetail(p.Detail) {
				t.Fatalf("deep body: %v", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("deep body took %v", d)
			}
		})
	}
}
