package app

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// KeysConfig configures the keyring that seals and opens personal fields.
type KeysConfig struct {
	// KeysTable holds the wrapped data keys; DataKey is the KMS key wrapping them (ID, ARN or
	// alias).
	KeysTable, DataKey string
	// KeyCacheTTL bounds how long an erased subject's key can still be used by a warm process;
	// 0 means 5m, at most 1h.
	KeyCacheTTL time.Duration
	// Uncached makes a keyring that caches no key: every Seal and Open reads the keys table and
	// asks KMS, so it sees what any process reading the tables now would (erasure audit).
	Uncached bool
}

func (c KeysConfig) problems(prefix string) []error {
	errs := required(prefix, field{"KeysTable", c.KeysTable}, field{"DataKey", c.DataKey})
	if c.KeyCacheTTL < 0 || c.KeyCacheTTL > time.Hour {
		errs = append(errs, errors.New(prefix+": KeyCacheTTL must be from 0 to 1h (0 means 5m)"))
	}
	return errs
}

// Validate reports every problem of the configuration at once.
func (c KeysConfig) Validate() error { return errors.Join(c.problems("keys")...) }

// CommandsConfig configures the command side (Commands): the tables commands read and write,
// the keyring that seals personal fields, the email hash key and the idempotency records.
type CommandsConfig struct {
	EventsTable, SnapshotsTable, ClaimsTable, IdempotencyTable string
	KeysConfig
	// EmailHashKey keys the email uniqueness guards and the fingerprints of idempotency records:
	// at least 32 secret bytes, read from the secret EmailHashKeySecret names (see
	// ReadEmailHashKey).
	EmailHashKey []byte
	// EmailHashKeySecret is the Secrets Manager secret (ARN or name) holding EmailHashKey; only
	// what reads the key needs it.
	EmailHashKeySecret string
	// IdempotencyTTL is how long idempotency records live; 0 means 24h, else at least a minute.
	IdempotencyTTL time.Duration
	// MaxBody is the largest request body, in bytes; 0 means 64 KiB, else from 1 KiB to 6 MiB.
	MaxBody int
}

// Validate reports every problem of the configuration at once.
func (c CommandsConfig) Validate() error {
	const p = "commands"
	errs := required(p, field{"EventsTable", c.EventsTable}, field{"SnapshotsTable", c.SnapshotsTable},
		field{"ClaimsTable", c.ClaimsTable}, field{"IdempotencyTable", c.IdempotencyTable})
	errs = append(errs, c.KeysConfig.problems(p)...)
	if len(c.EmailHashKey) < 32 {
		errs = append(errs, errors.New(p+": EmailHashKey needs at least 32 bytes"))
	}
	if c.IdempotencyTTL < 0 || (c.IdempotencyTTL > 0 && c.IdempotencyTTL < time.Minute) {
		errs = append(errs, errors.New(p+": IdempotencyTTL must be 0 (24h) or a minute or more"))
	}
	if c.MaxBody < 0 || (c.MaxBody > 0 && (c.MaxBody < minBody || c.MaxBody > maxBody)) {
		errs = append(errs, fmt.Errorf("%s: MaxBody must be 0 (64 KiB) or from %d to %d", p, minBody, maxBody))
	}
	return errors.Join(errs...)
}

const (
	minBody = 1024
	maxBody = 6 << 20 // API Gateway's and Lambda's payload limit
)

// ProjectorConfig configures the read side (Projector): the tables the projector reads and
// writes, and the keyring that opens personal fields.
type ProjectorConfig struct {
	EventsTable, SnapshotsTable, ReadModelsTable, ParkingTable string
	KeysConfig
}

// Validate reports every problem of the configuration at once.
func (c ProjectorConfig) Validate() error {
	const p = "projector"
	errs := required(p, field{"EventsTable", c.EventsTable}, field{"SnapshotsTable", c.SnapshotsTable},
		field{"ReadModelsTable", c.ReadModelsTable}, field{"ParkingTable", c.ParkingTable})
	return errors.Join(append(errs, c.KeysConfig.problems(p)...)...)
}

// QueriesConfig configures the query routes (Queries): the read models, and the event store
// the "as of" and audit queries read.
type QueriesConfig struct {
	EventsTable, SnapshotsTable, ReadModelsTable string
	KeysConfig
	// MaxWait bounds how long a read-your-writes query waits for the read model to reach the
	// version asked for; 0 means 2s.
	MaxWait time.Duration
}

// Validate reports every problem of the configuration at once.
func (c QueriesConfig) Validate() error {
	const p = "queries"
	errs := required(p, field{"EventsTable", c.EventsTable}, field{"SnapshotsTable", c.SnapshotsTable},
		field{"ReadModelsTable", c.ReadModelsTable})
	errs = append(errs, c.KeysConfig.problems(p)...)
	if c.MaxWait < 0 {
		errs = append(errs, errors.New(p+": MaxWait must not be negative (0 means 2s)"))
	}
	return errors.Join(errs...)
}

type field struct{ name, value string }

func required(prefix string, fields ...field) []error {
	var errs []error
	for _, f := range fields {
		if f.value == "" {
			errs = append(errs, errors.New(prefix+": "+f.name+" is required"))
		}
	}
	return errs
}

// CommandsFromEnv reads the commands function's configuration through getenv (os.Getenv in
// main; template.yaml sets the variables in AWS, the local runner on a laptop): EVENTS_TABLE,
// SNAPSHOTS_TABLE, CLAIMS_TABLE, IDEMPOTENCY_TABLE and EMAIL_HASH_KEY_SECRET (the secret
// holding the email hash key, which ReadEmailHashKey then reads into EmailHashKey) are
// required; IDEMPOTENCY_TTL (a duration, default 24h) and MAX_BODY_BYTES (default 65536) are
// optional; and the keyring's variables (KEYS_TABLE, DATA_KEY, KEY_CACHE_TTL: see
// env.keys). It reports every problem at once.
func CommandsFromEnv(getenv func(string) string) (CommandsConfig, error) {
	e := env{getenv: getenv}
	c := CommandsConfig{
		EventsTable: e.require("EVENTS_TABLE"), SnapshotsTable: e.require("SNAPSHOTS_TABLE"),
		ClaimsTable: e.require("CLAIMS_TABLE"), IdempotencyTable: e.require("IDEMPOTENCY_TABLE"),
		IdempotencyTTL: 24 * time.Hour, MaxBody: 64 << 10,
	}
	c.KeysConfig = e.keys()
	c.EmailHashKeySecret = e.require("EMAIL_HASH_KEY_SECRET")
	if v := getenv("IDEMPOTENCY_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute {
			e.errs = append(e.errs, errors.New("IDEMPOTENCY_TTL must be a duration of a minute or more, such as 24h"))
		}
		c.IdempotencyTTL = d
	}
	if v := getenv("MAX_BODY_BYTES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < minBody || n > maxBody {
			e.errs = append(e.errs, fmt.Errorf("MAX_BODY_BYTES must be from %d to %d", minBody, maxBody))
		}
		c.MaxBody = n
	}
	return c, e.err()
}

// ProjectorFromEnv reads the projector function's configuration through getenv: EVENTS_TABLE,
// SNAPSHOTS_TABLE, READ_MODELS_TABLE, PARKING_TABLE and the keyring's variables (KEYS_TABLE,
// DATA_KEY, KEY_CACHE_TTL: see env.keys). It reports every problem at once.
func ProjectorFromEnv(getenv func(string) string) (ProjectorConfig, error) {
	e := env{getenv: getenv}
	c := ProjectorConfig{
		EventsTable: e.require("EVENTS_TABLE"), SnapshotsTable: e.require("SNAPSHOTS_TABLE"),
		ReadModelsTable: e.require("READ_MODELS_TABLE"), ParkingTable: e.require("PARKING_TABLE"),
	}
	c.KeysConfig = e.keys()
	return c, e.err()
}

// QueriesFromEnv reads the queries function's configuration through getenv: EVENTS_TABLE,
// SNAPSHOTS_TABLE, READ_MODELS_TABLE and the keyring's variables (KEYS_TABLE, DATA_KEY,
// KEY_CACHE_TTL: see env.keys); MaxWait keeps its default. It reports every problem at once.
func QueriesFromEnv(getenv func(string) string) (QueriesConfig, error) {
	e := env{getenv: getenv}
	c := QueriesConfig{EventsTable: e.require("EVENTS_TABLE"), SnapshotsTable: e.require("SNAPSHOTS_TABLE"), ReadModelsTable: e.require("READ_MODELS_TABLE")}
	c.KeysConfig = e.keys()
	return c, e.err()
}

// env reads variables and remembers every problem.
type env struct {
	getenv func(string) string
	errs   []error
}

// require returns the variable's value, noting it when it is unset.
func (e *env) require(name string) string {
	v := e.getenv(name)
	if v == "" {
		e.errs = append(e.errs, errors.New(name+" is not set"))
	}
	return v
}

func (e *env) err() error { return errors.Join(e.errs...) }

// keys reads the keyring's variables: KEYS_TABLE and DATA_KEY (the KMS key's ID, ARN or alias)
// are required; KEY_CACHE_TTL (a duration, default 5m) bounds how long an erased subject's key can still be
// used by a warm function.
func (e *env) keys() KeysConfig {
	c := KeysConfig{KeysTable: e.require("KEYS_TABLE"), DataKey: e.require("DATA_KEY"), KeyCacheTTL: defaultKeyCacheTTL}
	if v := e.getenv("KEY_CACHE_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > time.Hour {
			e.errs = append(e.errs, errors.New("KEY_CACHE_TTL must be a duration from 1ns to 1h, such as 5m"))
		}
		c.KeyCacheTTL = d
	}
	return c
}
