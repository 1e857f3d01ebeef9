package crypto

import (
	"context"
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
// subject's key, bound to the event's ID and the field's name. Snapshots pass through: only
// aggregates without personal data keep them. It is safe for concurrent use.
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
