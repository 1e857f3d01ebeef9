// Package storetest is the contract every [store.EventStore] must pass: the in-memory store used
// by unit tests (memory_test.go here), the DynamoDB store against DynamoDB Local (in package
// store), and crypto.SealingStore over it (in package crypto). Run it from an
// implementation's tests with [Run], or [RunWith] and the [Features] it has.
//
// This file holds the suite's entry points and fixtures; assert.go its helpers; the cases are in
// append.go, load.go, claims.go (claims and inserts), snapshots.go and race.go.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
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
	// events it has stored: the sealing store (crypto.SealingStore) seals a snapshot under the
	// subject's key, which only their first event creates. The Snapshots case then appends its
	// events with the snapshot's subject.
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

// testRacingRounds: 32 goroutines append at the same expected version, round after round. Each
// round has exactly one winner, every loser gets a conflict, and the stream ends contiguous.
// testConcurrentWriters: 32 goroutines each append events, reloading and retrying on conflict;
// every event lands exactly once and the stream is contiguous.
// testRacingClaims: 16 new streams race to claim one key; exactly one gets it.
// testRacingInserts: 16 new streams race to insert one item; exactly one does, the others write
// nothing.
