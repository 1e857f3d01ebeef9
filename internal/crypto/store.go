package crypto

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/eventfold/eventfold/internal/store"
)

// SealingStore is the sealing event store: it seals the personal fields of events on append and
// opens them on load, transparently to the domain. Each event with a data subject has the fields
// fields(type) names sealed under the subject's key, bound to the event's ID and the field's
// name. A snapshot with a data subject is sealed whole, bound to its stream and version; once the
// subject is erased it no longer loads (ErrNoSnapshot), and the aggregate folds from its events.
// It is safe for concurrent use, and is itself a [store.EventStore].
type SealingStore struct {
	store.EventStore
	keys   *Keyring
	fields func(eventType string) []string
}

// NewSealingStore returns the sealing store over inner.
func NewSealingStore(inner store.EventStore, keys *Keyring, fields func(eventType string) []string) *SealingStore {
	return &SealingStore{EventStore: inner, keys: keys, fields: fields}
}

// maxKeyRaces bounds how often one append is sealed again after another process stored the key
// of one of its subjects first.
const maxKeyRaces = 3

// AppendStreams seals, then appends. A subject who has no key yet gets a new one (made by KMS),
// which is stored in the keys table by the same atomic append as the events sealed under it (a
// store.Insert): an append that is refused (a version conflict, a claim another stream holds,
// invalid input) leaves no key behind. When another process stored the subject's key first, or
// erased the subject, the insert fails; the append is then sealed again under the stored key, or
// refused with ErrShredded, so a subject never has two keys and a tombstone is never overwritten.
// It returns ErrShredded, wrapped, for an event of an erased subject, having written nothing.
//
// The inner store must write inserts to the keyring's table: the DynamoDB store on the same
// DynamoDB.
func (s *SealingStore) AppendStreams(ctx context.Context, appends ...store.StreamAppend) ([]store.Appended, error) {
	for race := 1; ; race++ {
		res, lost, err := s.appendOnce(ctx, appends)
		if lost && race < maxKeyRaces {
			continue
		}
		return res, err
	}
}

// appendOnce seals and appends once; lost reports that a new key's insert failed because the
// subject's key (or tombstone) was stored meanwhile.
func (s *SealingStore) appendOnce(ctx context.Context, appends []store.StreamAppend) (res []store.Appended, lost bool, err error) {
	keys := map[string]*[KeySize]byte{} // subject -> key, stored or new
	fresh := map[string]*newKey{}       // subject -> new key, stored by this append
	defer func() {
		for _, k := range keys {
			clear(k[:])
		}
		for _, nk := range fresh {
			nk.discard()
		}
	}()
	sealed := make([]store.StreamAppend, len(appends))
	for i, a := range appends {
		a.Events = append([]store.Event(nil), a.Events...)
		a.Inserts = append([]store.Insert(nil), a.Inserts...)
		for j := range a.Events {
			e := &a.Events[j]
			if e.Subject == "" {
				continue
			}
			fields := s.fields(e.Type)
			obj, err := object(e.Data, fields)
			if err != nil {
				return nil, false, fmt.Errorf("seal %s %s: %w", e.Type, e.ID, err)
			}
			if obj == nil {
				continue
			}
			key, ok := keys[e.Subject]
			if !ok {
				key = new([KeySize]byte)
				keys[e.Subject] = key
				found, err := s.keys.lookup(ctx, e.Subject, key)
				if err != nil {
					return nil, false, fmt.Errorf("seal %s %s: %w", e.Type, e.ID, err)
				}
				if !found {
					nk, err := s.keys.generate(ctx, e.Subject)
					if err != nil {
						return nil, false, fmt.Errorf("seal %s %s: %w", e.Type, e.ID, err)
					}
					fresh[e.Subject] = nk
					*key = nk.plain
					a.Inserts = append(a.Inserts, s.keys.insert(nk))
				}
			}
			if e.Data, err = sealObject(key, e.Subject, e.ID, obj, fields); err != nil {
				return nil, false, fmt.Errorf("seal %s %s: %w", e.Type, e.ID, err)
			}
		}
		sealed[i] = a
	}
	res, err = s.EventStore.AppendStreams(ctx, sealed...)
	if err != nil {
		return nil, s.keys.isOwnInsert(err, fresh), err
	}
	for subject, nk := range fresh {
		if storedAsSent(res, sealed, subject) {
			s.keys.keep(nk)
		}
	}
	return res, false, nil
}

// storedAsSent reports whether the subject's events came back as this append sealed them. A store
// answers a retry of an append that was written with the events as stored by the earlier attempt:
// those may be sealed under a key other than this attempt's new one, which must then not be
// cached (the stored key is read from the keys table when next needed).
func storedAsSent(res []store.Appended, sent []store.StreamAppend, subject string) bool {
	if len(res) != len(sent) {
		return false
	}
	for i, a := range sent {
		if len(res[i].Events) != len(a.Events) {
			return false
		}
		for j, e := range a.Events {
			if e.Subject == subject && !bytes.Equal(res[i].Events[j].Data, e.Data) {
				return false
			}
		}
	}
	return true
}

// Load loads and opens. Events of erased subjects come back Shredded.
func (s *SealingStore) Load(ctx context.Context, streamID string, span store.Span) ([]store.Event, error) {
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
func (s *SealingStore) Open(ctx context.Context, e *store.Event) error {
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

// SaveSnapshot seals a snapshot that holds a subject's data, then saves it. Like the inner store,
// it returns store.ErrInvalidEvent, wrapped, for a payload that is not JSON, having written
// nothing: sealed, it would be valid JSON to the inner store.
func (s *SealingStore) SaveSnapshot(ctx context.Context, snap store.Snapshot) error {
	if snap.Subject != "" {
		if !json.Valid(snap.Data) {
			return fmt.Errorf("snapshot of %s: %w: payload is not JSON", snap.StreamID, store.ErrInvalidEvent)
		}
		sealed, err := s.keys.Seal(ctx, snap.Subject, snapshotPlace(snap.StreamID, snap.Version), snap.Data)
		if err != nil {
			return fmt.Errorf("seal snapshot of %s: %w", snap.StreamID, err)
		}
		snap.Data, _ = json.Marshal(sealedPrefix + base64.RawURLEncoding.EncodeToString(sealed))
	}
	return s.EventStore.SaveSnapshot(ctx, snap)
}

// LoadSnapshot loads a snapshot and opens it; one of an erased subject is ErrNoSnapshot.
func (s *SealingStore) LoadSnapshot(ctx context.Context, streamID string, schema int) (store.Snapshot, error) {
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
