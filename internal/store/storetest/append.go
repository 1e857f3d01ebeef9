package storetest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/store"
)

func testAppendLoad(t *testing.T, open Opener) {
	clock := NewClock(time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC))
	s := open(V1, clock.Now)
	stream := StreamID("note")
	in := Note("hello")
	in.Subject = "user-1"
	res := mustAppend(t, s, stream, 0, in)
	if res.Version != 1 || res.StreamID != stream || len(res.Events) != 1 {
		t.Fatalf("Append = %+v, want version 1 of %s with one event", res, stream)
	}
	got := mustLoad(t, open(V1, clock.Now), stream, store.Span{})
	if len(got) != 1 {
		t.Fatalf("loaded %d events, want 1", len(got))
	}
	e := got[0]
	want := in
	want.StreamID, want.Version, want.SchemaVersion, want.RecordedAt = stream, 1, 1, clock.Now()
	if e.ID != want.ID || e.StreamID != want.StreamID || e.Version != 1 || e.Type != Noted || e.SchemaVersion != 1 ||
		!e.RecordedAt.Equal(want.RecordedAt) || e.CorrelationID != "corr-1" || e.CausationID != "cmd-1" ||
		e.Subject != "user-1" || string(e.Data) != string(in.Data) {
		t.Fatalf("loaded %+v, want %+v", e, want)
	}
	if !res.Events[0].RecordedAt.Equal(want.RecordedAt) || res.Events[0].Version != 1 {
		t.Fatalf("appended envelope %+v, want version 1 recorded at %v", res.Events[0], want.RecordedAt)
	}
}

func testAppendSeveral(t *testing.T, open Opener) {
	s := open(V1, nil)
	stream := StreamID("note")
	mustAppend(t, s, stream, 0, Note("a"))
	res := mustAppend(t, s, stream, 1, Note("b"), Note("c"), Note("d"))
	if res.Version != 4 {
		t.Fatalf("version after append = %d, want 4", res.Version)
	}
	wantVersions(t, mustLoad(t, s, stream, store.Span{}), 1, 4)
}

func testConflict(t *testing.T, open Opener) {
	s := open(V1, nil)
	stream := StreamID("note")
	mustAppend(t, s, stream, 0, Note("a"), Note("b"))
	_, err := Append(ctx(t), s, stream, 1, Note("late"))
	wantConflict(t, err, stream, 1, 2)
	_, err = Append(ctx(t), s, stream, 0, Note("x"), Note("y"))
	wantConflict(t, err, stream, 0, 2)
	wantVersions(t, mustLoad(t, s, stream, store.Span{}), 1, 2)
}

func testGap(t *testing.T, open Opener) {
	stream := StreamID("note")
	mustAppend(t, open(V1, nil), stream, 0, Note("1"), Note("2"), Note("3"))
	for _, tc := range []struct {
		name   string
		events int
		warm   bool
	}{{"one event, new instance", 1, false}, {"several events, new instance", 2, false}, {"one event, same instance", 1, true}, {"several events, same instance", 3, true}} {
		s := open(V1, nil)
		if tc.warm {
			mustLoad(t, s, stream, store.Span{})
		}
		events := make([]store.Event, tc.events)
		for i := range events {
			events[i] = Note("gap")
		}
		_, err := Append(ctx(t), s, stream, 7, events...)
		wantConflict(t, err, stream, 7, 3)
		_, err = Append(ctx(t), s, stream, 4, events...)
		wantConflict(t, err, stream, 4, 3)
	}
	wantVersions(t, mustLoad(t, open(V1, nil), stream, store.Span{}), 1, 3)
}

func testRetrySingle(t *testing.T, open Opener) {
	stream := StreamID("note")
	s := open(V1, nil)
	mustAppend(t, s, stream, 0, Note("first"))
	e := Note("retried")
	first := mustAppend(t, s, stream, 1, e)
	for _, retry := range []Store{s, open(V1, nil)} { // the same instance and a cold one
		again, err := Append(ctx(t), retry, stream, 1, e)
		if err != nil {
			t.Fatalf("retry: %v", err)
		}
		if again.Version != first.Version || again.Events[0].ID != e.ID || !again.Events[0].RecordedAt.Equal(first.Events[0].RecordedAt) {
			t.Fatalf("retry = %+v, want the first result %+v", again, first)
		}
	}
	wantVersions(t, mustLoad(t, s, stream, store.Span{}), 1, 2)
}

func testRetryMulti(t *testing.T, open Opener) {
	a, b := StreamID("note"), StreamID("count")
	s := open(V1, nil)
	mustAppend(t, s, a, 0, Note("first"))
	appends := []store.StreamAppend{
		{StreamID: a, Expected: 1, Events: []store.Event{Note("x"), Note("y")}},
		{StreamID: b, Expected: 0, Events: []store.Event{Note("z")}},
	}
	first, err := s.AppendStreams(ctx(t), appends...)
	if err != nil {
		t.Fatal(err)
	}
	for _, retry := range []Store{s, open(V1, nil)} {
		again, err := retry.AppendStreams(ctx(t), appends...)
		if err != nil {
			t.Fatalf("retry: %v", err)
		}
		if len(again) != 2 || again[0].Version != 3 || again[1].Version != 1 || again[0].Events[1].ID != first[0].Events[1].ID {
			t.Fatalf("retry = %+v, want %+v", again, first)
		}
	}
	wantVersions(t, mustLoad(t, s, a, store.Span{}), 1, 3)
	wantVersions(t, mustLoad(t, s, b, store.Span{}), 1, 1)
}

func testRetryElsewhere(t *testing.T, open Opener) {
	stream := StreamID("note")
	s := open(V1, nil)
	e := Note("once")
	mustAppend(t, s, stream, 0, e)
	mustAppend(t, s, stream, 1, Note("other"))
	// The same event at a version it does not hold is not a retry.
	_, err := Append(ctx(t), s, stream, 1, e)
	wantConflict(t, err, stream, 1, 2)
}

func testMultiStreamAtomic(t *testing.T, open Opener) {
	s := open(V1, nil)
	a, b, c := StreamID("note"), StreamID("note"), StreamID("count")
	mustAppend(t, s, a, 0, Note("a1"))
	mustAppend(t, s, b, 0, Note("b1"), Note("b2"))
	_, err := s.AppendStreams(ctx(t),
		store.StreamAppend{StreamID: a, Expected: 1, Events: []store.Event{Note("a2")}},
		store.StreamAppend{StreamID: b, Expected: 1, Events: []store.Event{Note("b-stale")}},
		store.StreamAppend{StreamID: c, Expected: 0, Events: []store.Event{Note("c1")}},
	)
	wantConflict(t, err, b, 1, 2)
	cold := open(V1, nil)
	wantVersions(t, mustLoad(t, cold, a, store.Span{}), 1, 1)
	wantVersions(t, mustLoad(t, cold, b, store.Span{}), 1, 2)
	if got := mustLoad(t, cold, c, store.Span{}); len(got) != 0 {
		t.Fatalf("stream %s has %d events after a failed atomic append, want 0", c, len(got))
	}
	// A gap in one stream fails the whole append too.
	_, err = cold.AppendStreams(ctx(t),
		store.StreamAppend{StreamID: a, Expected: 1, Events: []store.Event{Note("a2")}},
		store.StreamAppend{StreamID: c, Expected: 5, Events: []store.Event{Note("c-gap")}},
	)
	wantConflict(t, err, c, 5, 0)
	wantVersions(t, mustLoad(t, open(V1, nil), a, store.Span{}), 1, 1)
}

func testMultiStream(t *testing.T, open Opener) {
	s := open(V1, nil)
	a, b := StreamID("note"), StreamID("count")
	mustAppend(t, s, a, 0, Note("a1"))
	res, err := open(V1, nil).AppendStreams(ctx(t),
		store.StreamAppend{StreamID: a, Expected: 1, Events: []store.Event{Note("a2")}},
		store.StreamAppend{StreamID: b, Expected: 0, Events: []store.Event{Note("b1"), Note("b2")}},
	)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].StreamID != a || res[0].Version != 2 || res[1].StreamID != b || res[1].Version != 2 {
		t.Fatalf("AppendStreams = %+v", res)
	}
	wantVersions(t, mustLoad(t, s, a, store.Span{}), 1, 2)
	wantVersions(t, mustLoad(t, s, b, store.Span{}), 1, 2)
}

func testBadInput(t *testing.T, open Opener) {
	s := open(V1, nil)
	stream := StreamID("note")
	mustAppend(t, s, stream, 0, Note("keep"))
	many := make([]store.Event, store.MaxTransactItems+1)
	for i := range many {
		many[i] = Note("n")
	}
	big := Note("")
	big.Data = json.RawMessage(`"` + strings.Repeat("x", store.MaxItemSize) + `"`)
	var mids []store.Event // 14 events of 300 KB
	for range 14 {
		mid := Note("")
		mid.Data = json.RawMessage(`"` + strings.Repeat("x", 300*1024) + `"`)
		mids = append(mids, mid)
	}
	with := func(f func(*store.Event)) store.Event { e := Note("bad"); f(&e); return e }
	dup := Note("dup")
	tests := []struct {
		name    string
		appends []store.StreamAppend
		want    error
	}{
		{"empty stream ID", []store.StreamAppend{{StreamID: "", Events: []store.Event{Note("a")}}}, store.ErrInvalidStreamID},
		{"stream ID without category", []store.StreamAppend{{StreamID: "nocategory", Events: []store.Event{Note("a")}}}, store.ErrInvalidStreamID},
		{"stream ID with space", []store.StreamAppend{{StreamID: "note-a b", Events: []store.Event{Note("a")}}}, store.ErrInvalidStreamID},
		{"stream ID with newline", []store.StreamAppend{{StreamID: "note-a\n", Events: []store.Event{Note("a")}}}, store.ErrInvalidStreamID},
		{"stream ID too long", []store.StreamAppend{{StreamID: "note-" + strings.Repeat("a", store.MaxStreamIDLength), Events: []store.Event{Note("a")}}}, store.ErrInvalidStreamID},
		{"no appends", nil, store.ErrNoEvents},
		{"no events", []store.StreamAppend{{StreamID: stream, Expected: 1}}, store.ErrNoEvents},
		{"negative expected version", []store.StreamAppend{{StreamID: stream, Expected: -1, Events: []store.Event{Note("a")}}}, store.ErrInvalidEvent},
		{"missing event ID", []store.StreamAppend{{StreamID: stream, Expected: 1, Events: []store.Event{with(func(e *store.Event) { e.ID = "" })}}}, store.ErrInvalidEvent},
		{"event ID not a ULID", []store.StreamAppend{{StreamID: stream, Expected: 1, Events: []store.Event{with(func(e *store.Event) { e.ID = "not-a-ulid" })}}}, store.ErrInvalidEvent},
		{"payload not JSON", []store.StreamAppend{{StreamID: stream, Expected: 1, Events: []store.Event{with(func(e *store.Event) { e.Data = []byte("{") })}}}, store.ErrInvalidEvent},
		{"empty payload", []store.StreamAppend{{StreamID: stream, Expected: 1, Events: []store.Event{with(func(e *store.Event) { e.Data = nil })}}}, store.ErrInvalidEvent},
		{"unknown type", []store.StreamAppend{{StreamID: stream, Expected: 1, Events: []store.Event{with(func(e *store.Event) { e.Type = "Unheard" })}}}, store.ErrUnknownEventType},
		{"old schema version", []store.StreamAppend{{StreamID: stream, Expected: 1, Events: []store.Event{with(func(e *store.Event) { e.SchemaVersion = 7 })}}}, store.ErrInvalidEvent},
		{"event over 400 KB", []store.StreamAppend{{StreamID: stream, Expected: 1, Events: []store.Event{big}}}, store.ErrTooLarge},
		{"append over 4 MB", []store.StreamAppend{{StreamID: stream, Expected: 1, Events: mids}}, store.ErrTooLarge},
		{"more than 100 items", []store.StreamAppend{{StreamID: stream, Expected: 1, Events: many}}, store.ErrTooManyEvents},
		{"stream twice", []store.StreamAppend{{StreamID: stream, Expected: 1, Events: []store.Event{Note("a")}}, {StreamID: stream, Expected: 2, Events: []store.Event{Note("b")}}}, store.ErrInvalidEvent},
		{"event ID twice", []store.StreamAppend{{StreamID: stream, Expected: 1, Events: []store.Event{dup, dup}}}, store.ErrInvalidEvent},
		{"bad part of a multi-stream append", []store.StreamAppend{{StreamID: StreamID("count"), Events: []store.Event{Note("ok")}}, {StreamID: stream, Expected: 1, Events: []store.Event{with(func(e *store.Event) { e.Type = "Unheard" })}}}, store.ErrUnknownEventType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.AppendStreams(ctx(t), tt.appends...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			for _, a := range tt.appends {
				if store.ValidStreamID(a.StreamID) != nil {
					continue
				}
				got := mustLoad(t, s, a.StreamID, store.Span{})
				if a.StreamID == stream && len(got) == 1 {
					continue
				}
				if a.StreamID != stream && len(got) == 0 {
					continue
				}
				t.Fatalf("stream %s has %d events after rejected input", a.StreamID, len(got))
			}
		})
	}
	if _, err := s.Load(ctx(t), "bad id", store.Span{}); !errors.Is(err, store.ErrInvalidStreamID) {
		t.Fatalf("Load with a bad stream ID: %v, want ErrInvalidStreamID", err)
	}
	// Error text never carries the stream ID a caller sent or the payload.
	_, err := Append(ctx(t), s, "secret@example.com", 0, Note("a"))
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("error %q must not echo the bad stream ID", err)
	}
}
