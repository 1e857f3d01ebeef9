package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// API is the part of the DynamoDB API the store uses; *dynamodb.Client implements it.
type API interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Config configures a DynamoDB store.
type Config struct {
	// EventsTable and SnapshotsTable are the tables' names.
	EventsTable    string
	SnapshotsTable string
	// ClaimsTable holds unique values claimed by streams (see Claim); needed only by appends
	// with claims.
	ClaimsTable string
	// Registry lists the event types the store accepts and reads. Required.
	Registry *Registry
	// Clock stamps recorded-at times; time.Now when nil.
	Clock func() time.Time
	// KnownStreams bounds how many streams' versions the store remembers to spare a read before
	// an append (see the package doc); 0 means 100,000 (a few MB), negative means none.
	KnownStreams int
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.EventsTable == "" {
		errs = append(errs, errors.New("store: EventsTable is required"))
	}
	if c.SnapshotsTable == "" {
		errs = append(errs, errors.New("store: SnapshotsTable is required"))
	}
	if c.Registry == nil {
		errs = append(errs, errors.New("store: Registry is required"))
	}
	return errors.Join(errs...)
}

// DynamoDB is the event store on DynamoDB. It is safe for concurrent use.
type DynamoDB struct {
	api       API
	events    string
	snapshots string
	claims    string
	reg       *Registry
	now       func() time.Time
	known     *known

	putCond   expression.Expression // attribute_not_exists(pk)
	checkCond expression.Expression // attribute_exists(pk)
}

// New returns a store on the given tables.
func New(api API, cfg Config) (*DynamoDB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	switch {
	case cfg.KnownStreams == 0:
		cfg.KnownStreams = 100_000
	case cfg.KnownStreams < 0:
		cfg.KnownStreams = 0
	}
	putCond, err := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name(AttrStream))).Build()
	if err != nil {
		return nil, err
	}
	checkCond, err := expression.NewBuilder().WithCondition(expression.AttributeExists(expression.Name(AttrStream))).Build()
	if err != nil {
		return nil, err
	}
	return &DynamoDB{
		api:       api,
		events:    cfg.EventsTable,
		snapshots: cfg.SnapshotsTable,
		claims:    cfg.ClaimsTable,
		reg:       cfg.Registry,
		now:       cfg.Clock,
		known:     newKnown(cfg.KnownStreams),
		putCond:   putCond,
		checkCond: checkCond,
	}, nil
}

// EventsTable is the name of the events table.
func (s *DynamoDB) EventsTable() string { return s.events }

// Append appends events to a stream that is at version expected (0 for a new stream) and returns
// the stream's new version and the events as stored. A single event is one conditional PutItem;
// several events, or any with claims or inserts, are one transaction. It returns a *ConflictError (ErrVersionConflict) when the stream is
// not at the expected version, and the errors of the package for invalid input, in both cases
// having written nothing. Retrying an append with the same event IDs after a lost response
// returns the first attempt's result and writes nothing.
func (s *DynamoDB) Append(ctx context.Context, streamID string, expected int64, events ...Event) (Appended, error) {
	res, err := s.AppendStreams(ctx, StreamAppend{StreamID: streamID, Expected: expected, Events: events})
	if err != nil {
		return Appended{}, err
	}
	return res[0], nil
}

// AppendStreams appends to several streams atomically: all events are written or none. Results
// are in the order of the appends. Errors are those of Append; a conflict names the first stream
// that was not at its expected version.
func (s *DynamoDB) AppendStreams(ctx context.Context, appends ...StreamAppend) ([]Appended, error) {
	batch, err := prepare(s.reg, s.now(), appends)
	if err != nil {
		return nil, err
	}
	if len(batch) == 1 && len(batch[0].events) == 1 && len(batch[0].claims) == 0 && len(batch[0].inserts) == 0 {
		res, err := s.putOne(ctx, batch[0])
		if err != nil {
			return nil, err
		}
		return []Appended{res}, nil
	}
	return s.transact(ctx, batch)
}

func (s *DynamoDB) putOne(ctx context.Context, p pending) (Appended, error) {
	if !s.known.exists(p.stream, p.expected) {
		head, err := s.head(ctx, p.stream)
		if err != nil {
			return Appended{}, err
		}
		if head < p.expected {
			return Appended{}, &ConflictError{StreamID: p.stream, Expected: p.expected, Actual: head}
		}
		// head >= expected, so version expected exists; if head > expected the put below fails
		// and tells a retry of this very append from a conflict.
	}
	_, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(s.events),
		Item:                                p.items[0],
		ConditionExpression:                 s.putCond.Condition(),
		ExpressionAttributeNames:            s.putCond.Names(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		if stored, ok := sameEvents(p, []map[string]types.AttributeValue{failed.Item}); ok {
			s.known.saw(p.stream, p.expected+1)
			return p.appended(stored), nil
		}
		return Appended{}, s.conflict(ctx, p)
	}
	if err != nil {
		return Appended{}, fmt.Errorf("append to %s at %d: %w", p.stream, p.expected, s.notice(err))
	}
	s.known.saw(p.stream, p.expected+1)
	return p.appended(p.events), nil
}

// action says what one item of a transaction is for.
type action struct {
	stream int // index into the batch
	event  int // index into its events, or -1
	claim  int // index into its claims, or -1
	insert int // index into its inserts, or -1; all three -1: the check that the expected version exists
}

func (s *DynamoDB) transact(ctx context.Context, batch []pending) ([]Appended, error) {
	var (
		items   []types.TransactWriteItem
		actions []action
	)
	for si, p := range batch {
		if !s.known.exists(p.stream, p.expected) {
			items = append(items, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
				TableName:                aws.String(s.events),
				Key:                      map[string]types.AttributeValue{AttrStream: &types.AttributeValueMemberS{Value: p.stream}, AttrVersion: versionValue(p.expected)},
				ConditionExpression:      s.checkCond.Condition(),
				ExpressionAttributeNames: s.checkCond.Names(),
			}})
			actions = append(actions, action{si, -1, -1, -1})
		}
		for ei, it := range p.items {
			items = append(items, types.TransactWriteItem{Put: &types.Put{
				TableName:                           aws.String(s.events),
				Item:                                it,
				ConditionExpression:                 s.putCond.Condition(),
				ExpressionAttributeNames:            s.putCond.Names(),
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}})
			actions = append(actions, action{si, ei, -1, -1})
		}
		for ci, c := range p.claims {
			item, err := s.claimItem(p.stream, c)
			if err != nil {
				return nil, err
			}
			items = append(items, item)
			actions = append(actions, action{si, -1, ci, -1})
		}
		for ii, in := range p.inserts {
			item, err := s.insertItem(in)
			if err != nil {
				return nil, fmt.Errorf("append to %s: %w", p.stream, err)
			}
			items = append(items, item)
			actions = append(actions, action{si, -1, -1, ii})
		}
	}
	err := s.transactWrite(ctx, items)
	var canceled *types.TransactionCanceledException
	if errors.As(err, &canceled) && len(canceled.CancellationReasons) == len(items) {
		return s.canceled(ctx, batch, actions, canceled.CancellationReasons, err)
	}
	if err != nil {
		return nil, fmt.Errorf("append to %d streams: %w", len(batch), s.notice(err))
	}
	out := make([]Appended, len(batch))
	for i, p := range batch {
		s.known.saw(p.stream, p.expected+int64(len(p.events)))
		out[i] = p.appended(p.events)
	}
	return out, nil
}

// maxTransactionConflicts bounds how often a transaction canceled only because another one was
// writing one of its items at the same moment is sent again.
const maxTransactionConflicts = 5

// transactWrite writes items in one transaction. DynamoDB cancels a transaction that races
// another on one of its items (TransactionConflict, which DynamoDB Local never does): nothing was
// written, so the same items are sent again, with a fresh client request token, after a short
// jittered wait, a bounded number of times. Other cancellations are returned as they are.
func (s *DynamoDB) transactWrite(ctx context.Context, items []types.TransactWriteItem) error {
	for attempt := 1; ; attempt++ {
		_, err := s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		var canceled *types.TransactionCanceledException
		if !errors.As(err, &canceled) || !onlyConflicts(canceled.CancellationReasons) || attempt >= maxTransactionConflicts {
			return err
		}
		wait := time.NewTimer(time.Duration(rand.Int64N(int64(10*time.Millisecond)<<attempt)) + time.Millisecond)
		select {
		case <-ctx.Done():
			wait.Stop()
			return err
		case <-wait.C:
		}
	}
}

// onlyConflicts reports whether a transaction was canceled for racing another and nothing else.
func onlyConflicts(reasons []types.CancellationReason) bool {
	conflict := false
	for _, r := range reasons {
		switch aws.ToString(r.Code) {
		case "", "None":
		case "TransactionConflict":
			conflict = true
		default:
			return false
		}
	}
	return conflict
}

// canceled makes sense of a canceled transaction: a retry of one that committed (every put
// blocked by the very event it carries), a version conflict, a claim another stream holds, an
// insert whose item exists, or another failure.
func (s *DynamoDB) canceled(ctx context.Context, batch []pending, actions []action, reasons []types.CancellationReason, err error) ([]Appended, error) {
	blocking := make([][]map[string]types.AttributeValue, len(batch))
	for i, p := range batch {
		blocking[i] = make([]map[string]types.AttributeValue, len(p.events))
	}
	conflicted := -1
	var (
		claimed  *ClaimError
		inserted *InsertError
	)
	for i, r := range reasons {
		code := aws.ToString(r.Code)
		if code == "" || code == "None" {
			continue
		}
		if code != "ConditionalCheckFailed" {
			return nil, fmt.Errorf("append to %d streams: %w", len(batch), err)
		}
		a := actions[i]
		switch {
		case a.insert >= 0:
			if inserted == nil {
				in := batch[a.stream].inserts[a.insert]
				inserted = &InsertError{StreamID: batch[a.stream].stream, Table: in.Table, Key: in.Key}
			}
		case a.claim >= 0:
			if claimed == nil {
				claimed = &ClaimError{StreamID: batch[a.stream].stream, Key: batch[a.stream].claims[a.claim].Key}
			}
		case a.event >= 0:
			blocking[a.stream][a.event] = r.Item
			fallthrough
		default:
			if conflicted < 0 {
				conflicted = a.stream
			}
		}
	}
	retried := true
	out := make([]Appended, len(batch))
	for i, p := range batch {
		stored, ok := sameEvents(p, blocking[i])
		if !ok {
			retried = false
			break
		}
		out[i] = p.appended(stored)
	}
	if retried {
		for _, p := range batch {
			s.known.saw(p.stream, p.expected+int64(len(p.events)))
		}
		return out, nil
	}
	switch {
	case conflicted >= 0:
		return nil, s.conflict(ctx, batch[conflicted])
	case claimed != nil:
		return nil, claimed
	case inserted != nil:
		return nil, inserted
	default:
		return nil, fmt.Errorf("append to %d streams: %w", len(batch), err)
	}
}

// claimItem is the transaction item that takes or gives up a unique key for stream: a Put or a
// Delete under the condition that no other stream holds the key.
func (s *DynamoDB) claimItem(stream string, c Claim) (types.TransactWriteItem, error) {
	if s.claims == "" {
		return types.TransactWriteItem{}, fmt.Errorf("append to %s: %w", stream, ErrNoClaimsTable)
	}
	free := expression.AttributeNotExists(expression.Name(AttrStream)).
		Or(expression.Name(AttrOwner).Equal(expression.Value(stream)))
	expr, err := expression.NewBuilder().WithCondition(free).Build()
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	key := map[string]types.AttributeValue{AttrStream: &types.AttributeValueMemberS{Value: c.Key}}
	if c.Release {
		return types.TransactWriteItem{Delete: &types.Delete{
			TableName: aws.String(s.claims), Key: key,
			ConditionExpression: expr.Condition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		}}, nil
	}
	key[AttrOwner] = &types.AttributeValueMemberS{Value: stream}
	return types.TransactWriteItem{Put: &types.Put{
		TableName: aws.String(s.claims), Item: key,
		ConditionExpression: expr.Condition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	}}, nil
}

// insertItem is the transaction item of an insert: a Put under the condition that no item of its
// key exists.
func (s *DynamoDB) insertItem(in Insert) (types.TransactWriteItem, error) {
	item, err := attributevalue.MarshalMap(in.Attrs)
	if err != nil {
		return types.TransactWriteItem{}, fmt.Errorf("%w: insert into %s: %v", ErrInvalidEvent, in.Table, err)
	}
	item[AttrStream] = &types.AttributeValueMemberS{Value: in.Key}
	return types.TransactWriteItem{Put: &types.Put{
		TableName:                aws.String(in.Table),
		Item:                     item,
		ConditionExpression:      s.putCond.Condition(),
		ExpressionAttributeNames: s.putCond.Names(),
	}}, nil
}

// sameEvents reports whether the items that blocked an append hold the append's own events, each
// at its version: then an earlier attempt of this append was written, and these are its events.
func sameEvents(p pending, items []map[string]types.AttributeValue) ([]Event, bool) {
	if len(items) != len(p.events) {
		return nil, false
	}
	stored := make([]Event, len(items))
	for i, it := range items {
		if it == nil {
			return nil, false
		}
		e, err := DecodeItem(it)
		if err != nil || e.ID != p.events[i].ID || e.StreamID != p.stream || e.Version != p.events[i].Version {
			return nil, false
		}
		stored[i] = e
	}
	return stored, true
}

// conflict reads the stream's version for the conflict error.
func (s *DynamoDB) conflict(ctx context.Context, p pending) error {
	head, err := s.head(ctx, p.stream)
	if err != nil {
		// Still a conflict, of unknown actual version; the read's error is kept alongside.
		return errors.Join(&ConflictError{StreamID: p.stream, Expected: p.expected, Actual: -1}, err)
	}
	s.known.saw(p.stream, head)
	return &ConflictError{StreamID: p.stream, Expected: p.expected, Actual: head}
}

// head returns the stream's current version, 0 for a stream with no events: one strongly
// consistent Query of at most one key.
func (s *DynamoDB) head(ctx context.Context, stream string) (int64, error) {
	expr, err := expression.NewBuilder().
		WithKeyCondition(expression.Key(AttrStream).Equal(expression.Value(stream))).
		WithProjection(expression.NamesList(expression.Name(AttrVersion))).Build()
	if err != nil {
		return 0, err
	}
	out, err := s.api.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(s.events),
		KeyConditionExpression:    expr.KeyCondition(),
		ProjectionExpression:      expr.Projection(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(1),
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		return 0, fmt.Errorf("read version of %s: %w", stream, s.notice(err))
	}
	if len(out.Items) == 0 {
		return 0, nil
	}
	var v struct {
		V int64 `dynamodbav:"v"`
	}
	if err := attributevalue.UnmarshalMap(out.Items[0], &v); err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrCorrupt, stream, err)
	}
	return v.V, nil
}

// Load returns the events of a stream within span, in version order, upcast to their types'
// current schema versions. A stream with no events gives no events and no error. Reads are
// strongly consistent and follow DynamoDB's pages past 1 MB. It returns ErrCorrupt,
// ErrUnknownEventType or ErrUpcast, wrapped, for stored events it cannot read.
func (s *DynamoDB) Load(ctx context.Context, streamID string, span Span) ([]Event, error) {
	if err := ValidStreamID(streamID); err != nil {
		return nil, err
	}
	from, to := max(span.From, 1), span.To
	if to == 0 {
		to = math.MaxInt64
	}
	if to < from {
		return nil, nil
	}
	expr, err := expression.NewBuilder().WithKeyCondition(
		expression.Key(AttrStream).Equal(expression.Value(streamID)).
			And(expression.Key(AttrVersion).Between(expression.Value(from), expression.Value(to)))).Build()
	if err != nil {
		return nil, err
	}
	pages := dynamodb.NewQueryPaginator(s.api, &dynamodb.QueryInput{
		TableName:                 aws.String(s.events),
		KeyConditionExpression:    expr.KeyCondition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		ConsistentRead:            aws.Bool(true),
	})
	var events []Event
	next := from
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("load %s from %d: %w", streamID, next, s.notice(err))
		}
		for _, it := range page.Items {
			e, stop, err := s.decode(it, streamID, next, span.AsOf)
			if err != nil {
				return nil, err
			}
			s.known.saw(streamID, e.Version)
			if stop {
				return events, nil
			}
			events = append(events, e)
			next++
		}
	}
	if span.To == 0 && span.AsOf.IsZero() {
		// A strongly consistent read to the end: the stream's head is next-1, and if that is
		// below what is known (the table was restored to an earlier point), the known fact is
		// false. Without an event read, whether even from-1 exists is not known.
		if next == from {
			if s.known.exists(streamID, from) {
				s.known.forget(streamID)
			}
		} else {
			s.known.atMost(streamID, next-1)
		}
	}
	return events, nil
}

// notice clears what the store knows of streams when err says the events table is not there
// (it is being restored in place), and returns err.
func (s *DynamoDB) notice(err error) error {
	var missing *types.ResourceNotFoundException
	if errors.As(err, &missing) {
		s.known.clear()
	}
	return err
}

// decode decodes and upcasts the item expected at version want; stop reports an event recorded
// after asOf, where a temporal load ends.
func (s *DynamoDB) decode(it map[string]types.AttributeValue, stream string, want int64, asOf time.Time) (Event, bool, error) {
	e, err := DecodeItem(it)
	if err != nil {
		return Event{}, false, fmt.Errorf("load %s at %d: %w", stream, want, err)
	}
	if e.Version != want {
		return Event{}, false, fmt.Errorf("load %s: %w: version %d follows %d", stream, ErrCorrupt, e.Version, want-1)
	}
	if !asOf.IsZero() && e.RecordedAt.After(asOf) {
		return e, true, nil
	}
	if err := s.reg.upcast(&e); err != nil {
		return Event{}, false, fmt.Errorf("load: %w", err)
	}
	return e, false, nil
}

// SaveSnapshot stores snap as its stream's snapshot unless a newer one of the same schema
// version is already there (then it does nothing and returns nil). A snapshot of a version the
// stream has not reached is refused with ErrInvalidEvent, so snapshots can be trusted as proof
// that their version exists.
func (s *DynamoDB) SaveSnapshot(ctx context.Context, snap Snapshot) error {
	if err := checkSnapshot(snap); err != nil {
		return err
	}
	if !s.known.exists(snap.StreamID, snap.Version) {
		head, err := s.head(ctx, snap.StreamID)
		if err != nil {
			return err
		}
		if head < snap.Version {
			return fmt.Errorf("snapshot of %s: %w: version %d is ahead of the stream (%d)", snap.StreamID, ErrInvalidEvent, snap.Version, head)
		}
	}
	it, err := attributevalue.MarshalMap(snapshotItem{
		Stream:  snap.StreamID,
		Version: snap.Version,
		EventID: snap.EventID,
		Schema:  snap.SchemaVersion,
		At:      s.now().UTC().Format(TimeLayout),
		Subject: snap.Subject,
		Data:    string(snap.Data),
	})
	if err != nil {
		return fmt.Errorf("snapshot of %s: %w", snap.StreamID, err)
	}
	if n := itemSize(it); n > MaxItemSize {
		return fmt.Errorf("snapshot of %s: %w: %d bytes, the item limit is %d", snap.StreamID, ErrTooLarge, n, MaxItemSize)
	}
	newer := expression.AttributeNotExists(expression.Name(AttrStream)).
		Or(expression.Name(AttrVersion).LessThan(expression.Value(snap.Version))).
		Or(expression.Name("schema").NotEqual(expression.Value(snap.SchemaVersion)))
	expr, err := expression.NewBuilder().WithCondition(newer).Build()
	if err != nil {
		return err
	}
	_, err = s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(s.snapshots),
		Item:                      it,
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	var failed *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &failed) {
		return fmt.Errorf("snapshot of %s at %d: %w", snap.StreamID, snap.Version, err)
	}
	return nil
}

// LoadSnapshot returns the stream's snapshot of the given schema version, or ErrNoSnapshot when
// there is none or the one stored is of another schema version (stale).
func (s *DynamoDB) LoadSnapshot(ctx context.Context, streamID string, schema int) (Snapshot, error) {
	if err := ValidStreamID(streamID); err != nil {
		return Snapshot{}, err
	}
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.snapshots),
		Key:       map[string]types.AttributeValue{AttrStream: &types.AttributeValueMemberS{Value: streamID}},
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("load snapshot of %s: %w", streamID, err)
	}
	if out.Item == nil {
		return Snapshot{}, ErrNoSnapshot
	}
	var it snapshotItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return Snapshot{}, fmt.Errorf("load snapshot of %s: %w: %v", streamID, ErrCorrupt, err)
	}
	if it.Schema != schema {
		return Snapshot{}, ErrNoSnapshot
	}
	at, err := time.Parse(time.RFC3339Nano, it.At)
	if err != nil || it.Version < 1 || it.Stream != streamID {
		return Snapshot{}, fmt.Errorf("load snapshot of %s: %w", streamID, ErrCorrupt)
	}
	// The snapshot is no proof that its version exists in this table (the table may have been
	// restored to an earlier point since): LoadHistory checks that against the events.
	return Snapshot{StreamID: it.Stream, Version: it.Version, EventID: it.EventID, SchemaVersion: it.Schema, TakenAt: at, Subject: it.Subject, Data: []byte(it.Data)}, nil
}
