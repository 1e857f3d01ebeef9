package storetest

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/eventfold/eventfold/internal/store"
)

func testSnapshots(t *testing.T, open Opener, features Features) {
	s := open(V1, nil)
	stream := StreamID("note")
	if _, err := s.LoadSnapshot(ctx(t), stream, 1); !errors.Is(err, store.ErrNoSnapshot) {
		t.Fatalf("no snapshot yet: %v, want ErrNoSnapshot", err)
	}
	evs := []store.Event{Note("1"), Note("2"), Note("3"), Note("not appended")}
	if features.SubjectNeedsEvent {
		for i := range evs {
			evs[i].Subject = "user-9"
		}
	}
	mustAppend(t, s, stream, 0, evs[:3]...)
	save := func(s Store, v int64, schema int, data string) error {
		return s.SaveSnapshot(ctx(t), store.Snapshot{StreamID: stream, Version: v, EventID: evs[v-1].ID, SchemaVersion: schema, Data: json.RawMessage(data), Subject: "user-9"})
	}
	if err := save(open(V1, nil), 4, 1, `{}`); !errors.Is(err, store.ErrInvalidEvent) {
		t.Fatalf("snapshot ahead of the stream: %v, want ErrInvalidEvent", err)
	}
	if err := s.SaveSnapshot(ctx(t), store.Snapshot{StreamID: stream, Version: 2, SchemaVersion: 1, Data: json.RawMessage(`{}`)}); !errors.Is(err, store.ErrInvalidEvent) {
		t.Fatalf("snapshot without the ID of its event: %v, want ErrInvalidEvent", err)
	}
	if err := save(s, 2, 1, `{"n":2}`); err != nil {
		t.Fatal(err)
	}
	if err := save(s, 1, 1, `{"n":1}`); err != nil { // older: ignored
		t.Fatal(err)
	}
	snap, err := open(V1, nil).LoadSnapshot(ctx(t), stream, 1)
	if err != nil || snap.Version != 2 || snap.EventID != evs[1].ID || string(snap.Data) != `{"n":2}` || snap.Subject != "user-9" || snap.TakenAt.IsZero() {
		t.Fatalf("LoadSnapshot = %+v, %v; want version 2", snap, err)
	}
	if _, err := s.LoadSnapshot(ctx(t), stream, 2); !errors.Is(err, store.ErrNoSnapshot) {
		t.Fatalf("stale snapshot schema: %v, want ErrNoSnapshot", err)
	}
	// A new snapshot schema replaces the old one even at a lower version.
	if err := save(s, 1, 2, `{"m":1}`); err != nil {
		t.Fatal(err)
	}
	if snap, err := s.LoadSnapshot(ctx(t), stream, 2); err != nil || snap.Version != 1 {
		t.Fatalf("snapshot of schema 2 = %+v, %v", snap, err)
	}
	if err := save(s, 3, 1, `not json`); !errors.Is(err, store.ErrInvalidEvent) {
		t.Fatalf("snapshot with a bad payload: %v", err)
	}
}

func testLoadHistory(t *testing.T, open Opener) {
	s := open(V1, nil)
	stream := StreamID("note")
	evs := []store.Event{Note("1"), Note("2"), Note("3"), Note("4")}
	mustAppend(t, s, stream, 0, evs...)
	h, err := store.LoadHistory(ctx(t), s, stream, 1)
	if err != nil || h.Snapshot != nil || h.Version() != 4 {
		t.Fatalf("history without snapshot = %+v, %v", h, err)
	}
	if err := s.SaveSnapshot(ctx(t), store.Snapshot{StreamID: stream, Version: 3, EventID: evs[2].ID, SchemaVersion: 1, Data: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	h, err = store.LoadHistory(ctx(t), open(V1, nil), stream, 1)
	if err != nil || h.Snapshot == nil || h.Snapshot.Version != 3 || h.Version() != 4 {
		t.Fatalf("history = %+v, %v; want snapshot 3 and event 4", h, err)
	}
	wantVersions(t, h.Events, 4, 4)

	// A snapshot whose last event is not the stream's event at that version is not of this
	// stream's history (the events table was restored to an earlier point and the stream grew
	// again): it is ignored, and the whole stream loads.
	other := StreamID("note")
	mustAppend(t, s, other, 0, Note("1"), Note("2"), Note("3"))
	if err := s.SaveSnapshot(ctx(t), store.Snapshot{StreamID: other, Version: 2, EventID: evs[1].ID, SchemaVersion: 1, Data: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	h, err = store.LoadHistory(ctx(t), open(V1, nil), other, 1)
	if err != nil || h.Snapshot != nil || h.Version() != 3 {
		t.Fatalf("history with a snapshot of another history = %+v, %v; want no snapshot and all 3 events", h, err)
	}
	wantVersions(t, h.Events, 1, 3)
}
