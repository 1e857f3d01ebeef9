package app

import (
	"log/slog"

	"github.com/eventfold/eventfold/internal/httpapi"
	"github.com/eventfold/eventfold/internal/query"
	"github.com/eventfold/eventfold/internal/store"
)

// Queries builds the query routes on cfg's tables: the read models, and the sealed event store
// the "as of" and audit queries read. It does no network I/O.
func Queries(cfg QueriesConfig, c Clients, log *slog.Logger) (*httpapi.Queries, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := sealedStore(c, store.Config{EventsTable: cfg.EventsTable, SnapshotsTable: cfg.SnapshotsTable}, cfg.KeysConfig)
	if err != nil {
		return nil, err
	}
	return httpapi.NewQueries(query.New(query.Config{API: c.DynamoDB, Table: cfg.ReadModelsTable, Events: s.Store, Envelopes: s.Raw, MaxWait: cfg.MaxWait}), log), nil
}
