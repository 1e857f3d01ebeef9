package saga

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
)

// Batches is what runs a batch of stream records through the saga (*consumer.Processor).
type Batches interface {
	Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error)
}

// Function is the saga's Lambda handler: it is invoked by the event source mapping with stream
// batches, and by the scheduler with a run's deadline.
type Function struct {
	Batches Batches
	Saga    *Saga
}

// Handle serves one invocation. A stream batch answers with the records to retry
// (ReportBatchItemFailures); a deadline answers null, or fails so that it is retried (and, past
// the retries, dead-lettered). Anything else is an error that says what was expected, never
// what was sent.
func (f *Function) Handle(ctx context.Context, payload json.RawMessage) (json.RawMessage, error) {
	var probe struct {
		Records  json.RawMessage `json:"Records"`
		Deadline json.RawMessage `json:"fulfilmentDeadline"`
	}
	if err := json.Unmarshal(payload, &probe); err != nil {
		return nil, errors.New("saga: the payload is not a JSON object")
	}
	switch {
	case probe.Records != nil:
		var ev events.DynamoDBEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fmt.Errorf("saga: not a DynamoDB stream batch: %w", err)
		}
		resp, err := f.Batches.Handle(ctx, ev)
		if err != nil {
			return nil, err
		}
		return json.Marshal(resp)
	case probe.Deadline != nil && !bytes.Equal(probe.Deadline, []byte("null")):
		var in DeadlineInput
		if err := json.Unmarshal(payload, &in); err != nil {
			return nil, errors.New("saga: fulfilmentDeadline is not {orderId, deadlineId}")
		}
		return json.RawMessage("null"), f.Saga.Deadline(ctx, in)
	}
	return nil, errors.New("saga: the payload is neither a stream batch (Records) nor a deadline (fulfilmentDeadline)")
}
