package domain_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/eventfold/eventfold/internal/domain"
)

// TestTableDecodeEventTypesAndPersonalFieldsAgree: the table, Decode, EventTypes and
// PersonalFields say the same about every event type.
func TestTableDecodeEventTypesAndPersonalFieldsAgree(t *testing.T) {
	types := domain.Types()
	if names := domain.EventTypes(); len(names) != len(types) {
		t.Fatalf("EventTypes() has %d names, the table %d entries", len(names), len(types))
	}
	for i, et := range types {
		t.Run(et.Name, func(t *testing.T) {
			if got := domain.EventTypes()[i]; got != et.Name {
				t.Errorf("EventTypes()[%d] = %q, want %q", i, got, et.Name)
			}
			if et.Schema < 1 {
				t.Errorf("schema version %d, want 1 or more", et.Schema)
			}
			for v := 1; v < et.Schema; v++ {
				if et.Upcasters[v] == nil {
					t.Errorf("no upcaster from schema %d", v)
				}
			}
			zero, err := domain.Decode(et.Name, []byte("{}"))
			if err != nil {
				t.Fatalf("Decode(%q, {}): %v", et.Name, err)
			}
			if zero.EventType() != et.Name {
				t.Errorf("Decode(%q) returns a %T, whose type is %q", et.Name, zero, zero.EventType())
			}
			data, err := json.Marshal(zero)
			if err != nil {
				t.Fatal(err)
			}
			for name, decode := range map[string]func([]byte) (domain.Event, error){
				"Decode":           func(d []byte) (domain.Event, error) { return domain.Decode(et.Name, d) },
				"EventType.Decode": et.Decode,
			} {
				if again, err := decode(data); err != nil || !reflect.DeepEqual(again, zero) {
					t.Errorf("%s of its zero value re-encoded (%s) = %#v, %v; want %#v", name, data, again, err, zero)
				}
			}
			var tagged []string
			rt := reflect.TypeOf(zero)
			for j := 0; j < rt.NumField(); j++ {
				if f := rt.Field(j); f.Tag.Get("personal") == "true" {
					name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
					tagged = append(tagged, name)
				}
			}
			if got := domain.PersonalFields(et.Name); !slices.Equal(got, tagged) || !slices.Equal(et.Personal, tagged) {
				t.Errorf("PersonalFields = %q, table %q; the personal:\"true\" tags say %q", got, et.Personal, tagged)
			}
		})
	}
	// What the tags say, spelled out, so that a lost tag fails here.
	for typ, want := range map[string][]string{
		domain.TypeUserRegistered:   {"email", "name"},
		domain.TypeUserEmailChanged: {"email"},
		domain.TypeOrderPlaced:      {"shippingAddress"},
		domain.TypeMoneyDeposited:   nil,
	} {
		if got := domain.PersonalFields(typ); !slices.Equal(got, want) {
			t.Errorf("PersonalFields(%q) = %q, want %q", typ, got, want)
		}
	}
	if _, err := domain.Decode("NoSuchEvent", []byte("{}")); err == nil {
		t.Error("Decode of an unknown type succeeded")
	}
}
