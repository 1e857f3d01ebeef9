package query

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	jsonv2 "github.com/go-json-experiment/json"

	"github.com/eventfold/eventfold/internal/auth"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/store"
)

// Fulfilment is the read model of an order's fulfilment run, as served: where the run is (Step,
// one of domain's FulfilmentStep values), why it cancels ("" unless it does), its deadline and
// whether it still waits on it, the last refusal a reply recorded, whether it is finished
// (domain.Fulfilment.Finished), the decisions version it started under and its newest events
// (projection.MaxRunSteps of them, oldest first). Version is the version of the run's stream.
// It holds no personal data: runs hold none. Its dynamodbav tags are projection's Attr names.
type Fulfilment struct {
	OrderID      string      `json:"orderId" dynamodbav:"orderId"`
	Step         string      `json:"step" dynamodbav:"step"`
	CancelReason string      `json:"cancelReason" dynamodbav:"cancelReason"`
	Deadline     RunDeadline `json:"deadline" dynamodbav:"deadline"`
	LastError    string      `json:"lastError" dynamodbav:"lastError"`
	Finished     bool        `json:"finished" dynamodbav:"finished"`
	Decisions    int         `json:"decisions" dynamodbav:"decisions"`
	Steps        []RunStep   `json:"steps" dynamodbav:"steps"`
	Version      int64       `json:"version" dynamodbav:"v"`
}

// RunDeadline is a run's deadline (store.TimeLayout) and whether the run still waits on it.
type RunDeadline struct {
	At      string `json:"at" dynamodbav:"at"`
	Pending bool   `json:"pending" dynamodbav:"pending"`
}

// RunStep is one event of a run: the step it led to, when it was recorded (store.TimeLayout),
// its type and its version.
type RunStep struct {
	Step      string `json:"step" dynamodbav:"step"`
	At        string `json:"at" dynamodbav:"at"`
	EventType string `json:"eventType" dynamodbav:"eventType"`
	Version   int64  `json:"version" dynamodbav:"version"`
}

// Fulfilment returns the read model of the fulfilment run of order orderID, waiting for it to
// reach minVersion of the run's stream (see get). It returns ErrNotFound for an order whose run
// has not started (or no such order), ErrNoVersion and ErrBehind as get does. Only the order's
// customer or an operator sees it; to anyone else it is as if there were no such order (see
// customerOf: one event store read, before the run's).
func (s *Service) Fulfilment(ctx context.Context, caller auth.Caller, orderID string, minVersion int64) (Fulfilment, error) {
	if err := s.mayReadRun(ctx, caller, orderID, minVersion); err != nil {
		return Fulfilment{Steps: []RunStep{}}, err
	}
	var f Fulfilment
	err := s.get(ctx, domain.RunID(orderID), minVersion, &f, nil)
	if f.Steps == nil {
		f.Steps = []RunStep{}
	}
	return f, err
}

// FulfilmentAsOf is the run of order orderID as it stood at t, folded from the event store the
// way the projector folds it; to the order's customer or an operator, as Fulfilment.
func (s *Service) FulfilmentAsOf(ctx context.Context, caller auth.Caller, orderID string, t time.Time) (Fulfilment, error) {
	if err := s.mayReadRun(ctx, caller, orderID, 0); err != nil {
		return Fulfilment{Steps: []RunStep{}}, err
	}
	stream := domain.RunID(orderID)
	if store.ValidStreamID(stream) != nil {
		return Fulfilment{Steps: []RunStep{}}, ErrNotFound
	}
	events, err := s.events.Load(ctx, stream, store.Span{AsOf: t})
	if err != nil {
		return Fulfilment{Steps: []RunStep{}}, err
	}
	if len(events) == 0 {
		return Fulfilment{Steps: []RunStep{}}, ErrNotFound
	}
	r, err := projection.FoldRun(events)
	if err != nil {
		return Fulfilment{Steps: []RunStep{}}, fmt.Errorf("%s: %w", stream, err)
	}
	f := Fulfilment{OrderID: r.OrderID, Step: string(r.Step), CancelReason: r.CancelReason,
		Deadline: RunDeadline{At: r.DeadlineAt, Pending: r.DeadlinePending}, LastError: r.LastError,
		Finished: r.Finished, Decisions: r.Decisions, Steps: make([]RunStep, len(r.Steps)), Version: r.Version}
	for i, st := range r.Steps {
		f.Steps[i] = RunStep{Step: string(st.Step), At: st.At, EventType: st.EventType, Version: st.Version}
	}
	return f, nil
}

// mayReadRun reports whether caller may see the fulfilment run of order orderID: an operator
// may; a user when they are the order's customer, else hidden(minVersion), as if there were no
// such order.
func (s *Service) mayReadRun(ctx context.Context, caller auth.Caller, orderID string, minVersion int64) error {
	switch {
	case !caller.Authenticated():
		return ErrUnauthenticated
	case caller.Operator:
		return nil
	}
	customer, err := s.customerOf(ctx, orderID)
	if err != nil {
		return err
	}
	if !caller.Owns(customer) {
		return hidden(minVersion)
	}
	return nil
}

// customerOf returns the customer of order orderID, "" when there is no such order. The run's
// read model does not hold it (projection keeps customerId off runs, which would list them
// among the customer's orders), so it is read from the order's first event, OrderPlaced, in the
// envelopes store: one strongly consistent Query of one item, and no personal field opened
// (customerId is not one). The order stream is always there before its run is, so a run is never
// refused to its customer for a read model that lags.
func (s *Service) customerOf(ctx context.Context, orderID string) (string, error) {
	return s.firstString(ctx, "order-"+orderID, "customerId")
}

// firstString returns the string field name of the payload of stream's first event, read from
// the envelopes store (no personal field opened: name must not be one), "" when the stream has
// no events or cannot exist, or the field is absent.
func (s *Service) firstString(ctx context.Context, stream, name string) (string, error) {
	if store.ValidStreamID(stream) != nil {
		return "", nil
	}
	events, err := s.envelopes.Load(ctx, stream, store.Span{From: 1, To: 1})
	if err != nil || len(events) == 0 {
		return "", err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(events[0].Data, &fields); err != nil {
		return "", fmt.Errorf("%s: the first event: %w", stream, err)
	}
	var v string
	if raw, ok := fields[name]; ok {
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", fmt.Errorf("%s: the first event's %s: %w", stream, name, err)
		}
	}
	return v, nil
}

// StuckRun is a run waiting on a deadline that has passed: its order, its step (reserving or
// charging) and the deadline (store.TimeLayout).
type StuckRun struct {
	OrderID  string `json:"orderId" dynamodbav:"orderId"`
	Step     string `json:"step" dynamodbav:"step"`
	Deadline string `json:"deadline" dynamodbav:"waitingUntil"`
}

// MaxStuckRuns bounds a page of StuckRuns.
const MaxStuckRuns = 1000

// StuckRuns lists, limit at a time (1 to MaxStuckRuns), the runs past their deadline before now
// and not finished, whatever their step: waiting on a deadline that never fired (a lost
// schedule, a scheduler outage), or on a compensation or a commit that did not finish.
// Earliest deadline first. cursor is the Next of the page before ("" for the first); one
// StuckRuns did not issue, or issued for a later now, is ErrBadCursor.
//
// Each page is one Query of IndexRunsByDeadline, which is sparse (it holds only the unfinished
// runs) and eventually consistent: a run listed may have finished a moment ago (redriving it
// then changes nothing), and one that just started may be missing. A finished run is never
// listed.
func (s *Service) StuckRuns(ctx context.Context, now time.Time, cursor string, limit int) (Page[StuckRun], error) {
	before := store.FormatTime(now)
	start, err := decodeRunsCursor(cursor, before)
	if err != nil {
		return Page[StuckRun]{}, err
	}
	limit = min(max(limit, 1), MaxStuckRuns)
	key := expression.Key(projection.AttrWaitingPartition).Equal(expression.Value(projection.WaitingPartition)).
		And(expression.Key(projection.AttrWaitingUntil).LessThan(expression.Value(before)))
	expr, err := expression.NewBuilder().WithKeyCondition(key).Build()
	if err != nil {
		return Page[StuckRun]{}, err
	}
	out, err := s.api.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(s.table), IndexName: aws.String(projection.IndexRunsByDeadline),
		KeyConditionExpression: expr.KeyCondition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		Limit: aws.Int32(int32(limit)), ExclusiveStartKey: start,
	})
	if err != nil {
		return Page[StuckRun]{}, fmt.Errorf("list %s: %w", projection.IndexRunsByDeadline, err)
	}
	p := Page[StuckRun]{Items: make([]StuckRun, 0, len(out.Items))}
	if err := attributevalue.UnmarshalListOfMaps(out.Items, &p.Items); err != nil {
		return Page[StuckRun]{}, err
	}
	if p.Next, err = encodeCursor(out.LastEvaluatedKey); err != nil {
		return Page[StuckRun]{}, err
	}
	return p, nil
}

// decodeRunsCursor reads a cursor of StuckRuns: exactly the run's key and the index's, the
// partition WaitingPartition and a deadline in store.TimeLayout before before (a later page of
// a listing at an earlier now still is; one past before names no item of this listing).
func decodeRunsCursor(c, before string) (map[string]types.AttributeValue, error) {
	if c == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	var plain map[string]string
	if err != nil || jsonv2.Unmarshal(b, &plain, strictCursor) != nil || len(plain) != 3 ||
		plain[projection.AttrWaitingPartition] != projection.WaitingPartition ||
		!strings.HasPrefix(plain[projection.AttrKey], domain.RunID("")) || store.ValidStreamID(plain[projection.AttrKey]) != nil {
		return nil, ErrBadCursor
	}
	until := plain[projection.AttrWaitingUntil]
	if t, err := time.Parse(store.TimeLayout, until); err != nil || store.FormatTime(t) != until || until >= before {
		return nil, ErrBadCursor
	}
	start := map[string]types.AttributeValue{}
	for k, v := range plain {
		start[k] = &types.AttributeValueMemberS{Value: v}
	}
	return start, nil
}
