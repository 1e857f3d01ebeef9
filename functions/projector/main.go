// Command projector is the Lambda function on the event store's stream that keeps the read
// models: it wires the read side (lambdaenv.NewReadSide, as the operator commands do), then
// serves DynamoDB Streams batches with ReportBatchItemFailures.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/eventfold/eventfold/internal/consumer"
	"github.com/eventfold/eventfold/internal/lambdaenv"
	"github.com/eventfold/eventfold/internal/metrics"
)

func main() {
	lambdaenv.Start(wire, func(h *consumer.Processor) any { return h.Handle })
}

func wire(ctx context.Context, log *slog.Logger) (*consumer.Processor, error) {
	env := lambdaenv.New(os.Getenv)
	cfg := env.ReadSide()
	if err := env.Err(); err != nil {
		return nil, err
	}
	ddb, kmsAPI, err := lambdaenv.Clients(ctx)
	if err != nil {
		return nil, err
	}
	rs, err := lambdaenv.NewReadSide(cfg, ddb, kmsAPI, log, metrics.New(os.Stdout))
	if err != nil {
		return nil, err
	}
	return rs.Processor, nil
}
