// Command saga is the Lambda function that runs order fulfilment: on the event store's stream
// (OrderPlaced, StockReserved, AccountCharged, by the template's filter) and on the deadlines
// the scheduler fires. It builds the saga (app.Saga, as `eventfold sagas` does) from its
// environment and serves both with one handler.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/eventfold/eventfold/internal/app"
	"github.com/eventfold/eventfold/internal/saga"
)

func main() { app.Start(wire, (*saga.Function).Handle) }

func wire(ctx context.Context, log *slog.Logger) (*saga.Function, error) {
	cfg, err := app.SagaFromEnv(os.Getenv)
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
	s, err := app.Saga(cfg, clients, log, m)
	if err != nil {
		return nil, err
	}
	return s.Function, nil
}
