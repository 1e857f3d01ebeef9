// Command commands is the Lambda function behind the command routes of the HTTP API: it wires
// the event store, the command service and the HTTP adapter, then serves API Gateway HTTP API
// (payload v2.0) events. Everything is read and built once, at cold start, without network I/O;
// a bad configuration fails the cold start loudly.
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/eventfold/eventfold/internal/httpapi"
	"github.com/eventfold/eventfold/internal/lambdaenv"
)

func main() {
	lambdaenv.Start(wire, func(h *httpapi.Handler) any { return h.Handle })
}

func wire(ctx context.Context, log *slog.Logger) (*httpapi.Handler, error) {
	env, err := httpapi.EnvFromLookup(os.Getenv)
	lenv := lambdaenv.New(os.Getenv)
	keysTable, dataKey, ttl := lenv.Keys()
	if err := errors.Join(err, lenv.Err()); err != nil {
		return nil, err
	}
	ddb, kmsAPI, err := lambdaenv.Clients(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := lambdaenv.NewCommandSide(lambdaenv.CommandSide{
		EventsTable: env.EventsTable, SnapshotsTable: env.SnapshotsTable, ClaimsTable: env.ClaimsTable, IdempotencyTable: env.IdempotencyTable,
		KeysTable: keysTable, DataKey: dataKey, KeyCacheTTL: ttl, EmailHashKey: env.EmailHashKey, IdempotencyTTL: env.IdempotencyTTL,
	}, ddb, kmsAPI)
	if err != nil {
		return nil, err
	}
	return httpapi.New(httpapi.Config{
		Commands:    cs.Service,
		Idempotency: cs.Idempotency,
		Log:         log,
		MaxBody:     env.MaxBody,
		HashKey:     env.EmailHashKey,
	})
}
