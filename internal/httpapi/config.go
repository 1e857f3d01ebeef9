package httpapi

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Env is the configuration of the commands function, read once from its environment (set by
// template.yaml in AWS and by the local runner on a laptop).
type Env struct {
	EventsTable      string
	SnapshotsTable   string
	ClaimsTable      string
	IdempotencyTable string
	// EmailHashKey keys the hash of email uniqueness guards (EMAIL_HASH_KEY, base64).
	EmailHashKey []byte
	// IdempotencyTTL is how long idempotency records are kept (IDEMPOTENCY_TTL, a Go duration).
	IdempotencyTTL time.Duration
	// MaxBody is the largest request body (MAX_BODY_BYTES).
	MaxBody int
}

// EnvFromLookup reads the configuration through getenv (os.Getenv in main) and reports every
// problem at once.
func EnvFromLookup(getenv func(string) string) (Env, error) {
	var errs []error
	required := func(name string) string {
		v := getenv(name)
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is not set", name))
		}
		return v
	}
	e := Env{
		EventsTable:      required("EVENTS_TABLE"),
		SnapshotsTable:   required("SNAPSHOTS_TABLE"),
		ClaimsTable:      required("CLAIMS_TABLE"),
		IdempotencyTable: required("IDEMPOTENCY_TABLE"),
		IdempotencyTTL:   24 * time.Hour,
		MaxBody:          64 << 10,
	}
	if k := required("EMAIL_HASH_KEY"); k != "" {
		key, err := base64.StdEncoding.DecodeString(k)
		switch {
		case err != nil:
			errs = append(errs, errors.New("EMAIL_HASH_KEY is not base64"))
		case len(key) < 32:
			errs = append(errs, fmt.Errorf("EMAIL_HASH_KEY holds %d bytes, want at least 32", len(key)))
		}
		e.EmailHashKey = key
	}
	if v := getenv("IDEMPOTENCY_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute {
			errs = append(errs, errors.New("IDEMPOTENCY_TTL must be a duration of a minute or more, such as 24h"))
		}
		e.IdempotencyTTL = d
	}
	if v := getenv("MAX_BODY_BYTES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1024 || n > 6<<20 {
			errs = append(errs, errors.New("MAX_BODY_BYTES must be from 1024 to 6291456"))
		}
		e.MaxBody = n
	}
	return e, errors.Join(errs...)
}
