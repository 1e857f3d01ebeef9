// Command projector is the Lambda function on the event store's stream that keeps the read
// models: it wires the projection and the shared stream-batch handling, then serves
// DynamoDB Streams batches with ReportBatchItemFailures.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/eventfold/eventfold/internal/consumer"
	"github.com/eventfold/eventfold/internal/lambdaenv"
	"github.com/eventfold/eventfold/internal/metrics"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/store"
)

func main() {
	lambdaenv.Start(wire, func(h *consumer.Processor) any { return h.Handle })
}

func wire(ctx context.Context, log *slog.Logger) (*consumer.Processor, error) {
	env := lambdaenv.New(os.Getenv)
	events, snapshots := env.Require("EVENTS_TABLE"), env.Require("SNAPSHOTS_TABLE")
	readModels, parking := env.Require("READ_MODELS_TABLE"), env.Require("PARKING_TABLE")
	keysTable, dataKey, ttl := env.Keys()
	if err := env.Err(); err != nil {
		return nil, err
	}
	ddb, kmsAPI, err := lambdaenv.Clients(ctx)
	if err != nil {
		return nil, err
	}
	st, _, reg, err := lambdaenv.SealedStore(ddb, kmsAPI, store.Config{EventsTable: events, SnapshotsTable: snapshots}, keysTable, dataKey, ttl)
	if err != nil {
		return nil, err
	}
	p := consumer.New("projector", reg, projection.New(ddb, readModels, st), consumer.NewParkingTable(ddb, parking), log, metrics.New(os.Stdout))
	return p.OpenWith(st), nil
}
