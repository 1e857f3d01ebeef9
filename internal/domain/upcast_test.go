package domain_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/eventfold/eventfold/internal/domain"
)

// orderPlacedUpcaster returns the table's upcaster of OrderPlaced from schema 1, failing t when
// the table has none.
func orderPlacedUpcaster(tb testing.TB) domain.Upcaster {
	tb.Helper()
	for _, et := range domain.Types() {
		if et.Name == domain.TypeOrderPlaced {
			if et.Schema != 2 || et.Upcasters[1] == nil {
				tb.Fatalf("OrderPlaced is at schema %d with upcasters %v, want 2 with one from 1", et.Schema, et.Upcasters)
			}
			return et.Upcasters[1]
		}
	}
	tb.Fatal("OrderPlaced is not in the table")
	return nil
}

// v1OrderPlaced is an OrderPlaced payload as schema 1 stored it: no paymentAccountId, and the
// shipping address sealed (an opaque string, as crypto stores it).
const v1OrderPlaced = `{"orderId":"order-1","customerId":"01J9ZQ4T8K5W3X2Y1V0B6N7M8C","currency":"EUR",` +
	`"lines":[{"sku":"SKU-1","quantity":2,"unitPrice":1250},{"sku":"SKU-2","quantity":1,"unitPrice":999}],` +
	`"total":3499,"shippingAddress":"ef1.AbC-_dEf0123456789"}`

func TestOrderPlacedV1ToV2(t *testing.T) {
	up := orderPlacedUpcaster(t)
	tests := []struct {
		name string
		in   string
		want map[string]string // every member of the result, as compact JSON
	}{
		{
			name: "a stored order gains an empty payment account, the rest as it was",
			in:   v1OrderPlaced,
			want: map[string]string{
				"orderId": `"order-1"`, "customerId": `"01J9ZQ4T8K5W3X2Y1V0B6N7M8C"`, "currency": `"EUR"`,
				"lines": `[{"sku":"SKU-1","quantity":2,"unitPrice":1250},{"sku":"SKU-2","quantity":1,"unitPrice":999}]`,
				"total": `3499`, "shippingAddress": `"ef1.AbC-_dEf0123456789"`, "paymentAccountId": `""`,
			},
		},
		{
			name: "an unsealed address object, and a shredded (null) one, are kept",
			in:   `{"orderId":"o","shippingAddress":{"name":"<Bo> & Co","line1":"Main\u00a0St"},"x":null}`,
			want: map[string]string{"orderId": `"o"`, "shippingAddress": `{"name":"<Bo> & Co","line1":"Main\u00a0St"}`, "x": `null`, "paymentAccountId": `""`},
		},
		{
			name: "fields this program does not know are kept",
			in:   `{"orderId":"o","future":{"a":[1,2.50,"3"]},"total":9223372036854775807}`,
			want: map[string]string{"orderId": `"o"`, "future": `{"a":[1,2.50,"3"]}`, "total": `9223372036854775807`, "paymentAccountId": `""`},
		},
		{
			name: "a paymentAccountId in a schema 1 payload meant nothing: it is emptied",
			in:   `{"orderId":"o","paymentAccountId":"acc-smuggled"}`,
			want: map[string]string{"orderId": `"o"`, "paymentAccountId": `""`},
		},
		{name: "an empty object", in: `{}`, want: map[string]string{"paymentAccountId": `""`}},
		{name: "whitespace around", in: " \n{ \"orderId\" : \"o\" }\t", want: map[string]string{"orderId": `"o"`, "paymentAccountId": `""`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := up(json.RawMessage(tt.in))
			if err != nil {
				t.Fatalf("upcast: %v", err)
			}
			var got map[string]json.RawMessage
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("result %s is not a JSON object: %v", out, err)
			}
			gotS := map[string]string{}
			for k, v := range got {
				gotS[k] = string(v)
			}
			if !reflect.DeepEqual(gotS, tt.want) {
				t.Fatalf("upcast %s\n\t= %s\nwant members %v", tt.in, out, tt.want)
			}
		})
	}
	// The result decodes as the current OrderPlaced.
	out, err := up(json.RawMessage(`{"orderId":"order-1","customerId":"c","currency":"EUR","lines":[{"sku":"A","quantity":1,"unitPrice":5}],"total":5,"shippingAddress":{"name":"Bo"}}`))
	if err != nil {
		t.Fatal(err)
	}
	e, err := domain.Decode(domain.TypeOrderPlaced, out)
	if err != nil {
		t.Fatal(err)
	}
	want := domain.OrderPlaced{OrderID: "order-1", CustomerID: "c", Currency: "EUR", Lines: []domain.OrderLine{{SKU: "A", Quantity: 1, UnitPrice: 5}}, Total: 5, ShippingAddress: domain.Address{Name: "Bo"}}
	if !reflect.DeepEqual(e, want) {
		t.Fatalf("decoded %#v, want %#v", e, want)
	}
	if o := (domain.Order{}).Evolve(e); o.PaymentAccountID != "" || o.Status != domain.OrderStatusPlaced {
		t.Fatalf("order state %+v, want placed with no payment account", o)
	}
}

func TestOrderPlacedV1ToV2RefusesWhatIsNoObject(t *testing.T) {
	up := orderPlacedUpcaster(t)
	for _, in := range []string{``, `null`, `[]`, `"x"`, `1`, `{`, `{"a":1}x`, `{"a":}`, "{\"a\":\"\xff\"", `true`} {
		out, err := up(json.RawMessage(in))
		if err == nil {
			t.Errorf("upcast of %q = %s, want an error", in, out)
		}
	}
}

// FuzzOrderPlacedV1ToV2: whatever the stored bytes, the upcaster returns an error or a JSON object
// that has every member of the input, unchanged in value, and an empty paymentAccountId; it
// never panics.
func FuzzOrderPlacedV1ToV2(f *testing.F) {
	up := orderPlacedUpcaster(f)
	for _, s := range []string{v1OrderPlaced, `{}`, `null`, `[]`, `{"paymentAccountId":1}`, `{"a":{"b":[null,true,1e9]}}`,
		`{"a":"\u2028<>&"}`, `{"a":1,"a":2}`, "{\"a\":\"\xff\"}", `{"shippingAddress":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := up(json.RawMessage(data))
		if err != nil {
			if out != nil {
				t.Fatalf("result %q alongside error %v", out, err)
			}
			return
		}
		var in, got map[string]json.RawMessage
		if err := json.Unmarshal(data, &in); err != nil || in == nil {
			t.Fatalf("upcast accepted %q, which is no JSON object (%v)", data, err)
		}
		if err := json.Unmarshal(out, &got); err != nil || got == nil {
			t.Fatalf("result %q is not a JSON object: %v", out, err)
		}
		if string(got["paymentAccountId"]) != `""` {
			t.Fatalf("paymentAccountId = %s, want \"\"", got["paymentAccountId"])
		}
		delete(got, "paymentAccountId")
		delete(in, "paymentAccountId")
		if len(got) != len(in) {
			t.Fatalf("members: %d in, %d out", len(in), len(got))
		}
		for k, v := range in {
			if !sameJSON(t, v, got[k]) {
				t.Fatalf("member %q: %s became %s", k, v, got[k])
			}
		}
	})
}

// sameJSON reports whether a and b are the same JSON value, token for token (numbers as written).
func sameJSON(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var ca, cb bytes.Buffer
	if err := json.Compact(&ca, a); err != nil {
		t.Fatalf("compact %q: %v", a, err)
	}
	if err := json.Compact(&cb, b); err != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}
