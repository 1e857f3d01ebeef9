// Command queries is the Lambda function behind the query routes of the HTTP API: it wires the
// read models, the event store (for "as of" and audit queries) and the HTTP adapter.
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
	"github.com/eventfold/eventfold/internal/httpapi"
	"github.com/eventfold/eventfold/internal/query"
	"github.com/eventfold/eventfold/internal/store"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	h, err := wire(context.Background(), log)
	if err != nil {
		log.Error("cold start failed", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}

func wire(ctx context.Context, log *slog.Logger) (*httpapi.Queries, error) {
	var errs []error
	env := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			errs = append(errs, errors.New(name+" is not set"))
		}
		return v
	}
	events, snapshots, readModels := env("EVENTS_TABLE"), env("SNAPSHOTS_TABLE"), env("READ_MODELS_TABLE")
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
	return httpapi.NewQueries(query.New(ddb, readModels, st, 0), log), nil
}
