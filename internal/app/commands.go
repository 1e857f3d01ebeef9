package app

import (
	"log/slog"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/httpapi"
	"github.com/eventfold/eventfold/internal/idempotency"
	"github.com/eventfold/eventfold/internal/metrics"
	"github.com/eventfold/eventfold/internal/store"
)

// CommandSide is the command side, wired. Its fields are safe for concurrent use.
type CommandSide struct {
	// Store is the event store, sealing personal fields on append and opening them on load.
	Store *crypto.SealingStore
	// Keys is Store's keyring; Service erases through it.
	Keys *crypto.Keyring
	// Service runs the commands.
	Service     *command.Service
	Idempotency *idempotency.Store
	// Handler serves the command routes through Service and Idempotency, logging to log.
	Handler *httpapi.Handler
}

// Commands builds the command side on cfg's tables: what the commands function serves and what
// `eventfold restore apply` erases again through; its commands emit their metrics to m (nil:
// none). It does no network I/O.
func Commands(cfg CommandsConfig, c Clients, log *slog.Logger, m *metrics.Emitter) (*CommandSide, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := sealedStore(c, store.Config{EventsTable: cfg.EventsTable, SnapshotsTable: cfg.SnapshotsTable, ClaimsTable: cfg.ClaimsTable}, cfg.KeysConfig)
	if err != nil {
		return nil, err
	}
	svc, err := command.New(command.Config{Store: s.Store, EmailKey: cfg.EmailHashKey, Eraser: s.Keys, Metrics: m})
	if err != nil {
		return nil, err
	}
	idem, err := idempotency.New(idempotency.Config{API: c.DynamoDB, Table: cfg.IdempotencyTable, TTL: cfg.IdempotencyTTL})
	if err != nil {
		return nil, err
	}
	h, err := httpapi.New(httpapi.Config{Commands: svc, Idempotency: idem, Log: log, MaxBody: cfg.MaxBody, HashKey: cfg.EmailHashKey})
	if err != nil {
		return nil, err
	}
	return &CommandSide{Store: s.Store, Keys: s.Keys, Service: svc, Idempotency: idem, Handler: h}, nil
}
