package saga_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/eventfold/eventfold/internal/saga"
)

type batches struct{ got []events.DynamoDBEvent }

func (b *batches) Handle(_ context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	b.got = append(b.got, ev)
	return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{{ItemIdentifier: "7"}}}, nil
}

// TestFunctionTellsBatchesFromDeadlines: one handler serves the stream trigger and the
// scheduler; anything else is refused without quoting it.
func TestFunctionTellsBatchesFromDeadlines(t *testing.T) {
	w := stuck(t)
	b := &batches{}
	f := &saga.Function{Batches: b, Saga: w.saga()}
	ctx := context.Background()

	out, err := f.Handle(ctx, json.RawMessage(`{"Records":[{"eventName":"INSERT","dynamodb":{"SequenceNumber":"7"}}]}`))
	if err != nil || len(b.got) != 1 || len(b.got[0].Records) != 1 || !strings.Contains(string(out), `"itemIdentifier":"7"`) {
		t.Fatalf("a batch: %s, %v, %d batches", out, err, len(b.got))
	}
	w.clock.advance(20 * 60e9)
	d, _ := w.deadlines.get("fulfilment-o1")
	if out, err := f.Handle(ctx, d.input); err != nil || string(out) != "null" {
		t.Fatalf("the deadline: %s, %v", out, err)
	}
	if run := w.run("o1"); run.Step != "cancelled" {
		t.Fatalf("after its deadline the run is %s", run.Step)
	}
	for _, bad := range []string{`"secret-ish"`, `{}`, `{"fulfilmentDeadline":null}`, `{"fulfilmentDeadline":{"orderId":"o1"}}`, `{"fulfilmentDeadline":"x"}`, `not json`} {
		_, err := f.Handle(ctx, json.RawMessage(bad))
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("Handle(%s) = %v, want an error that quotes nothing", bad, err)
		}
	}
	if len(b.got) != 1 {
		t.Fatalf("bad payloads reached the batch handler: %d batches", len(b.got))
	}
}
