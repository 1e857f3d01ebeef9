package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/store"
)

func testSpans(t *testing.T, open Opener) {
	s := open(V1, nil)
	stream := StreamID("note")
	for v := int64(0); v < 10; v++ {
		mustAppend(t, s, stream, v, Note(fmt.Sprint(v+1)))
	}
	cold := open(V1, nil)
	wantVersions(t, mustLoad(t, cold, stream, store.Span{From: 4}), 4, 10)
	wantVersions(t, mustLoad(t, cold, stream, store.Span{To: 3}), 1, 3)
	wantVersions(t, mustLoad(t, cold, stream, store.Span{From: 5, To: 6}), 5, 6)
	wantVersions(t, mustLoad(t, cold, stream, store.Span{From: -3, To: 20}), 1, 10)
	if got := mustLoad(t, cold, stream, store.Span{From: 11}); len(got) != 0 {
		t.Fatalf("load past the head returned %d events", len(got))
	}
	if got := mustLoad(t, cold, StreamID("none"), store.Span{}); len(got) != 0 {
		t.Fatalf("load of an empty stream returned %d events", len(got))
	}
}

func testAsOf(t *testing.T, open Opener) {
	clock := NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	s := open(V1, clock.Now)
	stream := StreamID("note")
	var times []time.Time
	for v := int64(0); v < 5; v++ {
		times = append(times, clock.Now())
		mustAppend(t, s, stream, v, Note(fmt.Sprint(v)))
		clock.Advance(time.Hour)
	}
	wantVersions(t, mustLoad(t, s, stream, store.Span{AsOf: times[2]}), 1, 3)
	wantVersions(t, mustLoad(t, s, stream, store.Span{AsOf: times[2].Add(30 * time.Minute)}), 1, 3)
	if got := mustLoad(t, s, stream, store.Span{AsOf: times[0].Add(-time.Nanosecond)}); len(got) != 0 {
		t.Fatalf("as of before the first event: %d events", len(got))
	}
	wantVersions(t, mustLoad(t, s, stream, store.Span{AsOf: times[4], To: 2}), 1, 2)
}

func testUpcast(t *testing.T, open Opener) {
	stream := StreamID("note")
	mustAppend(t, open(V1, nil), stream, 0, Note("old text"))
	got := mustLoad(t, open(V2, nil), stream, store.Span{})
	if got[0].SchemaVersion != 2 || string(got[0].Data) != `{"note":"old text"}` {
		t.Fatalf("upcast event: schema %d data %s", got[0].SchemaVersion, got[0].Data)
	}
	// Writing with V2 requires schema 2 and reading it with V1 is refused, not misread.
	s2 := open(V2, nil)
	n := Note("")
	n.Data = json.RawMessage(`{"note":"new"}`)
	mustAppend(t, s2, stream, 1, n)
	if _, err := open(V1, nil).Load(ctx(t), stream, store.Span{}); !errors.Is(err, store.ErrUpcast) {
		t.Fatalf("reading schema 2 with a program that knows schema 1: %v, want ErrUpcast", err)
	}
	// A failing upcaster is reported, with the stream and version, not a panic.
	bad := Note("")
	bad.Data = json.RawMessage(`[1]`)
	other := StreamID("note")
	mustAppend(t, open(V1, nil), other, 0, bad)
	if _, err := open(V2, nil).Load(ctx(t), other, store.Span{}); !errors.Is(err, store.ErrUpcast) || !strings.Contains(err.Error(), other) {
		t.Fatalf("failing upcaster: %v, want ErrUpcast naming the stream", err)
	}
}

func testUnknownOnLoad(t *testing.T, open Opener) {
	stream := StreamID("note")
	mustAppend(t, open(V1, nil), stream, 0, Note("x"))
	only := store.MustRegistry(store.EventType{Name: Counted, Schema: 1})
	if _, err := open(only, nil).Load(ctx(t), stream, store.Span{}); !errors.Is(err, store.ErrUnknownEventType) {
		t.Fatalf("got %v, want ErrUnknownEventType", err)
	}
}

func testLargeStream(t *testing.T, open Opener) {
	s := open(V1, nil)
	stream := StreamID("note")
	// 30 events of ~100 KB: 3 MB, past DynamoDB's 1 MB query page several times.
	payload := json.RawMessage(`{"text":"` + strings.Repeat("p", 100*1024) + `"}`)
	var events []store.Event
	for i := 0; i < 30; i++ {
		e := Note("")
		e.Data = payload
		events = append(events, e)
	}
	for i := 0; i < 30; i += 10 {
		mustAppend(t, s, stream, int64(i), events[i:i+10]...)
	}
	got := mustLoad(t, open(V1, nil), stream, store.Span{})
	wantVersions(t, got, 1, 30)
	for i, e := range got {
		if e.ID != events[i].ID || len(e.Data) != len(payload) {
			t.Fatalf("event %d: id %s, %d bytes; want id %s, %d bytes", i+1, e.ID, len(e.Data), events[i].ID, len(payload))
		}
	}
}
