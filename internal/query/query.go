// Package query is the read side's application layer: it serves the read models the projector
// keeps, waits (boundedly) for a read model to reach a version the caller has written
// (read-your-writes), folds the event store for "as of" questions, and lists a stream's audit
// trail.
//
// Every query a client asks takes the caller (package auth names it; httpapi reads it from the
// request), and answers only what the caller may see:
//
//   - A user sees their own profile (User, UserAsOf) and their own orders (OrdersByCustomer):
//     another user's ID is ErrForbidden, before anything is read, since the request alone shows
//     it is someone else's.
//   - A user sees an account they own and an order (and its fulfilment run) they placed; someone
//     else's answers exactly as one that does not exist: ErrNotFound, or ErrNoVersion when a
//     version was asked for, with a zero value (so no version, no ETag), since that refusal
//     depends on stored data and must reveal none of it.
//   - Any caller sees inventory items.
//   - An operator sees all of these, and alone lists users (UsersByStatus) and reads audit
//     trails (Audit); a user asking those is ErrForbidden.
//   - No caller at all (the zero auth.Caller) is ErrUnauthenticated.
package query

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/eventfold/eventfold/internal/auth"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/store"
)

var (
	// ErrNotFound is returned for a read model that does not exist (yet), for a stream ID that
	// cannot exist, and for a time before a stream's first event.
	ErrNotFound = domain.ErrNotFound
	// ErrNoVersion is returned, at once, for a wait for a version the event store does not have:
	// the stream (if there is one) has not reached it, so no wait could bring it. It wraps
	// ErrNotFound.
	ErrNoVersion = fmt.Errorf("%w: the stream has no such version", domain.ErrNotFound)
	// ErrBehind is returned when the event store has the version asked for but the read model has
	// not reached it within the wait allowed.
	ErrBehind = errors.New("the read model has not reached that version yet")
	// ErrForbidden is returned when the caller may not ask this, as the request alone shows
	// (another user's ID, a user asking an operator's query); nothing was read.
	ErrForbidden = auth.ErrForbidden
	// ErrUnauthenticated is returned for a query without a caller; nothing was read.
	ErrUnauthenticated = auth.ErrUnauthenticated
	// ErrBadCursor is returned for a pagination cursor this service did not issue for that list
	// (another list's, another stream's, or altered).
	ErrBadCursor = errors.New("bad cursor")
)

// User, Account, Item and Order are the read models, as served. Version is the version of the
// source stream they reflect. Their dynamodbav tags are the attribute names package projection
// defines (projection.AttrUserID, ...); a test holds them to those.
type (
	User struct {
		ID     string `json:"id" dynamodbav:"userId"`
		Email  string `json:"email,omitempty" dynamodbav:"email"`
		Name   string `json:"name,omitempty" dynamodbav:"name"`
		Status string `json:"status" dynamodbav:"userStatus"`
		// Redacted says the user's personal data was erased: it is not shown, not empty.
		Redacted bool  `json:"redacted,omitempty" dynamodbav:"-"`
		Version  int64 `json:"version" dynamodbav:"v"`
	}
	Account struct {
		ID       string `json:"id" dynamodbav:"accountId"`
		OwnerID  string `json:"ownerId" dynamodbav:"ownerId"`
		Currency string `json:"currency" dynamodbav:"currency"`
		Balance  int64  `json:"balance" dynamodbav:"balance"`
		Version  int64  `json:"version" dynamodbav:"v"`
	}
	Item struct {
		SKU       string `json:"sku" dynamodbav:"sku"`
		OnHand    int64  `json:"onHand" dynamodbav:"onHand"`
		Reserved  int64  `json:"reserved" dynamodbav:"reserved"`
		Available int64  `json:"available" dynamodbav:"-"`
		Version   int64  `json:"version" dynamodbav:"v"`
	}
	Order struct {
		ID           string `json:"id" dynamodbav:"orderId"`
		CustomerID   string `json:"customerId" dynamodbav:"customerId"`
		Status       string `json:"status" dynamodbav:"orderStatus"`
		Currency     string `json:"currency" dynamodbav:"currency"`
		Total        int64  `json:"total" dynamodbav:"total"`
		Lines        int    `json:"lines" dynamodbav:"lineCount"`
		CancelReason string `json:"cancelReason,omitempty" dynamodbav:"cancelReason"`
		Version      int64  `json:"version" dynamodbav:"v"`
	}
)

// Entry is one event of a stream's audit trail: its envelope, never its payload.
type Entry struct {
	ID            string    `json:"id"`
	Version       int64     `json:"version"`
	Type          string    `json:"type"`
	SchemaVersion int       `json:"schemaVersion"`
	RecordedAt    time.Time `json:"recordedAt"`
	CorrelationID string    `json:"correlationId,omitempty"`
	CausationID   string    `json:"causationId,omitempty"`
}

// API is the part of DynamoDB the queries use.
type API interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Events is the event store the temporal queries and the audit trail read.
type Events interface {
	Load(ctx context.Context, streamID string, span store.Span) ([]store.Event, error)
}

// Service answers queries. It is safe for concurrent use.
type Service struct {
	api       API
	table     string
	events    Events
	envelopes Events
	// wait bounds read-your-writes waits; poll is how often a wait looks again.
	wait, poll time.Duration
}

// Config configures a Service.
type Config struct {
	// API reads the read-model table.
	API API
	// Table is the read-model table.
	Table string
	// Events is the event store the temporal queries read: the sealing store, which opens
	// personal fields.
	Events Events
	// Envelopes is the event store read where no payload is shown: the audit trail and the
	// check that a version exists. Give it the raw store, so those paths open no personal field
	// (no KMS call, no person's data in the function's memory); nil means Events.
	Envelopes Events
	// MaxWait bounds read-your-writes waits; 0 means 2 s.
	MaxWait time.Duration
}

// New returns a Service on cfg's read-model table.
func New(cfg Config) *Service {
	maxWait := cfg.MaxWait
	if maxWait <= 0 {
		maxWait = 2 * time.Second
	}
	envelopes := cfg.Envelopes
	if envelopes == nil {
		envelopes = cfg.Events
	}
	return &Service{api: cfg.API, table: cfg.Table, events: cfg.Events, envelopes: envelopes, wait: maxWait, poll: 50 * time.Millisecond}
}

// get reads the read model of stream into v, waiting up to the service's bound for it to reach
// minVersion (0: no wait). It returns ErrNotFound, ErrNoVersion or ErrBehind. visible, when not
// nil, is asked once the event store shows the version exists and before any wait, with the read
// model's item at an earlier version (nil when it has none), and its error is returned instead:
// so a stream the caller may not see answers at once, as one that does not exist, and never
// ErrBehind, which would tell it has that version.
//
// Its reads: one GetItem when the read model already has minVersion (no event store read); else
// one event store read of version minVersion (and one of its first event when visible needs it
// and the read model has no item of it yet), then, when the version exists, a GetItem every poll
// until the read model has it or the bound passes. A version the store does not have is answered
// at once: waiting cannot bring it.
func (s *Service) get(ctx context.Context, stream string, minVersion int64, v any, visible func(ctx context.Context, stale map[string]types.AttributeValue) error) error {
	if store.ValidStreamID(stream) != nil {
		return ErrNotFound
	}
	deadline := time.Now().Add(s.wait)
	for checked := false; ; {
		item, reached, err := s.readModel(ctx, stream, minVersion)
		if err != nil {
			return err
		}
		if reached {
			return attributevalue.UnmarshalMap(item, v)
		}
		if minVersion == 0 {
			return ErrNotFound
		}
		if !checked {
			// Behind, or waiting for what will never come? The event store knows.
			events, err := s.envelopes.Load(ctx, stream, store.Span{From: minVersion, To: minVersion})
			if err != nil {
				return err
			}
			if len(events) == 0 {
				return ErrNoVersion
			}
			if visible != nil {
				if err := visible(ctx, item); err != nil {
					return err
				}
			}
			checked = true
		}
		if time.Now().After(deadline) {
			return ErrBehind
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.poll):
		}
	}
}

// readModel returns the read-model item of stream, nil when there is none, and whether it has
// reached minVersion.
func (s *Service) readModel(ctx context.Context, stream string, minVersion int64) (map[string]types.AttributeValue, bool, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table),
		Key:       map[string]types.AttributeValue{projection.AttrKey: &types.AttributeValueMemberS{Value: stream}},
		// A caller waiting for its own write wants the latest; others take the cheaper read.
		ConsistentRead: aws.Bool(minVersion > 0),
	})
	if err != nil {
		return nil, false, fmt.Errorf("read model of %s: %w", stream, err)
	}
	if out.Item == nil {
		return nil, false, nil
	}
	var at struct {
		V int64 `dynamodbav:"v"`
	}
	if err := attributevalue.UnmarshalMap(out.Item, &at); err != nil {
		return nil, false, fmt.Errorf("read model of %s: %w", stream, err)
	}
	return out.Item, at.V >= minVersion, nil
}

// User returns a user's profile: the caller's own, or any to an operator.
func (s *Service) User(ctx context.Context, caller auth.Caller, id string, minVersion int64) (User, error) {
	if err := caller.MayActOn(id); err != nil {
		return User{}, err
	}
	var u User
	err := s.get(ctx, "user-"+id, minVersion, &u, nil)
	u.Redacted = u.Status == string(domain.UserStatusErased)
	return u, err
}

// Account returns an account's balance, to its owner or an operator (see the package doc).
func (s *Service) Account(ctx context.Context, caller auth.Caller, id string, minVersion int64) (Account, error) {
	if !caller.Authenticated() {
		return Account{}, ErrUnauthenticated
	}
	var a Account
	stream := "account-" + id
	if err := s.get(ctx, stream, minVersion, &a, s.owned(caller, stream, "ownerId", minVersion)); err != nil {
		return a, err
	}
	if !caller.Owns(a.OwnerID) {
		return Account{}, hidden(minVersion)
	}
	return a, nil
}

// Item returns an inventory item's stock levels, to any caller.
func (s *Service) Item(ctx context.Context, caller auth.Caller, sku string, minVersion int64) (Item, error) {
	if !caller.Authenticated() {
		return Item{}, ErrUnauthenticated
	}
	var i Item
	err := s.get(ctx, "inventory-"+sku, minVersion, &i, nil)
	i.Available = i.OnHand - i.Reserved
	return i, err
}

// Order returns an order's summary, to its customer or an operator (see the package doc).
func (s *Service) Order(ctx context.Context, caller auth.Caller, id string, minVersion int64) (Order, error) {
	if !caller.Authenticated() {
		return Order{}, ErrUnauthenticated
	}
	var o Order
	stream := "order-" + id
	if err := s.get(ctx, stream, minVersion, &o, s.owned(caller, stream, "customerId", minVersion)); err != nil {
		return o, err
	}
	if !caller.Owns(o.CustomerID) {
		return Order{}, hidden(minVersion)
	}
	return o, nil
}

// owned is get's visible for a stream whose owner its first event names in the field owner
// (AccountOpened's ownerId, OrderPlaced's customerId; the read model's attribute of the same
// name): hidden(minVersion) unless the caller owns it. The owner never changes, so a read-model
// item at an earlier version names it; without one, the stream's first event does. get asks it
// only when the read model lags behind a version the stream has; the temporal queries ask it
// (with no item) before they fold, so that someone else's events are not opened (their personal
// fields decrypted) to refuse them. An operator is not asked about: nothing is read.
func (s *Service) owned(caller auth.Caller, stream, owner string, minVersion int64) func(context.Context, map[string]types.AttributeValue) error {
	return func(ctx context.Context, stale map[string]types.AttributeValue) error {
		if caller.Operator {
			return nil
		}
		var id string
		var err error
		if a, ok := stale[owner].(*types.AttributeValueMemberS); ok {
			id = a.Value
		} else if id, err = s.firstString(ctx, stream, owner); err != nil {
			return err
		}
		if !caller.Owns(id) {
			return hidden(minVersion)
		}
		return nil
	}
}

// hidden is the error of a read of what the caller may not see: what a read of a stream that
// does not exist returns, with minVersion or without.
func hidden(minVersion int64) error {
	if minVersion > 0 {
		return ErrNoVersion
	}
	return ErrNotFound
}

// fold folds a stream's events recorded up to t, and returns the state, its version, and
// whether personal data in it was erased (shredded events).
func fold[S store.Evolver[S, domain.Event]](ctx context.Context, s *Service, stream string, t time.Time) (S, int64, bool, error) {
	var state S
	if store.ValidStreamID(stream) != nil {
		return state, 0, false, ErrNotFound
	}
	events, err := s.events.Load(ctx, stream, store.Span{AsOf: t})
	if err != nil {
		return state, 0, false, err
	}
	if state, err = store.Fold(state, events, domain.Decode); err != nil {
		return state, 0, false, err
	}
	if len(events) == 0 {
		return state, 0, false, ErrNotFound
	}
	shredded := slices.ContainsFunc(events, func(e store.Event) bool { return e.Shredded })
	return state, int64(len(events)), shredded, nil
}

// UserAsOf is a user's profile as it stood at t, folded from the event store: the caller's own,
// or any to an operator.
func (s *Service) UserAsOf(ctx context.Context, caller auth.Caller, id string, t time.Time) (User, error) {
	if err := caller.MayActOn(id); err != nil {
		return User{}, err
	}
	u, v, shredded, err := fold[domain.User](ctx, s, "user-"+id, t)
	out := User{ID: u.ID, Email: u.Email, Name: u.Name, Status: string(u.Status), Version: v}
	if shredded {
		out.Email, out.Name, out.Redacted = "", "", true
	}
	return out, err
}

// AccountAsOf is an account as it stood at t, folded from the event store, to its owner or an
// operator; someone else's is ErrNotFound, as one that did not exist then, decided from the
// account's first envelope before any event is opened.
func (s *Service) AccountAsOf(ctx context.Context, caller auth.Caller, id string, t time.Time) (Account, error) {
	if !caller.Authenticated() {
		return Account{}, ErrUnauthenticated
	}
	stream := "account-" + id
	if err := s.owned(caller, stream, "ownerId", 0)(ctx, nil); err != nil {
		return Account{}, err
	}
	a, v, _, err := fold[domain.Account](ctx, s, stream, t)
	if err != nil {
		return Account{}, err
	}
	if !caller.Owns(a.OwnerID) {
		return Account{}, ErrNotFound
	}
	return Account{ID: a.ID, OwnerID: a.OwnerID, Currency: a.Currency, Balance: a.Balance, Version: v}, nil
}

// ItemAsOf is an inventory item as it stood at t, folded from the event store, to any caller.
func (s *Service) ItemAsOf(ctx context.Context, caller auth.Caller, sku string, t time.Time) (Item, error) {
	if !caller.Authenticated() {
		return Item{}, ErrUnauthenticated
	}
	i, v, _, err := fold[domain.Item](ctx, s, "inventory-"+sku, t)
	return Item{SKU: i.SKU, OnHand: i.OnHand, Reserved: i.Reserved, Available: i.Available(), Version: v}, err
}

// OrderAsOf is an order as it stood at t, folded from the event store, to its customer or an
// operator; someone else's is ErrNotFound, as one that did not exist then, decided from the
// order's first envelope before any event (whose shipping address is the customer's personal
// data) is opened.
func (s *Service) OrderAsOf(ctx context.Context, caller auth.Caller, id string, t time.Time) (Order, error) {
	if !caller.Authenticated() {
		return Order{}, ErrUnauthenticated
	}
	stream := "order-" + id
	if err := s.owned(caller, stream, "customerId", 0)(ctx, nil); err != nil {
		return Order{}, err
	}
	o, v, _, err := fold[domain.Order](ctx, s, stream, t)
	if err != nil {
		return Order{}, err
	}
	if !caller.Owns(o.CustomerID) {
		return Order{}, ErrNotFound
	}
	return Order{ID: o.ID, CustomerID: o.CustomerID, Status: string(o.Status), Currency: o.Currency, Total: o.Total,
		Lines: len(o.Lines), CancelReason: o.CancelReason, Version: v}, nil
}

// Trail is a page of a stream's audit trail and the cursor of the next one ("" on the last page).
type Trail struct {
	Events []Entry `json:"events"`
	Next   string  `json:"next,omitempty"`
}

// Audit lists up to limit events of a stream, in version order, from version from, or from where
// cursor (a Trail.Next of the same stream) says: the envelopes, not the payloads. It returns
// ErrNotFound for a stream ID that cannot exist and ErrBadCursor for a cursor it did not issue
// for this stream. Each page is one read of at most limit+1 events; the extra one only tells
// whether a next page exists. Only an operator may read it (else ErrForbidden).
func (s *Service) Audit(ctx context.Context, caller auth.Caller, streamID string, from int64, cursor string, limit int) (Trail, error) {
	if err := caller.AsOperator(); err != nil {
		return Trail{}, err
	}
	if store.ValidStreamID(streamID) != nil {
		return Trail{}, ErrNotFound
	}
	if cursor != "" {
		var err error
		if from, err = decodeAuditCursor(cursor, streamID); err != nil {
			return Trail{}, err
		}
	}
	from, limit = max(from, 1), max(limit, 1)
	events, err := s.envelopes.Load(ctx, streamID, store.Span{From: from, To: from + int64(limit)})
	if err != nil {
		return Trail{}, err
	}
	t := Trail{Events: make([]Entry, 0, min(len(events), limit))}
	if len(events) > limit {
		events = events[:limit]
		t.Next = encodeAuditCursor(streamID, from+int64(limit))
	}
	for _, e := range events {
		t.Events = append(t.Events, Entry{ID: e.ID, Version: e.Version, Type: e.Type, SchemaVersion: e.SchemaVersion,
			RecordedAt: e.RecordedAt, CorrelationID: e.CorrelationID, CausationID: e.CausationID})
	}
	return t, nil
}

// auditCursor is where the next page of a stream's audit trail starts. Its fields are unlike any
// list cursor's, so neither kind decodes as the other.
type auditCursor struct {
	Stream string `json:"stream"`
	From   int64  `json:"from"`
}

func encodeAuditCursor(stream string, from int64) string {
	b, _ := json.Marshal(auditCursor{Stream: stream, From: from})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeAuditCursor reads a cursor of stream's audit trail: exactly the fields encodeAuditCursor
// writes, naming that stream and a version after the first.
func decodeAuditCursor(cursor, stream string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return 0, ErrBadCursor
	}
	var c auditCursor
	// Strictly, as list cursors and request bodies are read: a name twice is not the last one,
	// a name in another case is not the name, and nothing follows the object.
	if jsonv2.Unmarshal(b, &c, strictCursor) != nil || c.Stream != stream || c.From < 2 || c.From > maxVersion {
		return 0, ErrBadCursor
	}
	return c.From, nil
}

// strictCursor are the options cursors are read with: exact names, each once, none unknown, valid
// UTF-8.
var strictCursor = jsonv2.JoinOptions(
	jsonv2.MatchCaseInsensitiveNames(false),
	jsonv2.RejectUnknownMembers(true),
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(false),
)

// maxVersion is the largest version a query accepts: 2^53, the largest integer every JSON client
// reads exactly.
const maxVersion = 1 << 53

// Page is a page of a list and the cursor of the next one ("" on the last page).
type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// UsersByStatus lists users with the given status, limit at a time. Only an operator may (else
// ErrForbidden).
func (s *Service) UsersByStatus(ctx context.Context, caller auth.Caller, status, cursor string, limit int) (Page[User], error) {
	if err := caller.AsOperator(); err != nil {
		return Page[User]{}, err
	}
	return list[User](ctx, s, projection.IndexUsersByStatus, projection.AttrUserStatus, status, cursor, limit)
}

// OrdersByCustomer lists a customer's orders, limit at a time: the caller's own, or anyone's to an
// operator.
func (s *Service) OrdersByCustomer(ctx context.Context, caller auth.Caller, customerID, cursor string, limit int) (Page[Order], error) {
	if err := caller.MayActOn(customerID); err != nil {
		return Page[Order]{}, err
	}
	return list[Order](ctx, s, projection.IndexOrdersByCustomer, projection.AttrCustomerID, customerID, cursor, limit)
}

func list[T any](ctx context.Context, s *Service, index, key, value, cursor string, limit int) (Page[T], error) {
	start, err := decodeCursor(cursor, key, value)
	if err != nil {
		return Page[T]{}, err
	}
	expr, err := expression.NewBuilder().WithKeyCondition(expression.Key(key).Equal(expression.Value(value))).Build()
	if err != nil {
		return Page[T]{}, err
	}
	out, err := s.api.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(s.table), IndexName: aws.String(index),
		KeyConditionExpression: expr.KeyCondition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		Limit: aws.Int32(int32(limit)), ExclusiveStartKey: start,
	})
	if err != nil {
		return Page[T]{}, fmt.Errorf("list %s: %w", index, err)
	}
	p := Page[T]{Items: make([]T, 0, len(out.Items))}
	if err := attributevalue.UnmarshalListOfMaps(out.Items, &p.Items); err != nil {
		return Page[T]{}, err
	}
	if p.Next, err = encodeCursor(out.LastEvaluatedKey); err != nil {
		return Page[T]{}, err
	}
	return p, nil
}

// Cursors are the last evaluated key, as a JSON object of strings, base64url-encoded. They only
// ever name read-model items (string keys), and a client can forge nothing with them that it
// could not ask for anyway.
func encodeCursor(key map[string]types.AttributeValue) (string, error) {
	if len(key) == 0 {
		return "", nil
	}
	plain := map[string]string{}
	for k, v := range key {
		s, ok := v.(*types.AttributeValueMemberS)
		if !ok {
			return "", fmt.Errorf("cursor key %s is not a string", k)
		}
		plain[k] = s.Value
	}
	b, err := json.Marshal(plain)
	return base64.RawURLEncoding.EncodeToString(b), err
}

// decodeCursor reads a cursor of a list on the index key = value: it must name exactly the
// item key and that index key with that value.
func decodeCursor(c, key, value string) (map[string]types.AttributeValue, error) {
	if c == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	var plain map[string]string
	// Strictly, as request bodies are read: a name twice ({"pk":"a","pk":"b"}) is not the last.
	if err != nil || jsonv2.Unmarshal(b, &plain, strictCursor) != nil ||
		len(plain) != 2 || plain[key] != value || store.ValidStreamID(plain[projection.AttrKey]) != nil {
		return nil, ErrBadCursor
	}
	start := map[string]types.AttributeValue{}
	for k, v := range plain {
		start[k] = &types.AttributeValueMemberS{Value: v}
	}
	return start, nil
}
