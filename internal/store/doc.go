// Package store is eventfold's event store on DynamoDB: one item per event in the events table,
// partition key "pk" = stream ID, sort key "v" = version (1, 2, 3, ...). The stored layouts of
// the three tables are at the end of this file, attribute by attribute. [EventStore] is the port
// every implementation satisfies ([DynamoDB], [Memory], and crypto.SealingStore); the suite
// in package storetest is its contract.
//
// # Appends
//
// Appending event v+1 to a stream at version v is a PutItem of item (stream, v+1) under the
// condition attribute_not_exists(pk). Of all concurrent writers at the same expected version
// exactly one wins, and no version can ever be written twice.
//
// A version can never be skipped either: a write at expected version v > 0 is only made once the
// store knows that item (stream, v) exists. Events are never deleted, so that fact, once seen,
// stays true. The store keeps a bounded set of such facts from its own loads and appends. So the
// common command (load, then append one event) costs one Query and exactly one conditional
// PutItem: 1 WCU for an event up to 1 KB. When the fact is not known, a strongly consistent
// one-item Query checks it first, so that no expected version, however wrong, can leave a gap. A
// snapshot is no such fact.
//
// Only a restore of the events table to an earlier point takes events away. A load to the end of
// a stream that finds it shorter than known, or a table found missing (as while it is restored in
// place), corrects what the store knows. The restore procedure in the README starts functions
// cold as well.
//
// Appends of several events, or to several streams, are one TransactWriteItems: a Put per event
// and, for each stream whose expected version is not known to exist, a ConditionCheck on it. They
// are atomic and bounded by DynamoDB's transaction limits (100 items, 4 MB).
//
// # Idempotent retries
//
// Appends are idempotent by event ID. A failed condition returns the blocking item
// (ReturnValuesOnConditionCheckFailure=ALL_OLD). When it holds the very event being appended, the
// earlier attempt succeeded, and the retry returns its result without writing anything.
//
// # Claims and inserts
//
// An append can claim unique values or release them ([Claim]): uniqueness guards such as one user
// per email, keyed by a hash, never plaintext. Each is a Put or Delete on the claims table in the
// same transaction, under the condition that no other stream holds the value.
//
// An append can also create items in other tables ([Insert]: a new data subject's wrapped key),
// a Put under the condition that the item does not exist. An append with inserts or claims is
// always a transaction.
//
// # Snapshots
//
// Snapshots live in their own table, one per stream. Each is tagged with the aggregate's snapshot
// schema version and the ID of the event it ends with. A snapshot of another schema version is
// treated as absent, and so is one whose event is not in the stream at its version
// ([LoadHistory]).
//
// # Stored layouts
//
// The attribute names are exported ([AttrStream], ...) for the packages that read these tables
// directly (the stream consumers, projection rebuilds, restore and erasure). Names are short,
// because they count towards the 1 KB write unit. Times are stored as text in [TimeLayout].
package store

import "time"

// Attribute names of the events, snapshots and claims tables' items.
const (
	// AttrStream is the partition key of all three tables: the stream ID of an event or a
	// snapshot, the unique value of a claim. It is the partition key of an [Insert]'s table too.
	AttrStream = "pk"
	// AttrVersion is the events table's sort key, the event's version in its stream (a number);
	// in the snapshots table, the version of the stream the snapshot reaches.
	AttrVersion = "v"
	// AttrID is the event's ID, a ULID.
	AttrID = "id"
	// AttrType is the event's type, such as "UserRegistered".
	AttrType = "type"
	// AttrSchema is the schema version of the event's payload, or of the snapshot's.
	AttrSchema = "schema"
	// AttrAt is when the event was recorded, or the snapshot taken: text in [TimeLayout].
	AttrAt = "at"
	// AttrCorrelation is the event's correlation ID; absent when empty.
	AttrCorrelation = "corr"
	// AttrCausation is the event's causation ID; absent when empty.
	AttrCausation = "cause"
	// AttrSubject is the data subject of the event's or snapshot's personal data; absent when
	// there is none.
	AttrSubject = "subj"
	// AttrData is the payload, JSON as a string (sealed fields and all).
	AttrData = "data"
	// AttrEventID is, in a snapshot, the ID of the event at its version (see [Snapshot.EventID]).
	AttrEventID = "eventId"
	// AttrOwner is, in a claim, the stream that holds the unique value.
	AttrOwner = "owner"
)

// TimeLayout is how the store writes times: RFC 3339 in UTC with fixed-width nanoseconds, so
// stored times sort as text. Read them with time.RFC3339Nano.
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

// FormatTime returns t as the store writes times ([TimeLayout]).
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// item is the events table's item of one event. The tags are the Attr constants above.
type item struct {
	Stream  string `dynamodbav:"pk"`              // AttrStream: partition key
	Version int64  `dynamodbav:"v"`               // AttrVersion: sort key, 1, 2, 3, ...
	ID      string `dynamodbav:"id"`              // AttrID
	Type    string `dynamodbav:"type"`            // AttrType
	Schema  int    `dynamodbav:"schema"`          // AttrSchema, 1 or more
	At      string `dynamodbav:"at"`              // AttrAt, TimeLayout
	Corr    string `dynamodbav:"corr,omitempty"`  // AttrCorrelation
	Cause   string `dynamodbav:"cause,omitempty"` // AttrCausation
	Subject string `dynamodbav:"subj,omitempty"`  // AttrSubject
	Data    string `dynamodbav:"data"`            // AttrData
}

// snapshotItem is the snapshots table's item of a stream's snapshot, one per stream.
type snapshotItem struct {
	Stream  string `dynamodbav:"pk"`             // AttrStream: partition key
	Version int64  `dynamodbav:"v"`              // AttrVersion: the stream version it reaches
	EventID string `dynamodbav:"eventId"`        // AttrEventID: the event at Version
	Schema  int    `dynamodbav:"schema"`         // AttrSchema: the aggregate's snapshot schema
	At      string `dynamodbav:"at"`             // AttrAt: when taken, TimeLayout
	Subject string `dynamodbav:"subj,omitempty"` // AttrSubject
	Data    string `dynamodbav:"data"`           // AttrData: the state, sealed whole by crypto
}

// claimItem is the claims table's item of a unique value (see [Claim]); a released value has
// none.
type claimItem struct {
	Key   string `dynamodbav:"pk"`    // AttrStream: partition key, the value (a keyed hash)
	Owner string `dynamodbav:"owner"` // AttrOwner: the stream that holds it
}
