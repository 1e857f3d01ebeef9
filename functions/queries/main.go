// Command queries is the Lambda function behind the query routes of the HTTP API: it wires the
// read models, the event store (for "as of" and audit queries) and the HTTP adapter.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/eventfold/eventfold/internal/httpapi"
	"github.com/eventfold/eventfold/internal/lambdaenv"
	"github.com/eventfold/eventfold/internal/query"
	"github.com/eventfold/eventfold/internal/store"
)

func main() {
	lambdaenv.Start(wire, func(h *httpapi.Queries) any { return h.Handle })
}

func wire(ctx context.Context, log *slog.Logger) (*httpapi.Queries, error) {
	env := lambdaenv.New(os.Getenv)
	events, snapshots, readModels := env.Require("EVENTS_TABLE"), env.Require("SNAPSHOTS_TABLE"), env.Require("READ_MODELS_TABLE")
	keysTable, dataKey, ttl := env.Keys()
	if err := env.Err(); err != nil {
		return nil, err
	}
	ddb, kmsAPI, err := lambdaenv.Clients(ctx)
	if err != nil {
		return nil, err
	}
	st, _, _, err := lambdaenv.SealedStore(ddb, kmsAPI, store.Config{EventsTable: events, SnapshotsTable: snapshots}, keysTable, dataKey, ttl)
	if err != nil {
		return nil, err
	}
	return httpapi.NewQueries(query.New(query.Config{API: ddb, Table: readModels, Events: st}), log), nil
}
