package store

import (
	"encoding/json"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// pending is one stream's part of an append, validated, with its envelopes filled in and its
// items encoded.
type pending struct {
	stream   string
	expected int64
	events   []Event
	items    []map[string]types.AttributeValue
	claims   []Claim
	inserts  []Insert
}

// prepare validates an append before any I/O and fills in the envelopes: stream, version, schema
// version and recorded-at time. Every implementation calls it, so all reject the same input.
func prepare(reg *Registry, now time.Time, appends []StreamAppend) ([]pending, error) {
	if len(appends) == 0 {
		return nil, ErrNoEvents
	}
	var (
		out     = make([]pending, 0, len(appends))
		streams = make(map[string]bool, len(appends))
		ids     = make(map[string]bool)
		keys    = make(map[string]bool)
		items   = make(map[[2]string]bool)
		actions int
		size    int
	)
	now = now.UTC()
	for _, a := range appends {
		if err := ValidStreamID(a.StreamID); err != nil {
			return nil, err
		}
		if len(a.Events) == 0 {
			return nil, fmt.Errorf("append to %s: %w", a.StreamID, ErrNoEvents)
		}
		if a.Expected < 0 {
			return nil, fmt.Errorf("append to %s: %w: expected version %d", a.StreamID, ErrInvalidEvent, a.Expected)
		}
		if streams[a.StreamID] {
			return nil, fmt.Errorf("append to %s: %w: stream named twice in one append", a.StreamID, ErrInvalidEvent)
		}
		streams[a.StreamID] = true
		if a.Expected > 0 {
			actions++ // the check that version Expected exists
		}
		for _, c := range a.Claims {
			if c.Key == "" || len(c.Key) > 1024 || !utf8.ValidString(c.Key) {
				return nil, fmt.Errorf("append to %s: %w: claim key empty, over 1 KB or not UTF-8", a.StreamID, ErrInvalidEvent)
			}
			if keys[c.Key] {
				return nil, fmt.Errorf("append to %s: %w: unique key %s claimed twice", a.StreamID, ErrInvalidEvent, c.Key)
			}
			keys[c.Key] = true
		}
		actions += len(a.Claims)
		for _, in := range a.Inserts {
			n, err := checkInsert(in)
			if err != nil {
				return nil, fmt.Errorf("append to %s: %w", a.StreamID, err)
			}
			if items[[2]string{in.Table, in.Key}] {
				return nil, fmt.Errorf("append to %s: %w: item %s of %s inserted twice", a.StreamID, ErrInvalidEvent, in.Key, in.Table)
			}
			items[[2]string{in.Table, in.Key}] = true
			size += n
		}
		actions += len(a.Inserts)
		p := pending{stream: a.StreamID, expected: a.Expected, claims: a.Claims, inserts: a.Inserts, events: make([]Event, len(a.Events)), items: make([]map[string]types.AttributeValue, len(a.Events))}
		for i, e := range a.Events {
			e.StreamID, e.Version, e.RecordedAt = a.StreamID, a.Expected+int64(i)+1, now
			if err := checkEnvelope(&e); err != nil {
				return nil, fmt.Errorf("append to %s: %w", a.StreamID, err)
			}
			if err := reg.prepare(&e); err != nil {
				return nil, fmt.Errorf("append to %s: %w", a.StreamID, err)
			}
			if ids[e.ID] {
				return nil, fmt.Errorf("append to %s: %w: event ID %s given twice", a.StreamID, ErrInvalidEvent, e.ID)
			}
			ids[e.ID] = true
			it, err := EncodeItem(e)
			if err != nil {
				return nil, fmt.Errorf("append to %s: encode %s: %w", a.StreamID, e.Type, err)
			}
			n := itemSize(it)
			if n > MaxItemSize {
				return nil, fmt.Errorf("append to %s: %w: %s event is %d bytes, the item limit is %d", a.StreamID, ErrTooLarge, e.Type, n, MaxItemSize)
			}
			size += n
			p.events[i], p.items[i] = e, it
		}
		actions += len(a.Events)
		out = append(out, p)
	}
	if actions > MaxTransactItems {
		return nil, fmt.Errorf("%w: %d items (events, version checks, claims and inserts), the limit is %d", ErrTooManyEvents, actions, MaxTransactItems)
	}
	if size > MaxTransactSize {
		return nil, fmt.Errorf("%w: %d bytes in one append, the limit is %d", ErrTooLarge, size, MaxTransactSize)
	}
	return out, nil
}

var tableNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

// checkInsert validates an insert and returns about how many bytes its item takes.
func checkInsert(in Insert) (int, error) {
	if !tableNamePattern.MatchString(in.Table) {
		return 0, fmt.Errorf("%w: insert into a table whose name is not a DynamoDB table name", ErrInvalidEvent)
	}
	if in.Key == "" || len(in.Key) > 1024 || !utf8.ValidString(in.Key) {
		return 0, fmt.Errorf("%w: insert key empty, over 1 KB or not UTF-8", ErrInvalidEvent)
	}
	n := len(AttrStream) + len(in.Key)
	for name, v := range in.Attrs {
		if name == "" || name == AttrStream || len(name) > 255 || !utf8.ValidString(name) {
			return 0, fmt.Errorf("%w: insert attribute name empty, %q, over 255 bytes or not UTF-8", ErrInvalidEvent, AttrStream)
		}
		switch v := v.(type) {
		case string:
			n += len(name) + len(v)
		case []byte:
			n += len(name) + len(v)
		default:
			return 0, fmt.Errorf("%w: insert attribute %s is a %T, want a string or []byte", ErrInvalidEvent, name, v)
		}
	}
	if n > MaxItemSize {
		return 0, fmt.Errorf("%w: inserted item is %d bytes, the item limit is %d", ErrTooLarge, n, MaxItemSize)
	}
	return n, nil
}

func (p pending) appended(events []Event) Appended {
	return Appended{StreamID: p.stream, Version: p.expected + int64(len(events)), Events: events}
}

// checkSnapshot validates a snapshot before it is written.
func checkSnapshot(s Snapshot) error {
	if err := ValidStreamID(s.StreamID); err != nil {
		return err
	}
	if s.Version < 1 || s.SchemaVersion < 1 {
		return fmt.Errorf("snapshot of %s: %w: version %d, schema version %d, both must be 1 or more", s.StreamID, ErrInvalidEvent, s.Version, s.SchemaVersion)
	}
	if len(s.Data) == 0 || !json.Valid(s.Data) {
		return fmt.Errorf("snapshot of %s: %w: payload is not JSON", s.StreamID, ErrInvalidEvent)
	}
	if _, err := ulid.ParseStrict(s.EventID); err != nil {
		return fmt.Errorf("snapshot of %s: %w: the ID of the event at its version is not a ULID", s.StreamID, ErrInvalidEvent)
	}
	return nil
}
