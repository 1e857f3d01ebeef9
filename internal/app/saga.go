package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/consumer"
	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/metrics"
	"github.com/eventfold/eventfold/internal/saga"
	"github.com/eventfold/eventfold/internal/schedule"
	"github.com/eventfold/eventfold/internal/store"
)

// SagaConfig configures the saga (Saga): the tables runs and the commands they issue read and
// write, the keyring that opens orders, the runs' timeout and the schedules of their deadlines.
type SagaConfig struct {
	EventsTable, SnapshotsTable, ParkingTable string
	KeysConfig
	// Timeout is how long a run has to be charged; 0 means 15m, else from 1s to 24h.
	Timeout time.Duration
	// Schedules is where deadlines are scheduled: the group, the role the scheduler assumes to
	// invoke the saga, and the dead-letter queue of firings that fail.
	Schedules schedule.Config
}

// Validate reports every problem of the configuration at once.
func (c SagaConfig) Validate() error {
	const p = "saga"
	errs := required(p, field{"EventsTable", c.EventsTable}, field{"SnapshotsTable", c.SnapshotsTable}, field{"ParkingTable", c.ParkingTable})
	errs = append(errs, c.KeysConfig.problems(p)...)
	if c.Timeout < 0 || (c.Timeout > 0 && (c.Timeout < time.Second || c.Timeout > 24*time.Hour)) {
		errs = append(errs, errors.New(p+": Timeout must be 0 (15m) or from 1s to 24h"))
	}
	if err := c.Schedules.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// SagaFromEnv reads the saga function's configuration through getenv: EVENTS_TABLE,
// SNAPSHOTS_TABLE, PARKING_TABLE, SCHEDULE_GROUP, SCHEDULER_ROLE_ARN and DEADLINE_DLQ_ARN are
// required; FULFILMENT_TIMEOUT (a duration, default 15m) is optional; and the keyring's
// variables (see env.keys). It reports every problem at once.
func SagaFromEnv(getenv func(string) string) (SagaConfig, error) {
	e := env{getenv: getenv}
	c := SagaConfig{
		EventsTable: e.require("EVENTS_TABLE"), SnapshotsTable: e.require("SNAPSHOTS_TABLE"), ParkingTable: e.require("PARKING_TABLE"),
		Timeout: saga.DefaultTimeout,
		Schedules: schedule.Config{Group: e.require("SCHEDULE_GROUP"), RoleARN: e.require("SCHEDULER_ROLE_ARN"),
			DeadLetterARN: e.require("DEADLINE_DLQ_ARN")},
	}
	c.KeysConfig = e.keys()
	if v := getenv("FULFILMENT_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > 24*time.Hour {
			e.errs = append(e.errs, errors.New("FULFILMENT_TIMEOUT must be a duration from 1s to 24h, such as 15m"))
		}
		c.Timeout = d
	}
	return c, e.err()
}

// SagaSide is the saga, wired. Its fields are safe for concurrent use.
type SagaSide struct {
	// Store is the event store the runs live in and the commands append through.
	Store *crypto.SealingStore
	// Saga carries out runs, issuing commands through Commands.
	Saga     *saga.Saga
	Commands *command.Service
	Parking  *consumer.ParkingTable
	// Processor, the consumer named "saga", runs stream batches and parked events through Saga.
	Processor *consumer.Processor
	// Function is the saga function's handler: stream batches and deadlines.
	Function *saga.Function
}

// Saga builds the saga on cfg's tables: the sealing store (orders hold personal data; runs
// never do), the command service the runs issue through (no email key: it runs no user
// command), the deadlines' scheduler, the parking table and the processor, which logs to log
// and emits metrics to m (nil: none). The saga function serves its Function; `eventfold sagas`
// builds it too. It does no network I/O.
func Saga(cfg SagaConfig, c Clients, log *slog.Logger, m *metrics.Emitter) (*SagaSide, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := sealedStore(c, store.Config{EventsTable: cfg.EventsTable, SnapshotsTable: cfg.SnapshotsTable}, cfg.KeysConfig)
	if err != nil {
		return nil, err
	}
	svc, err := command.New(command.Config{Store: s.Store, Metrics: m})
	if err != nil {
		return nil, err
	}
	sched, err := schedule.New(c.Scheduler, cfg.Schedules)
	if err != nil {
		return nil, err
	}
	sg, err := saga.New(saga.Config{Store: s.Store, Commands: svc, Deadlines: deadlines{sched}, Name: deadlineName,
		Timeout: cfg.Timeout, Log: log, Metrics: m})
	if err != nil {
		return nil, err
	}
	parking := consumer.NewParkingTable(c.DynamoDB, cfg.ParkingTable)
	proc, err := consumer.New(consumer.Config{Name: "saga", Registry: s.Registry, Handler: sg, Parking: parking, Log: log, Metrics: m, Unsealer: consumer.NoUnsealer})
	if err != nil {
		return nil, err
	}
	return &SagaSide{Store: s.Store, Saga: sg, Commands: svc, Parking: parking, Processor: proc,
		Function: &saga.Function{Batches: proc, Saga: sg}}, nil
}

// deadlineName names the schedule of an order's run.
func deadlineName(orderID string) string { return schedule.Name("fulfilment", orderID) }

// deadlines is the scheduler as the saga's Deadlines.
type deadlines struct{ s *schedule.Scheduler }

func (d deadlines) Set(ctx context.Context, name string, at time.Time, target string, input []byte) error {
	return d.s.Set(ctx, schedule.Schedule{Name: name, At: at, TargetARN: target, Input: input})
}

func (d deadlines) Cancel(ctx context.Context, name string) error { return d.s.Cancel(ctx, name) }
