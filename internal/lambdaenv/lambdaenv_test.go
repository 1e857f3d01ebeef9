package lambdaenv_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/lambdaenv"
	"github.com/eventfold/eventfold/internal/localaws"
)

func TestReadSideValidateReportsEveryProblem(t *testing.T) {
	full := lambdaenv.ReadSide{EventsTable: "e", SnapshotsTable: "s", ReadModelsTable: "r", ParkingTable: "p", KeysTable: "k", DataKey: "alias/d"}
	for _, tc := range []struct {
		name string
		cfg  func(c *lambdaenv.ReadSide)
		want []string
	}{
		{"complete", func(*lambdaenv.ReadSide) {}, nil},
		{"an hour of key cache", func(c *lambdaenv.ReadSide) { c.KeyCacheTTL = time.Hour }, nil},
		{"nothing", func(c *lambdaenv.ReadSide) { *c = lambdaenv.ReadSide{} },
			[]string{"EventsTable", "SnapshotsTable", "ReadModelsTable", "ParkingTable", "KeysTable", "DataKey"}},
		{"no keyring and a negative cache time", func(c *lambdaenv.ReadSide) { c.KeysTable, c.DataKey, c.KeyCacheTTL = "", "", -time.Second },
			[]string{"KeysTable", "DataKey", "KeyCacheTTL"}},
		{"a day of key cache", func(c *lambdaenv.ReadSide) { c.KeyCacheTTL = 24 * time.Hour }, []string{"KeyCacheTTL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := full
			tc.cfg(&c)
			err := c.Validate()
			if (err == nil) != (len(tc.want) == 0) {
				t.Fatalf("Validate() = %v, want problems with %v", err, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want %s named", err, w)
				}
			}
			// NewReadSide refuses what Validate refuses, and builds what it accepts.
			rs, err := lambdaenv.NewReadSide(c, localaws.DynamoDB("http://127.0.0.1:1"), localaws.KMS("http://127.0.0.1:1"), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
			if (err == nil) != (len(tc.want) == 0) || (err == nil && (rs.Processor == nil || rs.Store == nil || rs.Projector == nil)) {
				t.Fatalf("NewReadSide = %+v, %v", rs, err)
			}
		})
	}
}

func TestEnvReadSide(t *testing.T) {
	vars := map[string]string{"EVENTS_TABLE": "e", "SNAPSHOTS_TABLE": "s", "READ_MODELS_TABLE": "r", "PARKING_TABLE": "p",
		"KEYS_TABLE": "k", "DATA_KEY": "alias/d", "KEY_CACHE_TTL": "30s"}
	env := lambdaenv.New(func(k string) string { return vars[k] })
	got := env.ReadSide()
	want := lambdaenv.ReadSide{EventsTable: "e", SnapshotsTable: "s", ReadModelsTable: "r", ParkingTable: "p", KeysTable: "k", DataKey: "alias/d", KeyCacheTTL: 30 * time.Second}
	if err := env.Err(); err != nil || got != want {
		t.Fatalf("ReadSide() = %+v, %v; want %+v", got, err, want)
	}
	env = lambdaenv.New(func(k string) string { return map[string]string{"EVENTS_TABLE": "e"}[k] })
	env.ReadSide()
	err := env.Err()
	for _, name := range []string{"SNAPSHOTS_TABLE", "READ_MODELS_TABLE", "PARKING_TABLE", "KEYS_TABLE", "DATA_KEY"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Err() = %v, want %s named", err, name)
		}
	}
}
