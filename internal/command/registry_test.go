package command_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/store"
)

func TestRegistryIsTheDomainTable(t *testing.T) {
	reg, err := command.Registry()
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory(reg, nil)
	ids := store.NewIDs(nil)
	for i, typ := range domain.EventTypes() {
		stream := "check-" + typ
		res, err := st.Append(context.Background(), stream, 0, store.Event{ID: ids.New(), Type: typ, Data: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatalf("append %s: %v", typ, err)
		}
		if want := domain.Types()[i].Schema; res.Events[0].SchemaVersion != want {
			t.Errorf("%s stored at schema %d, the table says %d", typ, res.Events[0].SchemaVersion, want)
		}
	}
}

// TestNewSchemaVersionIsOneTableEntry: a new schema version of an event type, with its upcaster,
// is one entry of the domain's table (here a fake OrderPlaced version 3 that renames "total" to
// "amount", replacing the real entry, version 2). Events stored at version 2 load upcast to
// version 3; new ones are stored at version 3.
func TestNewSchemaVersionIsOneTableEntry(t *testing.T) {
	ctx := context.Background()
	v2, err := command.Registry()
	if err != nil {
		t.Fatal(err)
	}
	types := domain.Types()
	for i, et := range types {
		if et.Name == domain.TypeOrderPlaced {
			types[i] = domain.TypeOf[domain.OrderPlaced](3, map[int]domain.Upcaster{1: et.Upcasters[1], 2: func(d json.RawMessage) (json.RawMessage, error) {
				var m map[string]any
				if err := json.Unmarshal(d, &m); err != nil {
					return nil, err
				}
				m["amount"] = m["total"]
				delete(m, "total")
				return json.Marshal(m)
			}})
		}
	}
	v3, err := command.RegistryOf(types...)
	if err != nil {
		t.Fatal(err)
	}
	ids := store.NewIDs(nil)
	old := store.NewMemory(v2, nil)
	const stream = "order-1"
	if _, err := old.Append(ctx, stream, 0, store.Event{ID: ids.New(), Type: domain.TypeOrderPlaced, Data: json.RawMessage(`{"orderId":"order-1","total":250}`)}); err != nil {
		t.Fatal(err)
	}
	next := old.WithRegistry(v3, nil)
	got, err := next.Load(ctx, stream, store.Span{})
	if err != nil || len(got) != 1 {
		t.Fatalf("load with version 3: %d events, %v", len(got), err)
	}
	var data map[string]any
	if err := json.Unmarshal(got[0].Data, &data); err != nil || got[0].SchemaVersion != 3 || data["amount"] != 250.0 || data["total"] != nil {
		t.Fatalf("loaded %s at schema %d (%v), want it upcast to 3 with amount 250", got[0].Data, got[0].SchemaVersion, err)
	}
	res, err := next.Append(ctx, stream, 1, store.Event{ID: ids.New(), Type: domain.TypeOrderConfirmed, Data: json.RawMessage(`{"orderId":"order-1"}`)})
	if err != nil || res.Events[0].SchemaVersion != 1 {
		t.Fatalf("append of another type: %+v, %v", res, err)
	}
	placed, err := next.Append(ctx, "order-2", 0, store.Event{ID: ids.New(), Type: domain.TypeOrderPlaced, Data: json.RawMessage(`{"orderId":"order-2","amount":1}`)})
	if err != nil || placed.Events[0].SchemaVersion != 3 {
		t.Fatalf("new OrderPlaced: %+v, %v; want it stored at schema 3", placed, err)
	}
	// A version 2 without its upcaster is refused when the registry is built.
	types[len(types)-1] = domain.TypeOf[domain.OrderCancelled](2, nil)
	if _, err := command.RegistryOf(types...); err == nil {
		t.Fatal("RegistryOf accepted schema 2 with no upcaster from 1")
	}
}
