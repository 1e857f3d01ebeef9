package store

import (
	"context"
	"errors"
)

// History is what it takes to rebuild an aggregate: its latest usable snapshot, if any, and the
// events after it.
type History struct {
	Snapshot *Snapshot
	Events   []Event
}

// Version is the stream version the history reaches.
func (h History) Version() int64 {
	if n := len(h.Events); n > 0 {
		return h.Events[n-1].Version
	}
	if h.Snapshot != nil {
		return h.Snapshot.Version
	}
	return 0
}

// LoadHistory loads a stream through its snapshot of the given schema version when there is one,
// so a long stream costs about as much to load as a short one: one GetItem and one Query for the
// events from the snapshot's on.
//
// A snapshot is used only when the event it ends with is in the stream at its version, with its
// ID: the Query starts at that event to check it. Otherwise (the events table was restored to a
// point before the snapshot, and the stream may since have grown again with other events) the
// snapshot is not of this stream's history and is ignored: the whole stream is loaded.
func LoadHistory(ctx context.Context, r Reader, streamID string, snapshotSchema int) (History, error) {
	snap, err := r.LoadSnapshot(ctx, streamID, snapshotSchema)
	switch {
	case errors.Is(err, ErrNoSnapshot):
		events, err := r.Load(ctx, streamID, Span{})
		return History{Events: events}, err
	case err != nil:
		return History{}, err
	}
	events, err := r.Load(ctx, streamID, Span{From: snap.Version})
	if err != nil {
		return History{}, err
	}
	if len(events) > 0 && events[0].Version == snap.Version && events[0].ID == snap.EventID {
		return History{Snapshot: &snap, Events: events[1:]}, nil
	}
	events, err = r.Load(ctx, streamID, Span{})
	return History{Events: events}, err
}
