// Package projection keeps eventfold's read models: one item per source stream in the read-model
// table (a user's profile, an account's balance, an item's stock levels, an order's summary, an
// order's fulfilment run), listed through indexes (users by status, orders by customer, runs
// waiting on their deadline).
//
// Each item records the version of its stream it reflects, "v" ([AttrVersion]), and every change is one
// UpdateItem conditioned on v being the previous version: an event is applied once and in order,
// whatever order, duplicates or replays the stream delivers. A duplicate finds v already there
// and is skipped; an event ahead of v+1 first applies the missing versions, read from the event
// store, which is the truth.
package projection

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/consumer"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/store"
)

// API is the part of DynamoDB the projector uses.
type API interface {
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// Events is the event store, read to fill gaps.
type Events interface {
	Load(ctx context.Context, streamID string, span store.Span) ([]store.Event, error)
}

// Projector applies events to the read models. It is safe for concurrent use.
type Projector struct {
	api    API
	table  string
	events Events
}

var _ consumer.Handler = (*Projector)(nil)

// New returns a projector writing to table.
func New(api API, table string, events Events) *Projector {
	return &Projector{api: api, table: table, events: events}
}

// maxGapFills bounds how often one Apply fills a gap and tries again (a concurrent projector of
// the same stream can move v between the two).
const maxGapFills = 3

// Apply applies e to its stream's read model once: see the package doc.
func (p *Projector) Apply(ctx context.Context, e store.Event) error {
	for try := 0; try < maxGapFills; try++ {
		applied, at, err := p.apply(ctx, e)
		if err != nil || applied || at >= e.Version {
			return err
		}
		// The read model is at version at, behind e.Version-1: apply what it missed first.
		if at+1 > e.Version-1 {
			return fmt.Errorf("read model of %s blocks version %d without being past it (v=%d)", e.StreamID, e.Version, at)
		}
		missing, err := p.events.Load(ctx, e.StreamID, store.Span{From: at + 1, To: e.Version - 1})
		if err != nil {
			return fmt.Errorf("fill %s from %d: %w", e.StreamID, at+1, err)
		}
		if int64(len(missing)) != e.Version-1-at {
			return fmt.Errorf("fill %s from %d: the store has %d of the %d events before %d", e.StreamID, at+1, len(missing), e.Version-1-at, e.Version)
		}
		for _, m := range missing {
			if _, _, err := p.apply(ctx, m); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("apply %s at %d: the read model kept moving", e.StreamID, e.Version)
}

// apply makes one conditional update. It reports whether it applied e, and otherwise the
// version the read model is at.
func (p *Projector) apply(ctx context.Context, e store.Event) (bool, int64, error) {
	var (
		change expression.UpdateBuilder
		err    error
	)
	if IsRunEvent(e.Type) {
		change, err = p.runChange(ctx, e)
	} else {
		change, err = Change(e)
	}
	if err != nil {
		return false, 0, err
	}
	upd := change.Set(expression.Name(AttrVersion), expression.Value(e.Version)).
		Set(expression.Name(AttrUpdatedAt), expression.Value(store.FormatTime(e.RecordedAt)))
	cond := expression.AttributeNotExists(expression.Name(AttrKey))
	if e.Version > 1 {
		cond = expression.Name(AttrVersion).Equal(expression.Value(e.Version - 1))
	}
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return false, 0, err
	}
	_, err = p.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(p.table),
		Key:                                 map[string]types.AttributeValue{AttrKey: &types.AttributeValueMemberS{Value: e.StreamID}},
		UpdateExpression:                    expr.Update(),
		ConditionExpression:                 expr.Condition(),
		ExpressionAttributeNames:            expr.Names(),
		ExpressionAttributeValues:           expr.Values(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		var cur struct {
			V int64 `dynamodbav:"v"`
		}
		if err := attributevalue.UnmarshalMap(failed.Item, &cur); err != nil {
			return false, 0, fmt.Errorf("read model of %s: %w", e.StreamID, err)
		}
		return false, cur.V, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("project %s at %d: %w", e.StreamID, e.Version, err)
	}
	return true, e.Version, nil
}

// Change is the update an event makes to its stream's read-model item. Events it cannot decode
// are poison (consumer.ErrPoison): retrying will not help. The events of a fulfilment run
// (IsRunEvent) change their item by the fold of the whole run (FoldRun), not one event: Change
// refuses them, and Projector.Apply folds them.
func Change(e store.Event) (expression.UpdateBuilder, error) {
	if IsRunEvent(e.Type) {
		return expression.UpdateBuilder{}, fmt.Errorf("%s at %d: a run's event changes its item by the fold of the run (projection.FoldRun)", e.StreamID, e.Version)
	}
	de, err := domain.Decode(e.Type, e.Data)
	if err != nil {
		return expression.UpdateBuilder{}, fmt.Errorf("%w: %s at %d: %v", consumer.ErrPoison, e.StreamID, e.Version, err)
	}
	set := func(pairs ...any) expression.UpdateBuilder {
		var u expression.UpdateBuilder
		for i := 0; i+1 < len(pairs); i += 2 {
			u = u.Set(expression.Name(pairs[i].(string)), operand(pairs[i+1]))
		}
		return u
	}
	add := func(name string, delta int64) expression.SetValueBuilder {
		return expression.Plus(expression.IfNotExists(expression.Name(name), expression.Value(0)), expression.Value(delta))
	}
	switch ev := de.(type) {
	case domain.UserRegistered:
		if e.Shredded { // the subject was erased: their data is gone, the fact stays
			return set(AttrKind, "user", AttrUserID, ev.UserID, AttrUserStatus, string(domain.UserStatusActive)), nil
		}
		return set(AttrKind, "user", AttrUserID, ev.UserID, AttrEmail, ev.Email, AttrName, ev.Name, AttrUserStatus, string(domain.UserStatusActive)), nil
	case domain.UserEmailChanged:
		if e.Shredded {
			return expression.UpdateBuilder{}, nil
		}
		return set(AttrEmail, ev.Email), nil
	case domain.UserDeactivated:
		return set(AttrUserStatus, string(domain.UserStatusDeactivated)), nil
	case domain.SubjectErased:
		// Redact: the personal fields go, the facts stay.
		// A subject who never registered gets a read model saying they were erased.
		return set(AttrKind, "user", AttrUserID, ev.UserID, AttrUserStatus, string(domain.UserStatusErased)).
			Remove(expression.Name(AttrEmail)).Remove(expression.Name(AttrName)), nil
	case domain.AccountOpened:
		return set(AttrKind, "account", AttrAccountID, ev.AccountID, AttrOwnerID, ev.OwnerID, AttrCurrency, ev.Currency, AttrBalance, add(AttrBalance, 0)), nil
	case domain.MoneyDeposited:
		return set(AttrBalance, add(AttrBalance, ev.Amount)), nil
	case domain.MoneyWithdrawn:
		return set(AttrBalance, add(AttrBalance, -ev.Amount)), nil
	case domain.AccountCharged:
		return set(AttrBalance, add(AttrBalance, -ev.Amount)), nil
	case domain.AccountRefunded:
		return set(AttrBalance, add(AttrBalance, ev.Amount)), nil
	case domain.StockAdded:
		return set(AttrKind, "inventory", AttrSKU, ev.SKU, AttrOnHand, add(AttrOnHand, ev.Quantity), AttrReserved, add(AttrReserved, 0)), nil
	case domain.StockReserved:
		return set(AttrReserved, add(AttrReserved, ev.Quantity)), nil
	case domain.StockReleased:
		return set(AttrReserved, add(AttrReserved, -ev.Quantity)), nil
	case domain.StockCommitted:
		return set(AttrReserved, add(AttrReserved, -ev.Quantity), AttrOnHand, add(AttrOnHand, -ev.Quantity)), nil
	case domain.OrderPlaced:
		return set(AttrKind, "order", AttrOrderID, ev.OrderID, AttrCustomerID, ev.CustomerID, AttrOrderStatus, string(domain.OrderStatusPlaced),
			AttrCurrency, ev.Currency, AttrTotal, ev.Total, AttrLineCount, len(ev.Lines)), nil
	case domain.OrderConfirmed:
		return set(AttrOrderStatus, string(domain.OrderStatusConfirmed)), nil
	case domain.OrderCancelled:
		return set(AttrOrderStatus, string(domain.OrderStatusCancelled), AttrCancelReason, ev.Reason), nil
	}
	return expression.UpdateBuilder{}, fmt.Errorf("%w: %s has no projection", consumer.ErrPoison, e.Type)
}

func operand(v any) expression.OperandBuilder {
	if sv, ok := v.(expression.SetValueBuilder); ok {
		return sv
	}
	return expression.Value(v)
}
