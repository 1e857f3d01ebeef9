package awstest

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// Requests counts the DynamoDB requests a client sends (every attempt, retries included) and the
// write capacity DynamoDB reports for them. It is safe for concurrent use.
type Requests struct {
	mu  sync.Mutex
	ops []string
	wcu float64
}

// Take returns the operations counted since the last Take, in order, and their write units.
func (r *Requests) Take() ([]string, float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ops, wcu := r.ops, r.wcu
	r.ops, r.wcu = nil, 0
	return ops, wcu
}

// Client returns a DynamoDB Local client whose requests r counts. It asks every PutItem and
// TransactWriteItems for its consumed capacity, so the write units are DynamoDB's own figure.
func (r *Requests) Client(tb testing.TB) *dynamodb.Client {
	tb.Helper()
	return DynamoDB(tb, func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, r.middleware)
	})
}

func (r *Requests) middleware(stack *middleware.Stack) error {
	err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("askCapacity",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			switch p := in.Parameters.(type) {
			case *dynamodb.PutItemInput:
				p.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
			case *dynamodb.TransactWriteItemsInput:
				p.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
			}
			out, md, err := next.HandleInitialize(ctx, in)
			var units float64
			switch o := out.Result.(type) {
			case *dynamodb.PutItemOutput:
				if o.ConsumedCapacity != nil {
					units = aws.ToFloat64(o.ConsumedCapacity.CapacityUnits)
				}
			case *dynamodb.TransactWriteItemsOutput:
				for _, c := range o.ConsumedCapacity {
					units += aws.ToFloat64(c.CapacityUnits)
				}
			}
			r.mu.Lock()
			r.wcu += units
			r.mu.Unlock()
			return out, md, err
		}), middleware.Before)
	if err != nil {
		return err
	}
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("countRequests",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			r.mu.Lock()
			r.ops = append(r.ops, awsmiddleware.GetOperationName(ctx))
			r.mu.Unlock()
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}
