package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/store"
)

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
