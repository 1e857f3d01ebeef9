package storetest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eventfold/eventfold/internal/store"
)

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
