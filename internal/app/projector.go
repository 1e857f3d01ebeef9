package app

import (
	"context"
	"log/slog"

	"github.com/eventfold/eventfold/internal/consumer"
	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/metrics"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/store"
)

// ReadSide is the read side, wired: what keeps the read models and what rebuilds them, all
// reading events through one sealing store. Its fields are safe for concurrent use.
type ReadSide struct {
	// Store is the event store; it opens personal fields on load (events of erased subjects come
	// back Shredded).
	Store *crypto.SealingStore
	// Keys is Store's keyring.
	Keys     *crypto.Keyring
	Registry *store.Registry
	// Projector writes ReadModelsTable, filling gaps through Store.
	Projector *projection.Projector
	Parking   *consumer.ParkingTable
	// Processor, the consumer named "projector", runs stream batches and parked events through
	// Projector, opening each event through Store first.
	Processor *consumer.Processor

	clients Clients
	events  string
}

// Projector builds the read side on cfg's tables: the store sealing and opening through a
// keyring, the projector, the parking table and the processor, which logs to log and emits
// metrics to m (nil: none). The projector function serves its Processor; `eventfold projections
// rebuild` and `eventfold parked replay` build it too, so every path that writes read models
// opens personal fields as the projector does. It does no network I/O.
func Projector(cfg ProjectorConfig, c Clients, log *slog.Logger, m *metrics.Emitter) (*ReadSide, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := sealedStore(c, store.Config{EventsTable: cfg.EventsTable, SnapshotsTable: cfg.SnapshotsTable}, cfg.KeysConfig)
	if err != nil {
		return nil, err
	}
	proj := projection.New(c.DynamoDB, cfg.ReadModelsTable, s.Store)
	parking := consumer.NewParkingTable(c.DynamoDB, cfg.ParkingTable)
	proc, err := consumer.New(consumer.Config{Name: "projector", Registry: s.Registry, Handler: proj, Parking: parking, Log: log, Metrics: m, Unsealer: s.Store})
	if err != nil {
		return nil, err
	}
	return &ReadSide{
		Store: s.Store, Keys: s.Keys, Registry: s.Registry, Projector: proj, Parking: parking, Processor: proc,
		clients: c, events: cfg.EventsTable,
	}, nil
}

// Rebuild brings the read-model table target up to date with the whole event store, opening
// personal fields through Store as the projector does: see projection.Rebuild.
func (r *ReadSide) Rebuild(ctx context.Context, target string, segments int, report func(projection.Progress)) (projection.Progress, error) {
	return projection.Rebuild(ctx, projection.RebuildConfig{API: r.clients.DynamoDB, EventsTable: r.events, Target: target,
		Registry: r.Registry, Source: r.Store, Segments: segments, Report: report})
}
