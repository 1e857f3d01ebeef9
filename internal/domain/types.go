package domain

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// table is every event type of the domain, one entry each. To add an event type, add its entry;
// to change a type's payload, raise its schema version and give the upcaster from the old one,
// as OrderPlaced did when orders came to name their paying account (schema 2); a third version
// would add one more:
//
//	TypeOf[OrderPlaced](3, map[int]Upcaster{1: orderPlacedV1toV2, 2: orderPlacedV2toV3}),
var table = newTable(
	TypeOf[UserRegistered](1, nil),
	TypeOf[UserEmailChanged](1, nil),
	TypeOf[UserDeactivated](1, nil),
	TypeOf[SubjectErased](1, nil),
	TypeOf[AccountOpened](1, nil),
	TypeOf[MoneyDeposited](1, nil),
	TypeOf[MoneyWithdrawn](1, nil),
	TypeOf[AccountCharged](1, nil),
	TypeOf[AccountRefunded](1, nil),
	TypeOf[StockAdded](1, nil),
	TypeOf[StockReserved](1, nil),
	TypeOf[StockReleased](1, nil),
	TypeOf[StockCommitted](1, nil),
	TypeOf[OrderPlaced](2, map[int]Upcaster{1: orderPlacedV1toV2}),
	TypeOf[OrderConfirmed](1, nil),
	TypeOf[OrderCancelled](1, nil),
)

// Upcaster turns an event payload of one schema version into one of the next.
type Upcaster func(data json.RawMessage) (json.RawMessage, error)

// EventType is one entry of the table of event types.
type EventType struct {
	// Name is the type's constant (TypeUserRegistered, ...), as its Go type's EventType returns it.
	Name string
	// Schema is the current schema version of its payload, 1 or more.
	Schema int
	// Upcasters[v] turns a stored payload of schema version v into one of v+1, for every v from 1
	// to Schema-1; the store applies them on load.
	Upcasters map[int]Upcaster
	// Personal are the JSON names of the payload's top-level fields that hold personal data: those
	// of the Go type tagged personal:"true".
	Personal []string
	decode   func(data []byte) (Event, error)
}

// Decode returns the event whose JSON payload, of the current schema version, is data.
func (t EventType) Decode(data []byte) (Event, error) { return t.decode(data) }

// TypeOf returns the table entry of the Go event type E at the given schema version, with the
// upcasters from the older ones. Its name is E's EventType constant; its personal fields are read
// from E's struct tags.
func TypeOf[E Event](schema int, upcasters map[int]Upcaster) EventType {
	var zero E
	rt := reflect.TypeOf(zero)
	var personal []string
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		if f.Tag.Get("personal") != "true" {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		personal = append(personal, name)
	}
	name := zero.EventType()
	return EventType{Name: name, Schema: schema, Upcasters: upcasters, Personal: personal,
		decode: func(data []byte) (Event, error) { return decode[E](name, data) }}
}

type eventTable struct {
	list   []EventType
	byName map[string]EventType
}

// newTable indexes the entries; it panics on a name given twice, a program error.
func newTable(types ...EventType) eventTable {
	t := eventTable{list: types, byName: make(map[string]EventType, len(types))}
	for _, et := range types {
		if _, dup := t.byName[et.Name]; dup {
			panic(fmt.Sprintf("domain: event type %q is in the table twice", et.Name))
		}
		t.byName[et.Name] = et
	}
	return t
}

// Types returns the table of event types, in a stable order. The command layer builds the event
// store's registry from it.
func Types() []EventType {
	out := make([]EventType, len(table.list))
	for i, t := range table.list {
		t.Personal = slices.Clone(t.Personal)
		out[i] = t
	}
	return out
}

// EventTypes lists the name of every event type of the domain, in the table's order.
func EventTypes() []string {
	names := make([]string, len(table.list))
	for i, t := range table.list {
		names[i] = t.Name
	}
	return names
}

// Decode returns the event of the given type whose JSON payload is data. Unknown fields are
// ignored, so that a payload with more fields than this program knows still decodes.
func Decode(eventType string, data []byte) (Event, error) {
	t, ok := table.byName[eventType]
	if !ok {
		return nil, fmt.Errorf("unknown event type %q", eventType)
	}
	return t.decode(data)
}

// PersonalFields returns the JSON names of an event type's top-level fields that hold personal
// data (struct tag personal:"true"), none for a type without any or unknown.
func PersonalFields(eventType string) []string {
	return slices.Clone(table.byName[eventType].Personal)
}

func decode[E Event](eventType string, data []byte) (Event, error) {
	var e E
	if err := json.Unmarshal(data, &e); err != nil {
		// encoding/json errors name Go types and offsets; at most a number or one character of input.
		return nil, fmt.Errorf("decode %s: %w", eventType, err)
	}
	return e, nil
}
