// Command projector is the Lambda function on the event store's stream that keeps the read
// models: it builds the read side (app.Projector, as the operator commands that write read
// models do) from its environment, then serves DynamoDB Streams batches with
// ReportBatchItemFailures.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/eventfold/eventfold/internal/app"
	"github.com/eventfold/eventfold/internal/consumer"
)

func main() { app.Start(wire, (*consumer.Processor).Handle) }

func wire(ctx context.Context, log *slog.Logger) (*consumer.Processor, error) {
	cfg, err := app.ProjectorFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	m, err := app.MetricsFromEnv(os.Getenv, os.Stdout)
	if err != nil {
		return nil, err
	}
	clients, err := app.LoadClients(ctx)
	if err != nil {
		return nil, err
	}
	rs, err := app.Projector(cfg, clients, log, m)
	if err != nil {
		return nil, err
	}
	return rs.Processor, nil
}
