// Command projector is the Lambda function on the event store's stream that keeps the read
// models: it wires the projection and the shared stream-batch handling, then serves
// DynamoDB Streams batches with ReportBatchItemFailures.
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/consumer"
	"github.com/eventfold/eventfold/internal/metrics"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/store"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	p, err := wire(context.Background(), log)
	if err != nil {
		log.Error("cold start failed", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(p.Handle)
}

func wire(ctx context.Context, log *slog.Logger) (*consumer.Processor, error) {
	var errs []error
	env := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			errs = append(errs, errors.New(name+" is not set"))
		}
		return v
	}
	events, snapshots, readModels, parking := env("EVENTS_TABLE"), env("SNAPSHOTS_TABLE"), env("READ_MODELS_TABLE"), env("PARKING_TABLE")
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	ddb := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		o.DisableValidateResponseChecksum = os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") != "" || os.Getenv("AWS_ENDPOINT_URL") != ""
	})
	reg, err := command.Registry()
	if err != nil {
		return nil, err
	}
	st, err := store.New(ddb, store.Config{EventsTable: events, SnapshotsTable: snapshots, Registry: reg})
	if err != nil {
		return nil, err
	}
	return consumer.New("projector", reg, projection.New(ddb, readModels, st), consumer.NewParkingTable(ddb, parking), log, metrics.New(os.Stdout)), nil
}
