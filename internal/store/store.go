package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
)

// Reader is the read half of an event store: what [LoadHistory] needs.
type Reader interface {
	// Load returns the events of the span of the stream, upcast to their types' current schema
	// versions; none (and no error) for a stream with no events in the span.
	Load(ctx context.Context, streamID string, span Span) ([]Event, error)
	// LoadSnapshot returns the stream's snapshot of the given schema version, or
	// [ErrNoSnapshot].
	LoadSnapshot(ctx context.Context, streamID string, schema int) (Snapshot, error)
}

// EventStore is the event-store port: what the command layer and the encryption layer (package
// crypto) use, and what [DynamoDB], [Memory] and crypto.SealingStore implement. Its contract is the
// suite in package storetest, which every implementation runs:
//
//   - AppendStreams appends to one or more streams atomically at their expected versions, or
//     writes nothing and returns [ErrVersionConflict] (in a [*ConflictError]), [ErrClaimed] (in a
//     [*ClaimError]), [ErrExists] (in an [*InsertError]) or one of the input errors below. A
//     retry of an append that was written returns its result and writes nothing.
//   - Load returns a span of a stream, upcast; LoadSnapshot the stream's snapshot of a schema
//     version (see [Reader]).
//   - SaveSnapshot stores a snapshot of a stream, unless one as recent of the same schema
//     version is there.
//
// Implementations are safe for concurrent use.
type EventStore interface {
	Reader
	AppendStreams(ctx context.Context, appends ...StreamAppend) ([]Appended, error)
	SaveSnapshot(ctx context.Context, snap Snapshot) error
}

// Event is the envelope of every event in the store.
type Event struct {
	// ID is the event's unique, time-sortable ID (a ULID). The caller assigns it before the first
	// attempt (see NewIDs) so that a retried append is recognised as the same one.
	ID string
	// StreamID and Version place the event: the Version-th event of stream StreamID. Append sets
	// both; values the caller puts there are ignored.
	StreamID string
	Version  int64
	// Type is the event type: an explicit, stable string constant such as "UserRegistered".
	Type string
	// SchemaVersion is the version of Data's schema for Type. Append fills in the current
	// version when it is 0; Load upcasts older versions to the current one.
	SchemaVersion int
	// RecordedAt is when the store recorded the event; Append sets it from its clock.
	RecordedAt time.Time
	// CorrelationID ties together everything caused by one request; CausationID is the ID of the
	// command or event that caused this one.
	CorrelationID string
	CausationID   string
	// Subject is the data subject whose personal data Data holds, empty when it holds none. It is
	// how personal data is found again for encryption and erasure.
	Subject string
	// Data is the payload, a JSON value.
	Data json.RawMessage
	// Shredded is set on a loaded event whose personal fields could not be opened because its
	// subject was erased: those fields read as null. The store itself never sets it; the
	// encryption layer (package crypto) does.
	Shredded bool
}

// Snapshot is an aggregate's state at a version of its stream.
type Snapshot struct {
	StreamID string
	Version  int64
	// EventID is the ID of the event at Version, the last one the state folds. A snapshot is used
	// only while that event is still in the stream (see LoadHistory): after a restore of the
	// events table to an earlier point it may not be, and then the snapshot is not of this
	// stream's history.
	EventID string
	// SchemaVersion is the version of the aggregate's snapshot format. A snapshot whose schema
	// version is not the one asked for is stale and never returned.
	SchemaVersion int
	TakenAt       time.Time
	// Subject is the data subject whose personal data Data holds, empty when none.
	Subject string
	Data    json.RawMessage
}

// Span selects part of a stream. The zero Span is the whole stream as it is now.
type Span struct {
	// From is the first version to return (values below 1 mean 1).
	From int64
	// To is the last version to return (0 means the latest).
	To int64
	// AsOf, when not zero, ends the span before the first event recorded after it: the stream as
	// it stood at that time.
	AsOf time.Time
}

// StreamAppend is the part of a multi-stream append that goes to one stream.
type StreamAppend struct {
	StreamID string
	Expected int64
	Events   []Event
	// Claims are unique values this stream takes or gives up, atomically with its events.
	Claims []Claim
	// Inserts are items created in other tables atomically with the events (see Insert).
	Inserts []Insert
}

// Insert creates an item in another table atomically with an append, on the condition that no
// item of its key is there, not even one emptied since (a tombstone). If one is, the whole append
// fails with an *InsertError (ErrExists) and writes nothing. The encryption layer stores a new
// data subject's wrapped key this way, in the transaction of the first events sealed under it,
// so that a refused append leaves no key behind and a tombstone is never overwritten.
//
// A retry of an append that was written (see Appended) succeeds although its inserts' items now
// exist: they are the ones it wrote.
type Insert struct {
	// Table is the name of the table; for the DynamoDB store, one with the string partition key
	// "pk" and no sort key, reachable with the store's client.
	Table string
	// Key is the item's partition key, at most 1024 bytes of UTF-8.
	Key string
	// Attrs are its other attributes, each a string or a []byte; "pk" is not one of them.
	Attrs map[string]any
}

// Claim reserves a unique value for the stream it is appended with (a uniqueness guard: one
// user per email address, say), or with Release, gives it up. Key is what must be unique; it is
// stored as it is, so it must never be personal data in plain text: use a keyed hash.
//
// Taking a value the same stream already holds, or releasing one nobody holds, succeeds and
// changes nothing, so retries are safe. Taking a value another stream holds, or releasing one,
// fails the whole append with a *ClaimError.
type Claim struct {
	Key     string
	Release bool
}

// Appended is the result of appending to one stream.
type Appended struct {
	StreamID string
	// Version is the stream's version after the append: that of its last event.
	Version int64
	// Events are the events as stored, envelope filled in.
	Events []Event
}

// Limits of DynamoDB that bound appends.
const (
	// MaxItemSize is DynamoDB's item size limit; an event's item must fit in it.
	MaxItemSize = 400 * 1024
	// MaxTransactItems is the most items one TransactWriteItems may hold.
	MaxTransactItems = 100
	// MaxTransactSize is the most data one TransactWriteItems may carry.
	MaxTransactSize = 4 * 1024 * 1024
	// MaxStreamIDLength bounds stream IDs (DynamoDB allows 2048 bytes for a partition key).
	MaxStreamIDLength = 512
)

var (
	// ErrVersionConflict is returned, inside a *ConflictError, when the stream is not at the
	// version the append expected: another writer got there first, or the expected version is
	// ahead of the stream. Nothing was written.
	ErrVersionConflict = errors.New("version conflict")
	// ErrInvalidStreamID is returned before any I/O when a stream ID is empty, too long or not of
	// the form "category-id" (category: a letter then letters and digits; id: letters, digits and
	// . _ : -).
	ErrInvalidStreamID = errors.New("invalid stream ID")
	// ErrNoEvents is returned by an append with no events.
	ErrNoEvents = errors.New("no events to append")
	// ErrInvalidEvent is returned, wrapped, before any write, for input that no store could
	// accept. An append (AppendStreams, Append) returns it when
	//   - an event's ID is not a ULID;
	//   - an event's payload is empty or not JSON;
	//   - an event's correlation ID, causation ID or subject is over 256 bytes or not UTF-8;
	//   - an event's schema version is neither 0 nor its type's current one;
	//   - one event ID is given twice;
	//   - an expected version is below 0;
	//   - one stream is named twice;
	//   - a claim key is empty, over 1 KB or not UTF-8, or one key is claimed twice;
	//   - an insert's table is not a DynamoDB table name, its key is empty, over 1 KB or not
	//     UTF-8, an attribute name is empty, "pk", over 255 bytes or not UTF-8, an attribute is
	//     not a string or a []byte, or one item is inserted twice.
	// SaveSnapshot returns it when
	//   - the snapshot's version or schema version is below 1;
	//   - its payload is not JSON;
	//   - its EventID is not a ULID;
	//   - its version is ahead of the stream's.
	// A store that is not configured for a request says so with [ErrNoClaimsTable] instead.
	ErrInvalidEvent = errors.New("invalid event")
	// ErrNoClaimsTable is returned, wrapped, before any write by an append with claims to a
	// DynamoDB store whose Config has no ClaimsTable: a configuration error, not bad input.
	ErrNoClaimsTable = errors.New("claims need Config.ClaimsTable")
	// ErrUnknownEventType is returned when an event's type is not registered: before any write on
	// append, and on load for a stored event of a type this program does not know.
	ErrUnknownEventType = errors.New("unknown event type")
	// ErrTooLarge is returned before any write when an event or snapshot would exceed DynamoDB's
	// 400 KB item limit, or an append its 4 MB transaction limit.
	ErrTooLarge = errors.New("too large")
	// ErrTooManyEvents is returned before any write when an append needs more than the 100 items
	// one DynamoDB transaction can hold.
	ErrTooManyEvents = errors.New("too many events for one atomic append")
	// ErrCorrupt is returned by a load that finds a stored item it cannot decode or a stream with
	// a missing version.
	ErrCorrupt = errors.New("corrupt event store item")
	// ErrUpcast is returned by a load when an upcaster fails on a stored event.
	ErrUpcast = errors.New("cannot upcast event")
	// ErrNoSnapshot is returned by LoadSnapshot when the stream has no snapshot of the schema
	// version asked for.
	ErrNoSnapshot = errors.New("no snapshot")
	// ErrClaimed is returned, inside a *ClaimError, when an append claims or releases a unique
	// value that another stream holds. Nothing was written.
	ErrClaimed = errors.New("claimed by another stream")
	// ErrExists is returned, inside an *InsertError, when an append's Insert finds an item of
	// its key already in its table. Nothing was written.
	ErrExists = errors.New("item exists")
)

// InsertError reports an Insert whose item exists. errors.Is(err, ErrExists) holds for it.
type InsertError struct {
	StreamID string // the stream whose append carried the insert
	Table    string
	Key      string
}

func (e *InsertError) Error() string {
	return fmt.Sprintf("append to %s: item %s of %s: %v", e.StreamID, e.Key, e.Table, ErrExists)
}

// Is makes errors.Is(err, ErrExists) true.
func (e *InsertError) Is(target error) bool { return target == ErrExists }

// ClaimError reports a claim held by another stream. errors.Is(err, ErrClaimed) holds for it. It
// does not say which stream holds the key.
type ClaimError struct {
	StreamID string // the stream whose append failed
	Key      string
}

func (e *ClaimError) Error() string {
	return fmt.Sprintf("append to %s: unique key %s is %v", e.StreamID, e.Key, ErrClaimed)
}

// Is makes errors.Is(err, ErrClaimed) true.
func (e *ClaimError) Is(target error) bool { return target == ErrClaimed }

// ConflictError reports a version conflict. errors.Is(err, ErrVersionConflict) holds for it.
type ConflictError struct {
	StreamID string
	// Expected is the version the append expected the stream to be at.
	Expected int64
	// Actual is the stream's version as read after the conflict, or -1 when that read failed.
	Actual int64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("append to %s: expected version %d, stream is at %d: %v", e.StreamID, e.Expected, e.Actual, ErrVersionConflict)
}

// Is makes errors.Is(err, ErrVersionConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrVersionConflict }

var streamIDPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9._:|@+-]+$`)

// ValidStreamID reports ErrInvalidStreamID, wrapped, unless id is a valid stream ID.
func ValidStreamID(id string) error {
	if len(id) > MaxStreamIDLength || !streamIDPattern.MatchString(id) {
		// The ID itself may be user input; do not echo it.
		return fmt.Errorf("%w (want category-id, at most %d bytes, got %d bytes)", ErrInvalidStreamID, MaxStreamIDLength, len(id))
	}
	return nil
}

// checkEnvelope validates what the caller of an append provides. Types are checked by Registry.
func checkEnvelope(e *Event) error {
	if _, err := ulid.ParseStrict(e.ID); err != nil {
		return fmt.Errorf("%w: event ID is not a ULID", ErrInvalidEvent)
	}
	if len(e.Data) == 0 || !json.Valid(e.Data) {
		return fmt.Errorf("%w: %s %s: payload is not JSON", ErrInvalidEvent, e.Type, e.ID)
	}
	for _, s := range []string{e.CorrelationID, e.CausationID, e.Subject} {
		if len(s) > 256 || !utf8.ValidString(s) {
			return fmt.Errorf("%w: %s %s: correlation, causation or subject longer than 256 bytes or not UTF-8", ErrInvalidEvent, e.Type, e.ID)
		}
	}
	return nil
}
