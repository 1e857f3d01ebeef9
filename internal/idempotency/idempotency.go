// Package idempotency makes mutating HTTP requests safe to retry: the first request with an
// Idempotency-Key runs, its response is recorded, and every repeat gets that response back
// without running again.
//
// A record in DynamoDB goes through two states. Begin writes it IN_PROGRESS with a keyed hash of
// the request, the identity of the execution (a command ID and, for creates, the new aggregate's
// ID) and a lock: a random token and the time it ends, the Lambda invocation's deadline (a
// conditional PutItem: at most one attempt holds a key at a time). Complete stores the response
// and marks the record COMPLETED.
//
// An attempt can die, or fail to record its outcome, after its command was appended. So a retry
// never starts afresh: once the lock has expired, or the failed attempt released it (Release),
// Begin hands the retry the same Attempt, marked Retry, under a new lock token, and the command
// layer finds the events the earlier attempt appended (their causation ID is the command ID)
// instead of appending again. Only an attempt known to have written nothing (a version conflict
// in which none of the stream's new events is its own) removes its record (Abandon), so that the
// key can carry a corrected request. Records expire through the TTL.
//
// What holds, whatever the interleaving of two attempts of one key (one whose lock expired while
// its append was still on the wire, and the retry that took the lock over):
//
//   - Only the holder of the lock changes the record. Complete, Release and Abandon are
//     conditional on the attempt's lock token: an attempt whose lock was taken over can neither
//     record its response (Complete returns ErrLockLost), nor unlock or delete the record of the
//     attempt that holds it now (Release and Abandon do nothing).
//   - The command runs once. Both attempts carry the same command ID; the event store's
//     conditional append lets one of them write, and the command layer answers the other with
//     the events found under that command ID (see command.Meta), never deciding again.
//   - An applied command is never answered as failed by the holder: a version conflict is
//     checked for the command's own events before it is reported, so Abandon only ever removes
//     the record of a command that wrote nothing, and whose late write, if any, can no longer
//     land (the stream is past the version it was aimed at).
//   - A lost response is harmless. A Begin, take-over or Complete whose write landed but whose
//     answer was lost is retried by the SDK; the retry fails its condition, reads the record back
//     (ReturnValuesOnConditionCheckFailure=ALL_OLD) and, finding its own lock token, succeeds.
//     Release and Abandon are idempotent as they are.
//   - No attempt starts a write after its lock ends: the lock is the invocation's deadline, and
//     httpapi bounds the command's context by it (30 s when the context has none). A write sent
//     before may land after; the argument above covers it: the conflict it causes is found to
//     be the command's own.
//   - What does not hold: an attempt whose lock was taken over answers its own client with its
//     own outcome (a client that has long stopped waiting, since the lock is the deadline); if
//     that outcome is a refusal (a business rule) and the retry then succeeds, the two answers
//     differ. Only the holder's answer is recorded.
//
// Records hold an HMAC-SHA256 of the request (keyed, so a record cannot confirm a guess of the
// body) and the response; never the request body. Responses of the routes using this package
// must not hold personal data.
package idempotency

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

var (
	// ErrInProgress is returned by Begin when another attempt with the key is running and its
	// lock has not expired.
	ErrInProgress = errors.New("a request with this idempotency key is in progress")
	// ErrMismatch is returned by Begin when the key was used for a different request.
	ErrMismatch = errors.New("the idempotency key was used for a different request")
	// ErrLockLost is returned by Complete when the attempt no longer holds the key's lock: it
	// expired and another attempt of the same request took it over (that attempt records the
	// response), or the record is gone. Nothing was written.
	ErrLockLost = errors.New("the idempotency key's lock is held by another attempt")
)

// Attempt identifies the execution of an idempotent request. It is fixed when the key is first
// used and handed to every retry.
type Attempt struct {
	// CommandID becomes the causation ID of the events the request appends.
	CommandID string
	// NewID is the ID a create request gives the aggregate it creates.
	NewID string
	// Retry reports that an earlier attempt may have run, and may have appended its events.
	Retry bool
	// Lock is the token of the lock this attempt holds, set by Begin: Complete, Release and
	// Abandon act only while it is the record's.
	Lock string
}

// Response is a recorded HTTP response.
type Response struct {
	Status  int               `dynamodbav:"status"`
	Headers map[string]string `dynamodbav:"headers,omitempty"`
	Body    string            `dynamodbav:"body"`
}

// API is the part of the DynamoDB API the store uses.
type API interface {
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Store keeps idempotency records in a DynamoDB table whose partition key is "pk" and whose TTL
// attribute is "expiresAt". It is safe for concurrent use.
type Store struct {
	api   API
	table string
	ttl   time.Duration
	now   func() time.Time
}

// Config configures a Store.
type Config struct {
	// API reaches the idempotency table.
	API API
	// Table is the idempotency table: partition key "pk", TTL attribute "expiresAt".
	Table string
	// TTL is how long records live; 0 means 24h.
	TTL time.Duration
	// Clock is what locks and expiry are measured by; time.Now when nil.
	Clock func() time.Time
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.API == nil {
		errs = append(errs, errors.New("idempotency: API is required"))
	}
	if c.Table == "" {
		errs = append(errs, errors.New("idempotency: Table is required"))
	}
	if c.TTL < 0 {
		errs = append(errs, fmt.Errorf("idempotency: TTL is %v, want 0 (24h) or more", c.TTL))
	}
	return errors.Join(errs...)
}

// New returns a store on cfg's table, or every problem of cfg (see Validate). It does no
// network I/O.
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.TTL == 0 {
		cfg.TTL = 24 * time.Hour
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Store{api: cfg.API, table: cfg.Table, ttl: cfg.TTL, now: cfg.Clock}, nil
}

const (
	inProgress = "IN_PROGRESS"
	completed  = "COMPLETED"
)

type record struct {
	Key         string    `dynamodbav:"pk"`
	State       string    `dynamodbav:"state"`
	Hash        string    `dynamodbav:"hash"`
	Token       string    `dynamodbav:"lockToken"`
	LockedUntil int64     `dynamodbav:"lockedUntil"` // Unix milliseconds
	ExpiresAt   int64     `dynamodbav:"expiresAt"`   // Unix seconds, the TTL attribute
	CommandID   string    `dynamodbav:"commandId"`
	NewID       string    `dynamodbav:"newId,omitempty"`
	Response    *Response `dynamodbav:"response,omitempty"`
}

// newToken returns a fresh lock token: 128 random bits.
func newToken() string {
	return rand.Text()
}

// Begin starts the request identified by key, whose content hashes to hash, holding the key
// until lockUntil. When the key is new (or its record expired), the request runs as attempt
// fresh. When an earlier attempt's lock has run out or was released, the request runs again as
// that attempt, with Retry set. Either way the Attempt returned holds the lock (its Lock is set).
// When it ran to completion before, Begin returns the recorded response. Otherwise it returns
// ErrInProgress or ErrMismatch. After running, call Complete, Release or Abandon.
func (s *Store) Begin(ctx context.Context, key, hash string, lockUntil time.Time, fresh Attempt) (*Response, Attempt, error) {
	now := s.now()
	fresh.Retry, fresh.Lock = false, newToken()
	item, err := attributevalue.MarshalMap(record{
		Key: key, State: inProgress, Hash: hash, Token: fresh.Lock, LockedUntil: lockUntil.UnixMilli(), ExpiresAt: now.Add(s.ttl).Unix(),
		CommandID: fresh.CommandID, NewID: fresh.NewID,
	})
	if err != nil {
		return nil, Attempt{}, err
	}
	// Absent: no record, or an expired one the TTL has not removed yet.
	absent := expression.AttributeNotExists(expression.Name("pk")).
		Or(expression.Name("expiresAt").LessThan(expression.Value(now.Unix())))
	expr, err := expression.NewBuilder().WithCondition(absent).Build()
	if err != nil {
		return nil, Attempt{}, err
	}
	_, err = s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(s.table),
		Item:                                item,
		ConditionExpression:                 expr.Condition(),
		ExpressionAttributeNames:            expr.Names(),
		ExpressionAttributeValues:           expr.Values(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var failed *types.ConditionalCheckFailedException
	if !errors.As(err, &failed) {
		if err != nil {
			return nil, Attempt{}, fmt.Errorf("begin idempotent request: %w", err)
		}
		return nil, fresh, nil
	}
	var old record
	if err := attributevalue.UnmarshalMap(failed.Item, &old); err != nil {
		return nil, Attempt{}, fmt.Errorf("begin idempotent request: read record: %w", err)
	}
	switch {
	case old.Token == fresh.Lock:
		// This very Begin's write landed and its answer was lost; the SDK's retry found it.
		return nil, fresh, nil
	case old.Hash != hash:
		return nil, Attempt{}, ErrMismatch
	case old.State == completed && old.Response != nil:
		return old.Response, Attempt{}, nil
	case old.State != inProgress || old.LockedUntil >= now.UnixMilli():
		return nil, Attempt{}, ErrInProgress
	}
	// The earlier attempt's lock is over: take it over, unless another retry just did.
	retry := Attempt{CommandID: old.CommandID, NewID: old.NewID, Retry: true, Lock: newToken()}
	back, err := s.update(ctx, key,
		expression.Set(expression.Name("lockedUntil"), expression.Value(lockUntil.UnixMilli())).
			Set(expression.Name("lockToken"), expression.Value(retry.Lock)),
		expression.Name("state").Equal(expression.Value(inProgress)).
			And(expression.Name("hash").Equal(expression.Value(hash))).
			And(expression.Name("lockToken").Equal(expression.Value(old.Token))).
			And(expression.Name("lockedUntil").Equal(expression.Value(old.LockedUntil))))
	switch {
	case back != nil && back.Token == retry.Lock:
		return nil, retry, nil // the take-over landed, its answer was lost
	case back != nil:
		return nil, Attempt{}, ErrInProgress
	case err != nil:
		return nil, Attempt{}, fmt.Errorf("begin idempotent request: take over: %w", err)
	}
	return nil, retry, nil
}

// update runs a conditional UpdateItem on the record of key. When the condition fails it returns
// the record as it was (nil when there is none) with the error.
func (s *Store) update(ctx context.Context, key string, upd expression.UpdateBuilder, cond expression.ConditionBuilder) (*record, error) {
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return nil, err
	}
	_, err = s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.table),
		Key:                                 map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: key}},
		UpdateExpression:                    expr.Update(),
		ConditionExpression:                 expr.Condition(),
		ExpressionAttributeNames:            expr.Names(),
		ExpressionAttributeValues:           expr.Values(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		old := &record{}
		if len(failed.Item) == 0 || attributevalue.UnmarshalMap(failed.Item, old) != nil {
			old = &record{}
		}
		return old, err
	}
	return nil, err
}

// holding is the condition that the attempt still holds the lock of a running request.
func holding(a Attempt) expression.ConditionBuilder {
	return expression.Name("lockToken").Equal(expression.Value(a.Lock)).And(expression.Name("state").Equal(expression.Value(inProgress)))
}

// Complete records the response of the request begun with key, by the attempt that holds its
// lock. It returns ErrLockLost when a itself no longer holds it, having written nothing.
func (s *Store) Complete(ctx context.Context, key string, a Attempt, resp Response) error {
	av, err := attributevalue.Marshal(resp)
	if err != nil {
		return err
	}
	back, err := s.update(ctx, key,
		expression.Set(expression.Name("state"), expression.Value(completed)).Set(expression.Name("response"), expression.Value(av)),
		holding(a))
	switch {
	case back != nil && back.Token == a.Lock && back.State == completed:
		return nil // this very Complete landed and its answer was lost
	case back != nil:
		return ErrLockLost
	case err != nil:
		return fmt.Errorf("complete idempotent request: %w", err)
	}
	return nil
}

// Release ends the lock of an attempt that failed in a way worth retrying but may have written
// (a server error): the next Begin runs at once, as the same attempt, with Retry set. It does
// nothing when a no longer holds the lock.
func (s *Store) Release(ctx context.Context, key string, a Attempt) error {
	back, err := s.update(ctx, key, expression.Set(expression.Name("lockedUntil"), expression.Value(0)), holding(a))
	if err != nil && back == nil {
		return fmt.Errorf("release idempotent request: %w", err)
	}
	return nil
}

// Abandon removes the in-progress record of an attempt known to have written nothing (it lost a
// version conflict in which no event was its own), so that the key can carry the request again,
// corrected or not. It does nothing when a no longer holds the lock.
func (s *Store) Abandon(ctx context.Context, key string, a Attempt) error {
	expr, err := expression.NewBuilder().WithCondition(holding(a)).Build()
	if err != nil {
		return err
	}
	_, err = s.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.table),
		Key:                       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: key}},
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	var failed *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &failed) {
		return fmt.Errorf("abandon idempotent request: %w", err)
	}
	return nil
}

// Scanner reads a whole table; Forget needs it besides API.
type Scanner interface {
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Forget deletes the record of every key whose command lost reports lost: after a restore of the
// events table to an earlier point, the events those commands appended are gone, and a retry of
// the key must run the command again instead of replaying a response that describes what no
// longer exists. It reads the whole table and returns how many records it deleted.
func (s *Store) Forget(ctx context.Context, scan Scanner, lost func(commandID string) bool) (int, error) {
	n := 0
	in := &dynamodb.ScanInput{TableName: aws.String(s.table), ConsistentRead: aws.Bool(true)}
	for p := dynamodb.NewScanPaginator(scan, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return n, fmt.Errorf("forget idempotency records: %w", err)
		}
		for _, it := range page.Items {
			var r record
			if err := attributevalue.UnmarshalMap(it, &r); err != nil || r.CommandID == "" || !lost(r.CommandID) {
				continue
			}
			expr, err := expression.NewBuilder().WithCondition(expression.Name("commandId").Equal(expression.Value(r.CommandID))).Build()
			if err != nil {
				return n, err
			}
			_, err = s.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
				TableName:                 aws.String(s.table),
				Key:                       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: r.Key}},
				ConditionExpression:       expr.Condition(),
				ExpressionAttributeNames:  expr.Names(),
				ExpressionAttributeValues: expr.Values(),
			})
			var failed *types.ConditionalCheckFailedException
			switch {
			case errors.As(err, &failed): // the key now carries another request: keep it
			case err != nil:
				return n, fmt.Errorf("forget idempotency record: %w", err)
			default:
				n++
			}
		}
	}
	return n, nil
}
