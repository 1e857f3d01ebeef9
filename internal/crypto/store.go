package crypto

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/eventfold/eventfold/internal/store"
)

// EventStore is the event store the encryption layer wraps.
type EventStore interface {
	store.Reader
	AppendStreams(ctx context.Context, appends ...store.StreamAppend) ([]store.Appended, error)
	SaveSnapshot(ctx context.Context, snap store.Snapshot) error
}

// Store seals the personal fields of events on append and opens them on load, transparently to
// the domain: each event with a data subject has the fields fields(type) names sealed under the
// subject's key, bound to the event's ID and the field's name. A snapshot with a data subject is
// sealed whole, bound to its stream and version; once the subject is erased it no longer loads
// (ErrNoSnapshot), and the aggregate folds from its events. It is safe for concurrent use.
type Store struct {
	EventStore
	keys   *Keyring
	fields func(eventType string) []string
}

// NewStore wraps inner.
func NewStore(inner EventStore, keys *Keyring, fields func(eventType string) []string) *Store {
	return &Store{EventStore: inner, keys: keys, fields: fields}
}

// AppendStreams seals, then appends. It returns ErrShredded, wrapped, for an event of an erased
// subject, having written nothing.
func (s *Store) AppendStreams(ctx context.Context, appends ...store.StreamAppend) ([]store.Appended, error) {
	sealed := make([]store.StreamAppend, len(appends))
	for i, a := range appends {
		a.Events = append([]store.Event(nil), a.Events...)
		for j := range a.Events {
			e := &a.Events[j]
			if e.Subject == "" {
				continue
			}
			data, err := s.keys.SealFields(ctx, e.Subject, e.ID, e.Data, s.fields(e.Type))
			if err != nil {
				return nil, fmt.Errorf("seal %s %s: %w", e.Type, e.ID, err)
			}
			e.Data = data
		}
		sealed[i] = a
	}
	return s.EventStore.AppendStreams(ctx, sealed...)
}

// Load loads and opens. Events of erased subjects come back Shredded.
func (s *Store) Load(ctx context.Context, streamID string, span store.Span) ([]store.Event, error) {
	events, err := s.EventStore.Load(ctx, streamID, span)
	if err != nil {
		return nil, err
	}
	for i := range events {
		if err := s.Open(ctx, &events[i]); err != nil {
			return nil, err
		}
	}
	return events, nil
}

// Open opens a stored event's personal fields in place.
func (s *Store) Open(ctx context.Context, e *store.Event) error {
	if e.Subject == "" {
		return nil
	}
	data, shredded, err := s.keys.OpenFields(ctx, e.Subject, e.ID, e.Data, s.fields(e.Type))
	if err != nil {
		return fmt.Errorf("open %s at %d: %w", e.StreamID, e.Version, err)
	}
	e.Data, e.Shredded = data, shredded
	return nil
}

// SaveSnapshot seals a snapshot that holds a subject's data, then saves it.
func (s *Store) SaveSnapshot(ctx context.Context, snap store.Snapshot) error {
	if snap.Subject != "" {
		sealed, err := s.keys.Seal(ctx, snap.Subject, snapshotPlace(snap.StreamID, snap.Version), snap.Data)
		if err != nil {
			return fmt.Errorf("seal snapshot of %s: %w", snap.StreamID, err)
		}
		snap.Data, _ = json.Marshal(sealedPrefix + base64.RawURLEncoding.EncodeToString(sealed))
	}
	return s.EventStore.SaveSnapshot(ctx, snap)
}

// LoadSnapshot loads a snapshot and opens it; one of an erased subject is ErrNoSnapshot.
func (s *Store) LoadSnapshot(ctx context.Context, streamID string, schema int) (store.Snapshot, error) {
	snap, err := s.EventStore.LoadSnapshot(ctx, streamID, schema)
	if err != nil || snap.Subject == "" {
		return snap, err
	}
	sealed, ok := sealedField(snap.Data)
	if !ok {
		return store.Snapshot{}, store.ErrNoSnapshot // not sealed as it should be: not trusted
	}
	data, err := s.keys.Open(ctx, snap.Subject, snapshotPlace(streamID, snap.Version), sealed)
	switch {
	case errors.Is(err, ErrShredded), errors.Is(err, ErrTampered), errors.Is(err, ErrFormat):
		return store.Snapshot{}, store.ErrNoSnapshot
	case err != nil:
		return store.Snapshot{}, err
	}
	snap.Data = data
	return snap, nil
}

func snapshotPlace(stream string, version int64) string {
	return fmt.Sprintf("snapshot/%s/%d", stream, version)
}
