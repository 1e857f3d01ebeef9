// Package idempotency makes mutating HTTP requests safe to retry: the first request with an
// Idempotency-Key runs, its response is recorded, and every repeat gets that response back
// without running again.
//
// A record in DynamoDB goes through two states. Begin writes it IN_PROGRESS with a hash of the
// request and a lock that ends at the Lambda invocation's deadline (a conditional PutItem: at most
// one attempt holds a key at a time). Complete stores the response and marks it COMPLETED. A
// request whose attempt crashed can be retried once the lock has expired; one that failed with a
// server error is released by Abandon at once. Records expire through the table's TTL.
//
// Records hold a SHA-256 of the request and the response; never the request body. Responses of
// the routes using this package must not hold personal data.
package idempotency

import (
	"context"
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
)

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

// New returns a store on table. Records live for ttl (24h when 0); clock may be nil.
func New(api API, table string, ttl time.Duration, clock func() time.Time) *Store {
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	if clock == nil {
		clock = time.Now
	}
	return &Store{api: api, table: table, ttl: ttl, now: clock}
}

const (
	inProgress = "IN_PROGRESS"
	completed  = "COMPLETED"
)

type record struct {
	Key         string    `dynamodbav:"pk"`
	State       string    `dynamodbav:"state"`
	Hash        string    `dynamodbav:"hash"`
	LockedUntil int64     `dynamodbav:"lockedUntil"` // Unix milliseconds
	ExpiresAt   int64     `dynamodbav:"expiresAt"`   // Unix seconds, the TTL attribute
	Response    *Response `dynamodbav:"response,omitempty"`
}

// Begin starts the request identified by key, whose content hashes to hash, holding the key
// until lockUntil. It returns (nil, nil) when the caller should run the request and then call
// Complete or Abandon; the recorded response when the request ran before; ErrInProgress or
// ErrMismatch, wrapped, otherwise.
func (s *Store) Begin(ctx context.Context, key, hash string, lockUntil time.Time) (*Response, error) {
	now := s.now()
	item, err := attributevalue.MarshalMap(record{
		Key: key, State: inProgress, Hash: hash,
		LockedUntil: lockUntil.UnixMilli(), ExpiresAt: now.Add(s.ttl).Unix(),
	})
	if err != nil {
		return nil, err
	}
	// Free: no record, an expired one the TTL has not removed yet, or an abandoned attempt of this
	// same request whose lock has run out.
	free := expression.AttributeNotExists(expression.Name("pk")).
		Or(expression.Name("expiresAt").LessThan(expression.Value(now.Unix()))).
		Or(expression.And(
			expression.Name("state").Equal(expression.Value(inProgress)),
			expression.Name("lockedUntil").LessThan(expression.Value(now.UnixMilli())),
			expression.Name("hash").Equal(expression.Value(hash))))
	expr, err := expression.NewBuilder().WithCondition(free).Build()
	if err != nil {
		return nil, err
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
			return nil, fmt.Errorf("begin idempotent request: %w", err)
		}
		return nil, nil
	}
	var old record
	if err := attributevalue.UnmarshalMap(failed.Item, &old); err != nil {
		return nil, fmt.Errorf("begin idempotent request: read record: %w", err)
	}
	switch {
	case old.Hash != hash:
		return nil, ErrMismatch
	case old.State == completed && old.Response != nil:
		return old.Response, nil
	default:
		return nil, ErrInProgress
	}
}

// Complete records the response of the request begun with key and hash.
func (s *Store) Complete(ctx context.Context, key, hash string, resp Response) error {
	av, err := attributevalue.Marshal(resp)
	if err != nil {
		return err
	}
	upd := expression.Set(expression.Name("state"), expression.Value(completed)).
		Set(expression.Name("response"), expression.Value(av))
	cond := expression.Name("hash").Equal(expression.Value(hash)).And(expression.Name("state").Equal(expression.Value(inProgress)))
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return err
	}
	_, err = s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: key}},
		UpdateExpression:          expr.Update(),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	if err != nil {
		return fmt.Errorf("complete idempotent request: %w", err)
	}
	return nil
}

// Abandon removes the in-progress record of a request that failed in a way worth retrying, so
// that a retry need not wait for the lock to expire.
func (s *Store) Abandon(ctx context.Context, key, hash string) error {
	cond := expression.Name("hash").Equal(expression.Value(hash)).And(expression.Name("state").Equal(expression.Value(inProgress)))
	expr, err := expression.NewBuilder().WithCondition(cond).Build()
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
