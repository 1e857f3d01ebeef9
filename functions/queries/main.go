// Command queries is the Lambda function behind the query routes of the HTTP API: it builds the
// query routes (app.Queries: the read models, and the event store for "as of" and audit
// queries) from its environment.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/eventfold/eventfold/internal/app"
	"github.com/eventfold/eventfold/internal/httpapi"
)

func main() { app.Start(wire, (*httpapi.Queries).Handle) }

func wire(ctx context.Context, log *slog.Logger) (*httpapi.Queries, error) {
	cfg, err := app.QueriesFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	clients, err := app.LoadClients(ctx)
	if err != nil {
		return nil, err
	}
	return app.Queries(cfg, clients, log)
}
