package app_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/app"
	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/schedule"
)

// unreachable are clients on a port nothing listens on: the constructors do no network I/O.
var unreachable = app.Clients{DynamoDB: localaws.DynamoDB("http://127.0.0.1:1"), KMS: localaws.KMS("http://127.0.0.1:1"),
	Scheduler: localaws.Scheduler("http://127.0.0.1:1")}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

var keys = app.KeysConfig{KeysTable: "k", DataKey: "alias/d"}

// checkProblems fails unless err names every one of want, and is nil when want is empty.
func checkProblems(t *testing.T, what string, err error, want []string) {
	t.Helper()
	if (err == nil) != (len(want) == 0) {
		t.Fatalf("%s = %v, want problems with %v", what, err, want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s = %v, want %s named", what, err, w)
		}
	}
}

func TestProjectorConfigValidateReportsEveryProblem(t *testing.T) {
	full := app.ProjectorConfig{EventsTable: "e", SnapshotsTable: "s", ReadModelsTable: "r", ParkingTable: "p", KeysConfig: keys}
	for _, tc := range []struct {
		name string
		cfg  func(c *app.ProjectorConfig)
		want []string
	}{
		{"complete", func(*app.ProjectorConfig) {}, nil},
		{"an hour of key cache", func(c *app.ProjectorConfig) { c.KeyCacheTTL = time.Hour }, nil},
		{"nothing", func(c *app.ProjectorConfig) { *c = app.ProjectorConfig{} },
			[]string{"EventsTable", "SnapshotsTable", "ReadModelsTable", "ParkingTable", "KeysTable", "DataKey"}},
		{"no keyring and a negative cache time", func(c *app.ProjectorConfig) { c.KeysTable, c.DataKey, c.KeyCacheTTL = "", "", -time.Second },
			[]string{"KeysTable", "DataKey", "KeyCacheTTL"}},
		{"a day of key cache", func(c *app.ProjectorConfig) { c.KeyCacheTTL = 24 * time.Hour }, []string{"KeyCacheTTL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := full
			tc.cfg(&c)
			checkProblems(t, "Validate()", c.Validate(), tc.want)
			// Projector refuses what Validate refuses, and builds what it accepts.
			rs, err := app.Projector(c, unreachable, discard, nil)
			checkProblems(t, "Projector", err, tc.want)
			if err == nil && (rs.Processor == nil || rs.Store == nil || rs.Projector == nil || rs.Parking == nil) {
				t.Fatalf("Projector = %+v, want every part built", rs)
			}
		})
	}
}

func TestCommandsConfigValidateReportsEveryProblem(t *testing.T) {
	full := app.CommandsConfig{EventsTable: "e", SnapshotsTable: "s", ClaimsTable: "c", IdempotencyTable: "i", KeysConfig: keys,
		EmailHashKey: make([]byte, 32)}
	for _, tc := range []struct {
		name string
		cfg  func(c *app.CommandsConfig)
		want []string
	}{
		{"complete, defaults", func(*app.CommandsConfig) {}, nil},
		{"complete, bounds", func(c *app.CommandsConfig) { c.IdempotencyTTL, c.MaxBody = time.Minute, 6<<20 }, nil},
		{"nothing", func(c *app.CommandsConfig) { *c = app.CommandsConfig{} },
			[]string{"EventsTable", "SnapshotsTable", "ClaimsTable", "IdempotencyTable", "KeysTable", "DataKey", "EmailHashKey"}},
		{"a short key, a second of idempotency, a tiny body, a day of key cache", func(c *app.CommandsConfig) {
			c.EmailHashKey, c.IdempotencyTTL, c.MaxBody, c.KeyCacheTTL = make([]byte, 31), time.Second, 10, 24*time.Hour
		}, []string{"EmailHashKey", "IdempotencyTTL", "MaxBody", "KeyCacheTTL"}},
		{"negative values", func(c *app.CommandsConfig) { c.IdempotencyTTL, c.MaxBody = -time.Hour, -1 },
			[]string{"IdempotencyTTL", "MaxBody"}},
		{"a body over 6 MiB", func(c *app.CommandsConfig) { c.MaxBody = 6<<20 + 1 }, []string{"MaxBody"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := full
			tc.cfg(&c)
			checkProblems(t, "Validate()", c.Validate(), tc.want)
			cs, err := app.Commands(c, unreachable, discard)
			checkProblems(t, "Commands", err, tc.want)
			if err == nil && (cs.Handler == nil || cs.Service == nil || cs.Idempotency == nil || cs.Store == nil || cs.Keys == nil) {
				t.Fatalf("Commands = %+v, want every part built", cs)
			}
		})
	}
}

func TestQueriesConfigValidateReportsEveryProblem(t *testing.T) {
	full := app.QueriesConfig{EventsTable: "e", SnapshotsTable: "s", ReadModelsTable: "r", KeysConfig: keys}
	for _, tc := range []struct {
		name string
		cfg  func(c *app.QueriesConfig)
		want []string
	}{
		{"complete", func(*app.QueriesConfig) {}, nil},
		{"a read-your-writes bound", func(c *app.QueriesConfig) { c.MaxWait = 5 * time.Second }, nil},
		{"nothing", func(c *app.QueriesConfig) { *c = app.QueriesConfig{} },
			[]string{"EventsTable", "SnapshotsTable", "ReadModelsTable", "KeysTable", "DataKey"}},
		{"a negative bound and cache time", func(c *app.QueriesConfig) { c.MaxWait, c.KeyCacheTTL = -time.Second, -time.Second },
			[]string{"MaxWait", "KeyCacheTTL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := full
			tc.cfg(&c)
			checkProblems(t, "Validate()", c.Validate(), tc.want)
			q, err := app.Queries(c, unreachable, discard)
			checkProblems(t, "Queries", err, tc.want)
			if err == nil && len(q.Routes()) == 0 {
				t.Fatal("Queries serves no routes")
			}
		})
	}
}

func TestKeysConfigValidateReportsEveryProblem(t *testing.T) {
	checkProblems(t, "Validate()", keys.Validate(), nil)
	checkProblems(t, "Validate()", app.KeysConfig{KeyCacheTTL: 2 * time.Hour}.Validate(), []string{"KeysTable", "DataKey", "KeyCacheTTL"})
}

func TestProjectorFromEnv(t *testing.T) {
	vars := map[string]string{"EVENTS_TABLE": "e", "SNAPSHOTS_TABLE": "s", "READ_MODELS_TABLE": "r", "PARKING_TABLE": "p",
		"KEYS_TABLE": "k", "DATA_KEY": "alias/d", "KEY_CACHE_TTL": "30s"}
	got, err := app.ProjectorFromEnv(func(k string) string { return vars[k] })
	want := app.ProjectorConfig{EventsTable: "e", SnapshotsTable: "s", ReadModelsTable: "r", ParkingTable: "p",
		KeysConfig: app.KeysConfig{KeysTable: "k", DataKey: "alias/d", KeyCacheTTL: 30 * time.Second}}
	if err != nil || got != want {
		t.Fatalf("ProjectorFromEnv = %+v, %v; want %+v", got, err, want)
	}
	_, err = app.ProjectorFromEnv(func(k string) string { return map[string]string{"EVENTS_TABLE": "e", "KEY_CACHE_TTL": "2h"}[k] })
	checkProblems(t, "ProjectorFromEnv", err, []string{"SNAPSHOTS_TABLE", "READ_MODELS_TABLE", "PARKING_TABLE", "KEYS_TABLE", "DATA_KEY", "KEY_CACHE_TTL"})
}

func TestCommandsFromEnv(t *testing.T) {
	const secret = "arn:aws:secretsmanager:us-east-1:000000000000:secret:s-EmailHashKeySecret-AbCdEf"
	good := map[string]string{"EVENTS_TABLE": "e", "SNAPSHOTS_TABLE": "s", "CLAIMS_TABLE": "c", "IDEMPOTENCY_TABLE": "i", "EMAIL_HASH_KEY_SECRET": secret,
		"KEYS_TABLE": "k", "DATA_KEY": "alias/d"}
	env, err := app.CommandsFromEnv(func(k string) string { return good[k] })
	if err != nil || env.EventsTable != "e" || env.EmailHashKeySecret != secret || env.EmailHashKey != nil || env.IdempotencyTTL != 24*time.Hour || env.MaxBody != 64<<10 || env.KeyCacheTTL != 5*time.Minute {
		t.Fatalf("CommandsFromEnv = %+v, %v", env, err)
	}
	// The key itself is read from the secret at cold start (ReadEmailHashKey), never from the
	// environment.
	env.EmailHashKey = bytes.Repeat([]byte{7}, 32)
	if err := env.Validate(); err != nil {
		t.Fatalf("CommandsFromEnv gave a configuration Validate refuses: %v", err)
	}
	_, err = app.CommandsFromEnv(func(k string) string {
		return map[string]string{"EMAIL_HASH_KEY": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)), "IDEMPOTENCY_TTL": "forever", "MAX_BODY_BYTES": "7"}[k]
	})
	checkProblems(t, "bad environment", err, []string{"EVENTS_TABLE", "SNAPSHOTS_TABLE", "CLAIMS_TABLE", "IDEMPOTENCY_TABLE",
		"EMAIL_HASH_KEY_SECRET is not set", "IDEMPOTENCY_TTL", "MAX_BODY_BYTES", "KEYS_TABLE", "DATA_KEY"})
}

func TestQueriesFromEnv(t *testing.T) {
	vars := map[string]string{"EVENTS_TABLE": "e", "SNAPSHOTS_TABLE": "s", "READ_MODELS_TABLE": "r", "KEYS_TABLE": "k", "DATA_KEY": "alias/d"}
	got, err := app.QueriesFromEnv(func(k string) string { return vars[k] })
	want := app.QueriesConfig{EventsTable: "e", SnapshotsTable: "s", ReadModelsTable: "r",
		KeysConfig: app.KeysConfig{KeysTable: "k", DataKey: "alias/d", KeyCacheTTL: 5 * time.Minute}}
	if err != nil || got != want {
		t.Fatalf("QueriesFromEnv = %+v, %v; want %+v", got, err, want)
	}
	_, err = app.QueriesFromEnv(func(string) string { return "" })
	checkProblems(t, "QueriesFromEnv", err, []string{"EVENTS_TABLE", "SNAPSHOTS_TABLE", "READ_MODELS_TABLE", "KEYS_TABLE", "DATA_KEY"})
}

func TestSagaConfigValidateReportsEveryProblem(t *testing.T) {
	full := app.SagaConfig{EventsTable: "e", SnapshotsTable: "s", ParkingTable: "p", KeysConfig: keys,
		Schedules: schedule.Config{Group: "g", RoleARN: "arn:aws:iam::1:role/r", DeadLetterARN: "arn:aws:sqs:eu-west-1:1:q"}}
	for _, tc := range []struct {
		name string
		cfg  func(c *app.SagaConfig)
		want []string
	}{
		{"complete", func(*app.SagaConfig) {}, nil},
		{"a minute to be charged", func(c *app.SagaConfig) { c.Timeout = time.Minute }, nil},
		{"nothing", func(c *app.SagaConfig) { *c = app.SagaConfig{} },
			[]string{"EventsTable", "SnapshotsTable", "ParkingTable", "KeysTable", "DataKey", "schedule group", "scheduler role", "dead-letter queue"}},
		{"half a second", func(c *app.SagaConfig) { c.Timeout = 500 * time.Millisecond }, []string{"Timeout"}},
		{"two days", func(c *app.SagaConfig) { c.Timeout = 48 * time.Hour }, []string{"Timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := full
			tc.cfg(&c)
			checkProblems(t, "Validate()", c.Validate(), tc.want)
			s, err := app.Saga(c, unreachable, discard, nil)
			checkProblems(t, "Saga", err, tc.want)
			if err == nil && (s.Processor == nil || s.Saga == nil || s.Function == nil || s.Commands == nil || s.Parking == nil) {
				t.Fatalf("Saga = %+v, want every part built", s)
			}
		})
	}
}

func TestSagaFromEnv(t *testing.T) {
	vars := map[string]string{"EVENTS_TABLE": "e", "SNAPSHOTS_TABLE": "s", "PARKING_TABLE": "p", "KEYS_TABLE": "k", "DATA_KEY": "alias/d",
		"SCHEDULE_GROUP": "g", "SCHEDULER_ROLE_ARN": "arn:aws:iam::1:role/r", "DEADLINE_DLQ_ARN": "arn:aws:sqs:eu-west-1:1:q", "FULFILMENT_TIMEOUT": "2m"}
	got, err := app.SagaFromEnv(func(k string) string { return vars[k] })
	want := app.SagaConfig{EventsTable: "e", SnapshotsTable: "s", ParkingTable: "p",
		KeysConfig: app.KeysConfig{KeysTable: "k", DataKey: "alias/d", KeyCacheTTL: 5 * time.Minute}, Timeout: 2 * time.Minute,
		Schedules: schedule.Config{Group: "g", RoleARN: "arn:aws:iam::1:role/r", DeadLetterARN: "arn:aws:sqs:eu-west-1:1:q"}}
	if err != nil || got != want {
		t.Fatalf("SagaFromEnv = %+v, %v; want %+v", got, err, want)
	}
	delete(vars, "FULFILMENT_TIMEOUT")
	if got, err := app.SagaFromEnv(func(k string) string { return vars[k] }); err != nil || got.Timeout != 15*time.Minute {
		t.Fatalf("SagaFromEnv without a timeout = %+v, %v; want 15m", got, err)
	}
	_, err = app.SagaFromEnv(func(k string) string { return map[string]string{"FULFILMENT_TIMEOUT": "soon"}[k] })
	checkProblems(t, "SagaFromEnv", err, []string{"EVENTS_TABLE", "SNAPSHOTS_TABLE", "PARKING_TABLE", "KEYS_TABLE", "DATA_KEY",
		"SCHEDULE_GROUP", "SCHEDULER_ROLE_ARN", "DEADLINE_DLQ_ARN", "FULFILMENT_TIMEOUT"})
}
