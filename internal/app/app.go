// Package app builds eventfold's object graphs, one constructor per graph from one typed
// configuration: Commands (the command side behind the HTTP API), Projector (the read side on
// the event store's stream) and Queries (the query routes); the saga's goes beside them (see
// saga.go). The Lambda functions (functions/*) read each configuration from their environment
// (CommandsFromEnv, ProjectorFromEnv, QueriesFromEnv) and the operator commands (cmd/eventfold)
// from their flags; both build with the same constructor, so a graph is wired one way only.
// Every configuration has a Validate that reports every problem at once. Nothing here does
// network I/O.
package app

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/eventfold/eventfold/internal/awscall"
	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/schedule"
	"github.com/eventfold/eventfold/internal/store"
)

// Start is a function's main: it builds its graph h with wire at cold start, logging JSON to
// stdout, and serves handle(h, ...) with the Lambda runtime (lambda.StartHandlerFunc, so the
// handler's signature is checked at compile time). A graph that cannot be built fails the cold
// start loudly, with every problem found, and exits. handle is a method expression such as
// (*httpapi.Handler).Handle.
func Start[H, In, Out any](wire func(context.Context, *slog.Logger) (H, error), handle func(H, context.Context, In) (Out, error)) {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	h, err := wire(context.Background(), log)
	if err != nil {
		log.Error("cold start failed", "error", err.Error())
		os.Exit(1)
	}
	lambda.StartHandlerFunc(func(ctx context.Context, in In) (Out, error) { return handle(h, ctx, in) })
}

// Clients are the AWS clients the graphs share.
type Clients struct {
	DynamoDB *dynamodb.Client
	KMS      crypto.KMS
	// Scheduler sets and cancels the saga's deadlines; only the saga needs it.
	Scheduler schedule.API
	// Secrets reads the email hash key (ReadEmailHashKey); only the command side needs it.
	Secrets SecretAPI
}

// LoadClients returns the DynamoDB, KMS, Scheduler and Secrets Manager clients, from the
// function's AWS configuration, read once (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_KMS,
// AWS_ENDPOINT_URL_SCHEDULER and AWS_ENDPOINT_URL_SECRETS_MANAGER point them at the local stack).
// When awscall.EnvLog is set (the local runner sets it), every call the clients make is recorded
// there (package awscall). Against a local DynamoDB endpoint response checksums are not validated: DynamoDB Local's do
// not always match.
func LoadClients(ctx context.Context) (Clients, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return Clients{}, err
	}
	// Under the local runner only (it sets awscall.EnvLog), every call is recorded for the
	// least-privilege test; in AWS rec is nil and the clients are as the SDK builds them.
	rec, err := awscall.FromEnv(os.Getenv)
	if err != nil {
		return Clients{}, err
	}
	if rec != nil {
		cfg.APIOptions = append(cfg.APIOptions, rec.Middleware)
	}
	local := os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") != "" || os.Getenv("AWS_ENDPOINT_URL") != ""
	ddb := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = local })
	return Clients{DynamoDB: ddb, KMS: kms.NewFromConfig(cfg), Scheduler: scheduler.NewFromConfig(cfg),
		Secrets: secretsmanager.NewFromConfig(cfg)}, nil
}

// maxCachedKeys is how many unwrapped data keys a cached keyring holds.
const maxCachedKeys = 10_000

// defaultKeyCacheTTL is KeysConfig.KeyCacheTTL's 0.
const defaultKeyCacheTTL = 5 * time.Minute

// Keyring returns the keyring cfg describes, on c's keys table and KMS key.
func Keyring(cfg KeysConfig, c Clients) *crypto.Keyring {
	kc := crypto.KeyringConfig{Table: cfg.KeysTable, KeyID: cfg.DataKey, MaxKeys: maxCachedKeys, TTL: cfg.KeyCacheTTL}
	if kc.TTL == 0 {
		kc.TTL = defaultKeyCacheTTL
	}
	if cfg.Uncached {
		kc.MaxKeys = 0
	}
	return crypto.NewKeyring(c.KMS, c.DynamoDB, kc)
}

// sealed is the event store with personal fields sealed under per-subject keys on append and
// opened on load (events of erased subjects come back Shredded), its keyring, and the domain's
// event types.
type sealed struct {
	// Raw is the store under Store, for what reads no payload.
	Raw      *store.DynamoDB
	Store    *crypto.SealingStore
	Keys     *crypto.Keyring
	Registry *store.Registry
}

// sealedStore builds the sealed event store on tables through a keyring as keys says; every
// graph reads and writes events through one.
func sealedStore(c Clients, tables store.Config, keys KeysConfig) (sealed, error) {
	reg, err := command.Registry()
	if err != nil {
		return sealed{}, err
	}
	tables.Registry = reg
	st, err := store.New(c.DynamoDB, tables)
	if err != nil {
		return sealed{}, err
	}
	kr := Keyring(keys, c)
	return sealed{Raw: st, Store: crypto.NewSealingStore(st, kr, domain.PersonalFields), Keys: kr, Registry: reg}, nil
}
