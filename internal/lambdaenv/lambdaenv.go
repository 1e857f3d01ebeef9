// Package lambdaenv is what every eventfold Lambda function reads and builds the same way at cold
// start: required environment variables, reported all at once, and the DynamoDB client and
// event store they share; and the read side (ReadSide), wired once for the projector and the
// operator commands that write read models. Nothing here does network I/O.
package lambdaenv

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/consumer"
	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/idempotency"
	"github.com/eventfold/eventfold/internal/metrics"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/store"
)

// Start is a function's main: it builds the handler with wire at cold start, logging JSON to
// stdout, and serves handler(h) with the Lambda runtime. A handler that cannot be built fails
// the cold start loudly, with every problem found, and exits.
func Start[H any](wire func(context.Context, *slog.Logger) (H, error), handler func(H) any) {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	h, err := wire(context.Background(), log)
	if err != nil {
		log.Error("cold start failed", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(handler(h))
}

// Env reads required variables and remembers every one missing.
type Env struct {
	getenv func(string) string
	errs   []error
}

// New returns an Env reading through getenv (os.Getenv in a function).
func New(getenv func(string) string) *Env { return &Env{getenv: getenv} }

// Require returns the variable's value, noting it when it is unset.
func (e *Env) Require(name string) string {
	v := e.getenv(name)
	if v == "" {
		e.errs = append(e.errs, errors.New(name+" is not set"))
	}
	return v
}

// Err reports every variable Require found unset.
func (e *Env) Err() error { return errors.Join(e.errs...) }

// Clients returns the DynamoDB and KMS clients, from the function's AWS configuration, read
// once (AWS_ENDPOINT_URL_DYNAMODB and AWS_ENDPOINT_URL_KMS point them at the local stack).
// Against a local DynamoDB endpoint response checksums are not validated: DynamoDB Local's do
// not always match.
func Clients(ctx context.Context) (*dynamodb.Client, *kms.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, nil, err
	}
	local := os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") != "" || os.Getenv("AWS_ENDPOINT_URL") != ""
	ddb := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = local })
	return ddb, kms.NewFromConfig(cfg), nil
}

// Keys configures the keyring from the environment: KEYS_TABLE and DATA_KEY (the KMS key's ID,
// ARN or alias) are required; KEY_CACHE_TTL (a duration, default 5m) bounds how long an erased
// subject's key can still be used by a warm function.
func (e *Env) Keys() (table, key string, ttl time.Duration) {
	table, key, ttl = e.Require("KEYS_TABLE"), e.Require("DATA_KEY"), 5*time.Minute
	if v := e.getenv("KEY_CACHE_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > time.Hour {
			e.errs = append(e.errs, errors.New("KEY_CACHE_TTL must be a duration from 1ns to 1h, such as 5m"))
		}
		ttl = d
	}
	return table, key, ttl
}

// SealedStore returns the event store with personal fields sealed under per-subject keys, and
// the keyring.
func SealedStore(ddb *dynamodb.Client, kmsAPI crypto.KMS, cfg store.Config, keysTable, dataKey string, ttl time.Duration) (*crypto.Store, *crypto.Keyring, *store.Registry, error) {
	st, reg, err := Store(ddb, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	keys := crypto.NewKeyring(kmsAPI, ddb, crypto.KeyringConfig{Table: keysTable, KeyID: dataKey, MaxKeys: 10_000, TTL: ttl})
	return crypto.NewStore(st, keys, domain.PersonalFields), keys, reg, nil
}

// Store returns the event store on the given tables, with the domain's event types.
func Store(api store.API, cfg store.Config) (*store.DynamoDB, *store.Registry, error) {
	reg, err := command.Registry()
	if err != nil {
		return nil, nil, err
	}
	cfg.Registry = reg
	st, err := store.New(api, cfg)
	return st, reg, err
}

// ReadSide configures the read side: the tables the projector reads and writes, and the keyring
// that opens personal fields. The projector Lambda reads it from its environment (Env.ReadSide);
// the operator commands that write read models (projections rebuild, parked replay) from their
// flags; both build it with NewReadSide, so both see personal data as the projector does.
type ReadSide struct {
	EventsTable, SnapshotsTable, ReadModelsTable, ParkingTable string
	// KeysTable holds the wrapped data keys; DataKey is the KMS key wrapping them (ID, ARN or
	// alias).
	KeysTable, DataKey string
	// KeyCacheTTL bounds how long an erased subject's key can still open their fields in a warm
	// process; 0 means 5m, at most 1h.
	KeyCacheTTL time.Duration
}

// Validate reports every problem of the configuration at once.
func (c ReadSide) Validate() error {
	var errs []error
	for _, f := range []struct{ name, value string }{
		{"EventsTable", c.EventsTable}, {"SnapshotsTable", c.SnapshotsTable}, {"ReadModelsTable", c.ReadModelsTable},
		{"ParkingTable", c.ParkingTable}, {"KeysTable", c.KeysTable}, {"DataKey", c.DataKey},
	} {
		if f.value == "" {
			errs = append(errs, errors.New("read side: "+f.name+" is required"))
		}
	}
	if c.KeyCacheTTL < 0 || c.KeyCacheTTL > time.Hour {
		errs = append(errs, errors.New("read side: KeyCacheTTL must be from 0 to 1h (0 means 5m)"))
	}
	return errors.Join(errs...)
}

// ReadSide reads the read side's configuration: EVENTS_TABLE, SNAPSHOTS_TABLE,
// READ_MODELS_TABLE, PARKING_TABLE and the keyring's variables (see Keys). Err reports what is
// missing or malformed.
func (e *Env) ReadSide() ReadSide {
	c := ReadSide{
		EventsTable: e.Require("EVENTS_TABLE"), SnapshotsTable: e.Require("SNAPSHOTS_TABLE"),
		ReadModelsTable: e.Require("READ_MODELS_TABLE"), ParkingTable: e.Require("PARKING_TABLE"),
	}
	c.KeysTable, c.DataKey, c.KeyCacheTTL = e.Keys()
	return c
}

// ReadModels is the read side, wired: what keeps the read models and what rebuilds them, all
// reading events through one sealing store. Its fields are safe for concurrent use.
type ReadModels struct {
	// Store is the event store; it opens personal fields on load (events of erased subjects come
	// back Shredded).
	Store *crypto.Store
	// Keys is Store's keyring.
	Keys     *crypto.Keyring
	Registry *store.Registry
	// Projector writes ReadModelsTable, filling gaps through Store.
	Projector *projection.Projector
	Parking   *consumer.ParkingTable
	// Processor, the consumer named "projector", runs stream batches and parked events through
	// Projector, opening each event through Store first.
	Processor *consumer.Processor

	api    *dynamodb.Client
	events string
}

// NewReadSide wires the read side on cfg's tables: the store sealing and opening through a
// keyring on kmsAPI, the projector, the parking table and the processor, which logs to log and
// emits metrics to m (nil: none). It does no network I/O.
func NewReadSide(cfg ReadSide, ddb *dynamodb.Client, kmsAPI crypto.KMS, log *slog.Logger, m *metrics.Emitter) (*ReadModels, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.KeyCacheTTL == 0 {
		cfg.KeyCacheTTL = 5 * time.Minute
	}
	st, keys, reg, err := SealedStore(ddb, kmsAPI, store.Config{EventsTable: cfg.EventsTable, SnapshotsTable: cfg.SnapshotsTable}, cfg.KeysTable, cfg.DataKey, cfg.KeyCacheTTL)
	if err != nil {
		return nil, err
	}
	proj := projection.New(ddb, cfg.ReadModelsTable, st)
	parking := consumer.NewParkingTable(ddb, cfg.ParkingTable)
	return &ReadModels{
		Store: st, Keys: keys, Registry: reg, Projector: proj, Parking: parking,
		Processor: consumer.New("projector", reg, proj, parking, log, m).OpenWith(st),
		api:       ddb, events: cfg.EventsTable,
	}, nil
}

// Rebuild brings the read-model table target up to date with the whole event store, opening
// personal fields through Store as the projector does: see projection.Rebuild.
func (r *ReadModels) Rebuild(ctx context.Context, target string, segments int, report func(projection.Progress)) (projection.Progress, error) {
	return projection.Rebuild(ctx, projection.RebuildConfig{API: r.api, EventsTable: r.events, Target: target, Registry: r.Registry, Source: r.Store, Segments: segments, Report: report})
}

// CommandSide configures the command side: the tables commands read and write, the keyring that
// seals personal fields, the email hash key and the idempotency records. The commands Lambda
// reads it from its environment; the operator commands that run commands (restore apply, which
// erases again) from their flags; both build it with NewCommandSide.
type CommandSide struct {
	EventsTable, SnapshotsTable, ClaimsTable, IdempotencyTable string
	// KeysTable holds the wrapped data keys; DataKey is the KMS key wrapping them.
	KeysTable, DataKey string
	// KeyCacheTTL: see ReadSide; 0 means 5m.
	KeyCacheTTL time.Duration
	// EmailHashKey keys the email uniqueness guards: at least 32 secret bytes.
	EmailHashKey []byte
	// IdempotencyTTL is how long idempotency records live; 0 means 24h.
	IdempotencyTTL time.Duration
}

// Validate reports every problem of the configuration at once.
func (c CommandSide) Validate() error {
	var errs []error
	for _, f := range []struct{ name, value string }{
		{"EventsTable", c.EventsTable}, {"SnapshotsTable", c.SnapshotsTable}, {"ClaimsTable", c.ClaimsTable},
		{"IdempotencyTable", c.IdempotencyTable}, {"KeysTable", c.KeysTable}, {"DataKey", c.DataKey},
	} {
		if f.value == "" {
			errs = append(errs, errors.New("command side: "+f.name+" is required"))
		}
	}
	if len(c.EmailHashKey) < 32 {
		errs = append(errs, errors.New("command side: EmailHashKey needs at least 32 bytes"))
	}
	if c.KeyCacheTTL < 0 || c.KeyCacheTTL > time.Hour {
		errs = append(errs, errors.New("command side: KeyCacheTTL must be from 0 to 1h (0 means 5m)"))
	}
	return errors.Join(errs...)
}

// Commands is the command side, wired. Its fields are safe for concurrent use.
type Commands struct {
	// Store is the event store, sealing personal fields on append and opening them on load.
	Store *crypto.Store
	Keys  *crypto.Keyring
	// Service runs the commands; Keys erases.
	Service     *command.Service
	Idempotency *idempotency.Store
}

// NewCommandSide wires the command side on cfg's tables. It does no network I/O.
func NewCommandSide(cfg CommandSide, ddb *dynamodb.Client, kmsAPI crypto.KMS) (*Commands, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.KeyCacheTTL == 0 {
		cfg.KeyCacheTTL = 5 * time.Minute
	}
	st, keys, _, err := SealedStore(ddb, kmsAPI, store.Config{EventsTable: cfg.EventsTable, SnapshotsTable: cfg.SnapshotsTable, ClaimsTable: cfg.ClaimsTable}, cfg.KeysTable, cfg.DataKey, cfg.KeyCacheTTL)
	if err != nil {
		return nil, err
	}
	svc, err := command.New(command.Config{Store: st, EmailKey: cfg.EmailHashKey, Eraser: keys})
	if err != nil {
		return nil, err
	}
	return &Commands{Store: st, Keys: keys, Service: svc, Idempotency: idempotency.New(ddb, cfg.IdempotencyTable, cfg.IdempotencyTTL, nil)}, nil
}
