// Command commands is the Lambda function behind the command routes of the HTTP API: it builds
// the command side (app.Commands, as `eventfold restore apply` does) from its environment, then
// serves API Gateway HTTP API (payload v2.0) events. Everything is read and built once, at cold
// start; the one network call there reads the email hash key from Secrets Manager. A bad
// configuration or an unreadable key fails the cold start loudly.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/eventfold/eventfold/internal/app"
	"github.com/eventfold/eventfold/internal/httpapi"
)

func main() { app.Start(wire, (*httpapi.Handler).Handle) }

func wire(ctx context.Context, log *slog.Logger) (*httpapi.Handler, error) {
	cfg, err := app.CommandsFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	clients, err := app.LoadClients(ctx)
	if err != nil {
		return nil, err
	}
	if cfg.EmailHashKey, err = app.ReadEmailHashKey(ctx, clients.Secrets, cfg.EmailHashKeySecret); err != nil {
		return nil, err
	}
	cs, err := app.Commands(cfg, clients, log)
	if err != nil {
		return nil, err
	}
	return cs.Handler, nil
}
