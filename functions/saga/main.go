// Command saga is the order fulfilment saga's Lambda function, on the event store's stream and
// the target of its deadlines' schedules.
//
// placeholder: the lead replaces it. It exists so that the template's SagaFunction builds and
// starts (under `make build`, `sam build` and the local runner); it acknowledges every batch and
// every deadline and does nothing else.
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context, json.RawMessage) (events.DynamoDBEventResponse, error) {
		return events.DynamoDBEventResponse{}, nil
	})
}
