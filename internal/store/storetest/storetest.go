// Package storetest is the contract every event store implementation must pass: the DynamoDB
// store against DynamoDB Local, and the in-memory store used by unit tests. Run it from an
// implementation's tests with Run.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/store"
)

// Store is what the contract exercises: a [store.EventStore] under test, and where its inserts go.
type Store interface {
	store.EventStore
	// InsertTable names a table that appends' Inserts may create items in: for the DynamoDB
	// store, a table of the test's with a string partition key "pk".
	InsertTable() string
}

// Opener opens a store over one set of backing data, empty at the first call of a test. Each
// call returns a fresh instance, as another process would have, reading and writing with the
// given registry and clock.
type Opener func(reg *store.Registry, clock func() time.Time) Store

// Factory returns an Opener over new, empty backing data for the test t.
type Factory func(t *testing.T) Opener

// Event types of the contract. Noted has schema 1 in V1 and 2 in V2, where "text" became "note".
const (
	Noted   = "Noted"
	Counted = "Counted"
)

// V1 is the registry the contract writes with.
var V1 = store.MustRegistry(store.EventType{Name: Noted, Schema: 1}, store.EventType{Name: Counted, Schema: 1})

// V2 upgrades Noted to schema 2.
var V2 = store.MustRegistry(
	store.EventType{Name: Noted, Schema: 2, Upcasters: map[int]store.Upcaster{1: func(d json.RawMessage) (json.RawMessage, error) {
		var v1 struct{ Text string }
		if err := json.Unmarshal(d, &v1); err != nil {
			return nil, err
		}
		return json.Marshal(map[string]string{"note": v1.Text})
	}}},
	store.EventType{Name: Counted, Schema: 1},
)

// Clock is a settable clock, safe for concurrent use.
type Clock struct{ ns atomic.Int64 }

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock {
	c := &Clock{}
	c.ns.Store(t.UnixNano())
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

var ids = store.NewIDs(nil)

// Note returns a new Noted event.
func Note(text string) store.Event {
	data, _ := json.Marshal(map[string]string{"text": text})
	return store.Event{ID: ids.New(), Type: Noted, Data: data, CorrelationID: "corr-1", CausationID: "cmd-1"}
}

var streamSeq atomic.Int64

// StreamID returns a stream ID unique to this process.
func StreamID(category string) string {
	return fmt.Sprintf("%s-%d-%d", category, time.Now().UnixNano(), streamSeq.Add(1))
}

// Append appends events to one stream: [store.EventStore.AppendStreams] with one
// [store.StreamAppend], returning its one result.
func Append(ctx context.Context, s store.EventStore, streamID string, expected int64, events ...store.Event) (store.Appended, error) {
	res, err := s.AppendStreams(ctx, store.StreamAppend{StreamID: streamID, Expected: expected, Events: events})
	if err != nil {
		return store.Appended{}, err
	}
	return res[0], nil
}

// Features says what an implementation under test can and cannot do, as watermill's
// pubsub tests do; the zero Features is a plain store such as [store.DynamoDB] or [store.Memory].
type Features struct {
	// SubjectNeedsEvent is set for a store that refuses a snapshot of a data subject none of whose
	// events it has stored: the sealing store (crypto.Store) seals a snapshot under the subject's
	// key, which only their first event creates. The Snapshots case then appends its events with
	// the snapshot's subject.
	SubjectNeedsEvent bool
}

// Run runs the contract against stores made by f, for a store of the zero [Features].
func Run(t *testing.T, f Factory) { RunWith(t, f, Features{}) }

// RunWith runs the contract against stores made by f, which have the given features.
func RunWith(t *testing.T, f Factory, features Features) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"AppendFillsEnvelopeAndLoadReturnsIt", testAppendLoad},
		{"AppendSeveralEventsIsContiguous", testAppendSeveral},
		{"StaleExpectedVersionConflicts", testConflict},
		{"ExpectedVersionAheadConflictsAndWritesNothing", testGap},
		{"RetriedSingleAppendIsIdempotent", testRetrySingle},
		{"RetriedMultiAppendIsIdempotent", testRetryMulti},
		{"SameIDsAtOtherVersionConflicts", testRetryElsewhere},
		{"MultiStreamAppendIsAtomic", testMultiStreamAtomic},
		{"MultiStreamAppendSucceeds", testMultiStream},
		{"BadInputIsRejectedBeforeAnyWrite", testBadInput},
		{"LoadSpans", testSpans},
		{"LoadAsOfTime", testAsOf},
		{"UpcastsOldSchemasOnLoad", testUpcast},
		{"UnknownTypeOnLoad", testUnknownOnLoad},
		{"LargeStreamLoadsAcrossPages", testLargeStream},
		{"ClaimsAreUniqueAndAtomicWithEvents", testClaims},
		{"RacingClaimsHaveOneWinner", testRacingClaims},
		{"InsertsAreAtomicWithEventsAndNeverOverwrite", testInserts},
		{"RacingInsertsHaveOneWinner", testRacingInserts},
		{"Snapshots", func(t *testing.T, open Opener) { testSnapshots(t, open, features) }},
		{"LoadHistoryUsesSnapshot", testLoadHistory},
		{"RacingAppendsHaveOneWinnerPerVersion", testRacingRounds},
		{"ConcurrentWritersLeaveContiguousStream", testConcurrentWriters},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, f(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func mustAppend(t *testing.T, s Store, stream string, expected int64, events ...store.Event) store.Appended {
	t.Helper()
	res, err := Append(ctx(t), s, stream, expected, events...)
	if err != nil {
		t.Fatalf("Append(%s, %d): %v", stream, expected, err)
	}
	return res
}

func mustLoad(t *testing.T, s Store, stream string, span store.Span) []store.Event {
	t.Helper()
	events, err := s.Load(ctx(t), stream, span)
	if err != nil {
		t.Fatalf("Load(%s): %v", stream, err)
	}
	return events
}

func wantVersions(t *testing.T, events []store.Event, from, to int64) {
	t.Helper()
	if int64(len(events)) != to-from+1 {
		t.Fatalf("got %d events, want versions %d..%d", len(events), from, to)
	}
	for i, e := range events {
		if e.Version != from+int64(i) {
			t.Fatalf("event %d has version %d, want %d", i, e.Version, from+int64(i))
		}
	}
}

func wantConflict(t *testing.T, err error, stream string, expected, actual int64) {
	t.Helper()
	if !errors.Is(err, store.ErrVersionConflict) {
		t.Fatalf("got %v, want ErrVersionConflict", err)
	}
	var ce *store.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("got %T, want *store.ConflictError", err)
	}
	if ce.StreamID != stream || ce.Expected != expected || ce.Actual != actual {
		t.Fatalf("conflict = %+v, want stream %s expected %d actual %d", *ce, stream, expected, actual)
	}
}

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

// testRacingRounds: 32 goroutines append at the same expected version, round after round. Each
// round has exactly one winner, every loser gets a conflict, and the stream ends contiguous.
func testRacingRounds(t *testing.T, open Opener) {
	const writers, rounds = 32, 5
	stream := StreamID("race")
	stores := make([]Store, writers)
	for i := range stores {
		stores[i] = open(V1, nil)
	}
	for round := int64(0); round < rounds; round++ {
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			wins    atomic.Int64
			losses  atomic.Int64
			unknown = make(chan error, writers)
			winner  = make(chan string, writers)
		)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(s Store) {
				defer wg.Done()
				e := Note("racer")
				<-start
				_, err := Append(context.Background(), s, stream, round, e)
				switch {
				case err == nil:
					wins.Add(1)
					winner <- e.ID
				case errors.Is(err, store.ErrVersionConflict):
					losses.Add(1)
				default:
					unknown <- err
				}
			}(stores[w])
		}
		close(start)
		wg.Wait()
		close(unknown)
		for err := range unknown {
			t.Fatalf("round %d: unexpected error %v", round, err)
		}
		if wins.Load() != 1 || losses.Load() != writers-1 {
			t.Fatalf("round %d: %d winners and %d conflicts, want 1 and %d", round, wins.Load(), losses.Load(), writers-1)
		}
		got := mustLoad(t, open(V1, nil), stream, store.Span{})
		if got[round].ID != <-winner {
			t.Fatalf("round %d: stored event is not the winner's", round)
		}
	}
	wantVersions(t, mustLoad(t, open(V1, nil), stream, store.Span{}), 1, rounds)
}

// testConcurrentWriters: 32 goroutines each append events, reloading and retrying on conflict;
// every event lands exactly once and the stream is contiguous.
func testConcurrentWriters(t *testing.T, open Opener) {
	const writers, each = 32, 3
	stream := StreamID("race")
	var (
		wg   sync.WaitGroup
		errs = make(chan error, writers)
		sent sync.Map
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := open(V1, nil)
			c := context.Background()
			for i := 0; i < each; i++ {
				e := Note("w")
				sent.Store(e.ID, true)
				for attempt := 0; ; attempt++ {
					if attempt > 10*writers {
						errs <- fmt.Errorf("gave up after %d attempts", attempt)
						return
					}
					cur, err := s.Load(c, stream, store.Span{})
					if err != nil {
						errs <- err
						return
					}
					_, err = Append(c, s, stream, int64(len(cur)), e)
					if err == nil {
						break
					}
					if !errors.Is(err, store.ErrVersionConflict) {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := mustLoad(t, open(V1, nil), stream, store.Span{})
	wantVersions(t, got, 1, writers*each)
	seen := map[string]bool{}
	for _, e := range got {
		if _, ok := sent.Load(e.ID); !ok || seen[e.ID] {
			t.Fatalf("event %s at version %d is unknown or stored twice", e.ID, e.Version)
		}
		seen[e.ID] = true
	}
}

func claim(key string) []store.Claim   { return []store.Claim{{Key: key}} }
func release(key string) []store.Claim { return []store.Claim{{Key: key, Release: true}} }

func testClaims(t *testing.T, open Opener) {
	s := open(V1, nil)
	a, b := StreamID("user"), StreamID("user")
	key := "email-" + StreamID("hash")
	appendWith := func(s Store, stream string, expected int64, claims []store.Claim, events ...store.Event) error {
		_, err := s.AppendStreams(ctx(t), store.StreamAppend{StreamID: stream, Expected: expected, Events: events, Claims: claims})
		return err
	}
	if err := appendWith(s, a, 0, claim(key), Note("a registers")); err != nil {
		t.Fatal(err)
	}
	err := appendWith(open(V1, nil), b, 0, claim(key), Note("b registers"))
	var ce *store.ClaimError
	if !errors.Is(err, store.ErrClaimed) || !errors.As(err, &ce) || ce.Key != key || ce.StreamID != b {
		t.Fatalf("second claim: %v, want a ClaimError for %s", err, key)
	}
	if got := mustLoad(t, s, b, store.Span{}); len(got) != 0 {
		t.Fatalf("stream %s has %d events after its claim failed", b, len(got))
	}
	// Claiming again what one holds, and releasing what nobody holds, change nothing.
	if err := appendWith(s, a, 1, claim(key), Note("a again")); err != nil {
		t.Fatalf("re-claim by the owner: %v", err)
	}
	if err := appendWith(s, b, 0, release("email-nobody"), Note("b")); err != nil {
		t.Fatalf("release of a free key: %v", err)
	}
	// Only the owner can release.
	if err := appendWith(s, b, 1, release(key), Note("b steals")); !errors.Is(err, store.ErrClaimed) {
		t.Fatalf("release by another stream: %v, want ErrClaimed", err)
	}
	wantVersions(t, mustLoad(t, s, b, store.Span{}), 1, 1)
	// A retried append with a claim is idempotent.
	moved := "email-" + StreamID("hash")
	swap := store.StreamAppend{StreamID: a, Expected: 2, Events: []store.Event{Note("a moves")}, Claims: []store.Claim{{Key: key, Release: true}, {Key: moved}}}
	for i := 0; i < 2; i++ {
		if _, err := open(V1, nil).AppendStreams(ctx(t), swap); err != nil {
			t.Fatalf("swap attempt %d: %v", i+1, err)
		}
	}
	wantVersions(t, mustLoad(t, s, a, store.Span{}), 1, 3)
	if err := appendWith(s, b, 1, claim(key), Note("b takes the freed key")); err != nil {
		t.Fatalf("claim after release: %v", err)
	}
	if err := appendWith(s, b, 2, claim(moved), Note("b wants a's new key")); !errors.Is(err, store.ErrClaimed) {
		t.Fatalf("claim of a moved key: %v, want ErrClaimed", err)
	}
	if _, err := s.AppendStreams(ctx(t), store.StreamAppend{StreamID: b, Expected: 2, Events: []store.Event{Note("x")}, Claims: []store.Claim{{Key: ""}}}); !errors.Is(err, store.ErrInvalidEvent) {
		t.Fatalf("empty claim key: %v, want ErrInvalidEvent", err)
	}
}

// testRacingClaims: 16 new streams race to claim one key; exactly one gets it.
func testRacingClaims(t *testing.T, open Opener) {
	const racers = 16
	key := "email-" + StreamID("hash")
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		wins  atomic.Int64
		errs  = make(chan error, racers)
	)
	for i := 0; i < racers; i++ {
		wg.Add(1)
		go func(s Store) {
			defer wg.Done()
			<-start
			_, err := s.AppendStreams(context.Background(), store.StreamAppend{StreamID: StreamID("user"), Events: []store.Event{Note("me")}, Claims: claim(key)})
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, store.ErrClaimed):
				errs <- err
			}
		}(open(V1, nil))
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if wins.Load() != 1 {
		t.Fatalf("%d streams got the key, want 1", wins.Load())
	}
}

func insert(s Store, key string) store.Insert {
	return store.Insert{Table: s.InsertTable(), Key: key, Attrs: map[string]any{"wrapped": []byte{1, 2, 3}, "createdAt": "2026-01-02T03:04:05Z"}}
}

func testInserts(t *testing.T, open Opener) {
	s := open(V1, nil)
	appendWith := func(s Store, a store.StreamAppend) error {
		_, err := s.AppendStreams(ctx(t), a)
		return err
	}
	wantExists := func(err error, stream, key string) {
		t.Helper()
		var ie *store.InsertError
		if !errors.Is(err, store.ErrExists) || !errors.As(err, &ie) || ie.Key != key || ie.Table != s.InsertTable() || ie.StreamID != stream {
			t.Fatalf("insert of an existing item: %v, want an InsertError for %s in %s", err, key, stream)
		}
	}
	// One event with an insert: both are written, and the item cannot be inserted again, by
	// this process or another, whatever the append.
	a, b := StreamID("order"), StreamID("order")
	key := StreamID("subject")
	if err := appendWith(s, store.StreamAppend{StreamID: a, Events: []store.Event{Note("a1")}, Inserts: []store.Insert{insert(s, key)}}); err != nil {
		t.Fatal(err)
	}
	wantVersions(t, mustLoad(t, s, a, store.Span{}), 1, 1)
	err := appendWith(open(V1, nil), store.StreamAppend{StreamID: b, Events: []store.Event{Note("b1")}, Inserts: []store.Insert{insert(s, key)}})
	wantExists(err, b, key)
	if got := mustLoad(t, s, b, store.Span{}); len(got) != 0 {
		t.Fatalf("stream %s has %d events after its insert failed", b, len(got))
	}
	err = appendWith(s, store.StreamAppend{StreamID: a, Expected: 1, Events: []store.Event{Note("a2"), Note("a3")}, Inserts: []store.Insert{insert(s, key)}})
	wantExists(err, a, key)
	wantVersions(t, mustLoad(t, s, a, store.Span{}), 1, 1)

	// A refused append inserts nothing: a version conflict, a claim held by another stream, an
	// existing item next to a new one. Each new item can be inserted afterwards.
	held := "email-" + StreamID("hash")
	if err := appendWith(s, store.StreamAppend{StreamID: StreamID("user"), Events: []store.Event{Note("holder")}, Claims: claim(held)}); err != nil {
		t.Fatal(err)
	}
	afterConflict, afterClaim, afterExists := StreamID("subject"), StreamID("subject"), StreamID("subject")
	if err := appendWith(s, store.StreamAppend{StreamID: a, Expected: 0, Events: []store.Event{Note("stale")}, Inserts: []store.Insert{insert(s, afterConflict)}}); !errors.Is(err, store.ErrVersionConflict) {
		t.Fatalf("stale append with an insert: %v, want a conflict", err)
	}
	if err := appendWith(s, store.StreamAppend{StreamID: StreamID("user"), Events: []store.Event{Note("taker")}, Claims: claim(held), Inserts: []store.Insert{insert(s, afterClaim)}}); !errors.Is(err, store.ErrClaimed) {
		t.Fatalf("append with a held claim and an insert: %v, want ErrClaimed", err)
	}
	c := StreamID("order")
	err = appendWith(s, store.StreamAppend{StreamID: c, Events: []store.Event{Note("c1")}, Inserts: []store.Insert{insert(s, afterExists), insert(s, key)}})
	wantExists(err, c, key)
	if got := mustLoad(t, s, c, store.Span{}); len(got) != 0 {
		t.Fatalf("stream %s has %d events after its insert failed", c, len(got))
	}
	for _, k := range []string{afterConflict, afterClaim, afterExists} {
		if err := appendWith(s, store.StreamAppend{StreamID: StreamID("order"), Events: []store.Event{Note("later")}, Inserts: []store.Insert{insert(s, k)}}); err != nil {
			t.Fatalf("insert after a refused append: %v; the refused append left its item behind", err)
		}
	}

	// A retried append with an insert is idempotent: its own item does not fail it.
	retried := store.StreamAppend{StreamID: StreamID("order"), Events: []store.Event{Note("once")}, Inserts: []store.Insert{insert(s, StreamID("subject"))}}
	for i := 0; i < 2; i++ {
		res, err := open(V1, nil).AppendStreams(ctx(t), retried)
		if err != nil || res[0].Version != 1 {
			t.Fatalf("attempt %d: %+v, %v", i+1, res, err)
		}
	}
	wantVersions(t, mustLoad(t, s, retried.StreamID, store.Span{}), 1, 1)

	// Bad inserts are refused before any write.
	d := StreamID("order")
	good := insert(s, StreamID("subject"))
	for name, in := range map[string]store.Insert{
		"no table":          {Key: "k", Attrs: good.Attrs},
		"bad table name":    {Table: "a b", Key: "k", Attrs: good.Attrs},
		"no key":            {Table: good.Table, Attrs: good.Attrs},
		"key over 1 KB":     {Table: good.Table, Key: strings.Repeat("k", 1025)},
		"key not UTF-8":     {Table: good.Table, Key: "\xff"},
		"attribute pk":      {Table: good.Table, Key: "k", Attrs: map[string]any{"pk": "other"}},
		"attribute no name": {Table: good.Table, Key: "k", Attrs: map[string]any{"": "x"}},
		"attribute an int":  {Table: good.Table, Key: "k", Attrs: map[string]any{"n": 7}},
	} {
		if err := appendWith(s, store.StreamAppend{StreamID: d, Events: []store.Event{Note("d")}, Inserts: []store.Insert{good, in}}); !errors.Is(err, store.ErrInvalidEvent) {
			t.Errorf("%s: %v, want ErrInvalidEvent", name, err)
		}
	}
	twice := []store.Insert{good, good}
	if err := appendWith(s, store.StreamAppend{StreamID: d, Events: []store.Event{Note("d")}, Inserts: twice}); !errors.Is(err, store.ErrInvalidEvent) {
		t.Errorf("one item inserted twice: %v, want ErrInvalidEvent", err)
	}
	if got := mustLoad(t, s, d, store.Span{}); len(got) != 0 {
		t.Fatalf("a refused append wrote %d events", len(got))
	}
	if err := appendWith(s, store.StreamAppend{StreamID: d, Events: []store.Event{Note("d")}, Inserts: []store.Insert{good}}); err != nil {
		t.Fatalf("the good insert after refused ones: %v", err)
	}
}

// testRacingInserts: 16 new streams race to insert one item; exactly one does, the others write
// nothing.
func testRacingInserts(t *testing.T, open Opener) {
	const racers = 16
	key := StreamID("subject")
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		wins    atomic.Int64
		errs    = make(chan error, racers)
		streams = make([]string, racers)
	)
	for i := 0; i < racers; i++ {
		wg.Add(1)
		streams[i] = StreamID("order")
		go func(s Store, stream string) {
			defer wg.Done()
			<-start
			_, err := s.AppendStreams(context.Background(), store.StreamAppend{StreamID: stream, Events: []store.Event{Note("first")}, Inserts: []store.Insert{insert(s, key)}})
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, store.ErrExists):
				errs <- err
			}
		}(open(V1, nil), streams[i])
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if wins.Load() != 1 {
		t.Fatalf("%d streams inserted the item, want 1", wins.Load())
	}
	written := 0
	for _, stream := range streams {
		written += len(mustLoad(t, open(V1, nil), stream, store.Span{}))
	}
	if written != 1 {
		t.Fatalf("%d events written by the racers, want the winner's 1", written)
	}
}
