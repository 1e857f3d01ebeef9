package idempotency_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/eventfold/eventfold/internal/idempotency"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/store/storetest"
)

func TestMain(m *testing.M) { awstest.Main(m) }

func mustStore(t *testing.T) (*idempotency.Store, *storetest.Clock) {
	t.Helper()
	client := awstest.DynamoDB(t)
	env := awstest.MustTables(t, client)
	c := storetest.NewClock(time.Now())
	return mustNew(t, idempotency.Config{API: client, Table: env.Refs["IdempotencyTable"], TTL: time.Hour, Clock: c.Now}), c
}

func mustNew(t *testing.T, cfg idempotency.Config) *idempotency.Store {
	t.Helper()
	s, err := idempotency.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConfig: New refuses a configuration with every one of its problems named at once, and
// builds a store from one without any.
func TestConfig(t *testing.T) {
	client := awstest.DynamoDB(t)
	tests := []struct {
		name string
		cfg  idempotency.Config
		want []string // the fields the error names; none for a valid configuration
	}{
		{"complete", idempotency.Config{API: client, Table: "t", TTL: time.Minute, Clock: time.Now}, nil},
		{"defaults", idempotency.Config{API: client, Table: "t"}, nil},
		{"empty", idempotency.Config{}, []string{"API", "Table"}},
		{"negative TTL", idempotency.Config{API: client, Table: "t", TTL: -time.Second}, []string{"TTL"}},
		{"all wrong", idempotency.Config{TTL: -time.Hour}, []string{"API", "Table", "TTL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := idempotency.New(tt.cfg)
			if len(tt.want) == 0 {
				if err != nil || s == nil {
					t.Fatalf("New = %v, %v; want a store", s, err)
				}
				return
			}
			if err == nil || s != nil {
				t.Fatalf("New = %v, %v; want an error naming %v", s, err, tt.want)
			}
			if validate := tt.cfg.Validate(); validate == nil || validate.Error() != err.Error() {
				t.Fatalf("Validate = %v, want New's error %v", validate, err)
			}
			for _, f := range tt.want {
				if !strings.Contains(err.Error(), "idempotency: "+f+" ") {
					t.Errorf("error %q does not name %s", err, f)
				}
			}
			if n := len(strings.Split(err.Error(), "\n")); n != len(tt.want) {
				t.Errorf("error %q has %d problems, want %d", err, n, len(tt.want))
			}
		})
	}
}

func TestRecordLifecycle(t *testing.T) {
	ctx := context.Background()
	s, c := mustStore(t)
	lock := c.Now().Add(10 * time.Second)
	first := idempotency.Attempt{CommandID: "cmd-1", NewID: "new-1"}
	resp, at, err := s.Begin(ctx, "k1", "h1", lock, first)
	if resp != nil || err != nil || at.CommandID != first.CommandID || at.NewID != first.NewID || at.Retry || at.Lock == "" {
		t.Fatalf("first Begin = %v, %+v, %v; want to run as the fresh attempt", resp, at, err)
	}
	if _, _, err := s.Begin(ctx, "k1", "h1", lock, idempotency.Attempt{CommandID: "cmd-2"}); !errors.Is(err, idempotency.ErrInProgress) {
		t.Fatalf("Begin while running: %v, want ErrInProgress", err)
	}
	if _, _, err := s.Begin(ctx, "k1", "other", lock, idempotency.Attempt{CommandID: "cmd-3"}); !errors.Is(err, idempotency.ErrMismatch) {
		t.Fatalf("Begin with another request: %v, want ErrMismatch", err)
	}
	want := idempotency.Response{Status: 201, Headers: map[string]string{"ETag": `"1"`}, Body: `{"id":"x"}`}
	if err := s.Complete(ctx, "k1", at, want); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.Begin(ctx, "k1", "h1", lock, idempotency.Attempt{CommandID: "cmd-4"})
	if err != nil || got == nil || got.Status != 201 || got.Body != want.Body || got.Headers["ETag"] != `"1"` {
		t.Fatalf("Begin after Complete = %+v, %v; want the recorded response", got, err)
	}
	// Completing twice is the SDK's retry of a Complete whose answer was lost: it succeeds and
	// changes nothing; another attempt's Complete fails.
	if err := s.Complete(ctx, "k1", at, idempotency.Response{Status: 500}); err != nil {
		t.Fatalf("Complete again by the holder: %v", err)
	}
	if got, _, _ := s.Begin(ctx, "k1", "h1", lock, idempotency.Attempt{}); got == nil || got.Status != 201 {
		t.Fatalf("after a repeated Complete the record holds %+v; want the first response", got)
	}
	if err := s.Complete(ctx, "k1", idempotency.Attempt{Lock: "not-mine"}, want); !errors.Is(err, idempotency.ErrLockLost) {
		t.Fatalf("Complete by another attempt: %v, want ErrLockLost", err)
	}
	// A record past its TTL counts as gone even before DynamoDB deletes it: a fresh attempt.
	c.Advance(2 * time.Hour)
	fresh := idempotency.Attempt{CommandID: "cmd-5"}
	if resp, at, err := s.Begin(ctx, "k1", "h2", c.Now().Add(time.Second), fresh); resp != nil || err != nil || at.CommandID != fresh.CommandID || at.Retry {
		t.Fatalf("Begin after expiry = %v, %+v, %v; want to run afresh", resp, at, err)
	}
}

// TestRetriesRunAsTheSameAttempt: once an attempt's lock expires (it crashed) or is released (it
// failed after perhaps writing), the retry runs with the same command and new IDs, marked Retry.
func TestRetriesRunAsTheSameAttempt(t *testing.T) {
	ctx := context.Background()
	s, c := mustStore(t)
	first := idempotency.Attempt{CommandID: "cmd-a", NewID: "id-a"}
	a1 := begin(t, s, "k", "h", c.Now().Add(5*time.Second), first)
	c.Advance(6 * time.Second) // the attempt's Lambda deadline passed: it crashed or timed out
	if _, _, err := s.Begin(ctx, "k", "other", c.Now().Add(5*time.Second), idempotency.Attempt{CommandID: "x"}); !errors.Is(err, idempotency.ErrMismatch) {
		t.Fatalf("another request on an expired lock: %v, want ErrMismatch", err)
	}
	resp, at, err := s.Begin(ctx, "k", "h", c.Now().Add(5*time.Second), idempotency.Attempt{CommandID: "cmd-b", NewID: "id-b"})
	if resp != nil || err != nil || at.CommandID != "cmd-a" || at.NewID != "id-a" || !at.Retry || at.Lock == "" || at.Lock == a1.Lock {
		t.Fatalf("retry after the lock expired = %v, %+v, %v; want the first attempt again, under a new lock", resp, at, err)
	}
	// The first attempt, late, no longer holds the key: it can neither complete, release nor
	// abandon it.
	if err := s.Complete(ctx, "k", a1, idempotency.Response{Status: 200}); !errors.Is(err, idempotency.ErrLockLost) {
		t.Fatalf("Complete by the attempt whose lock was taken over: %v, want ErrLockLost", err)
	}
	if err := s.Release(ctx, "k", a1); err != nil {
		t.Fatal(err)
	}
	if err := s.Abandon(ctx, "k", a1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Begin(ctx, "k", "h", c.Now().Add(5*time.Second), idempotency.Attempt{CommandID: "cmd-c"}); !errors.Is(err, idempotency.ErrInProgress) {
		t.Fatalf("Begin while the retry runs: %v, want ErrInProgress", err)
	}
	if err := s.Release(ctx, "k", at); err != nil {
		t.Fatal(err)
	}
	at, err = func() (idempotency.Attempt, error) {
		_, at, err := s.Begin(ctx, "k", "h", c.Now().Add(5*time.Second), idempotency.Attempt{CommandID: "cmd-d"})
		return at, err
	}()
	if err != nil || at.CommandID != "cmd-a" || !at.Retry {
		t.Fatalf("Begin after Release = %+v, %v; want the first attempt again, at once", at, err)
	}
	// Abandon, for an attempt that wrote nothing, frees the key for a new request.
	if err := s.Abandon(ctx, "k", at); err != nil {
		t.Fatal(err)
	}
	fresh := idempotency.Attempt{CommandID: "cmd-e"}
	if _, got, err := s.Begin(ctx, "k", "h2", c.Now().Add(5*time.Second), fresh); err != nil || got.CommandID != "cmd-e" || got.Retry {
		t.Fatalf("Begin after Abandon = %+v, %v; want a fresh attempt", got, err)
	}
	if err := s.Abandon(ctx, "k", at); err != nil { // another request's record: left alone
		t.Fatal(err)
	}
	if _, _, err := s.Begin(ctx, "k", "h2", c.Now().Add(5*time.Second), fresh); !errors.Is(err, idempotency.ErrInProgress) {
		t.Fatalf("record of h2 after abandoning h: %v, want ErrInProgress", err)
	}
}

func TestOneOfConcurrentAttemptsRuns(t *testing.T) {
	ctx := context.Background()
	s, c := mustStore(t)
	var (
		wg   sync.WaitGroup
		runs atomic.Int64
		busy atomic.Int64
	)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _, err := s.Begin(ctx, "race", "h", c.Now().Add(time.Minute), idempotency.Attempt{CommandID: "c"})
			switch {
			case err == nil && resp == nil:
				runs.Add(1)
			case errors.Is(err, idempotency.ErrInProgress):
				busy.Add(1)
			default:
				t.Errorf("Begin = %v, %v", resp, err)
			}
		}()
	}
	wg.Wait()
	if runs.Load() != 1 || busy.Load() != 15 {
		t.Fatalf("%d attempts ran and %d were told it is in progress; want 1 and 15", runs.Load(), busy.Load())
	}
}

func begin(t *testing.T, s *idempotency.Store, key, hash string, lock time.Time, fresh idempotency.Attempt) idempotency.Attempt {
	t.Helper()
	resp, at, err := s.Begin(context.Background(), key, hash, lock, fresh)
	if resp != nil || err != nil {
		t.Fatalf("Begin(%s) = %v, %v; want to run", key, resp, err)
	}
	return at
}

// lostResponse is what the SDK sees when a request was applied but its response never came
// back: its retryer treats it as retryable and sends the same request again.
type lostResponse struct{}

func (lostResponse) Error() string        { return "response lost (simulated)" }
func (lostResponse) RetryableError() bool { return true }

// loseFirst returns a store whose client loses the response of the first request of operation
// op, after DynamoDB applied it, and a counter of the responses lost.
func loseFirst(t *testing.T, op string) (*idempotency.Store, *storetest.Clock, *atomic.Int64) {
	t.Helper()
	var once sync.Once
	lost := &atomic.Int64{}
	client := awstest.DynamoDB(t, func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("loseFirstResponse",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					out, md, err := next.HandleFinalize(ctx, in)
					if err == nil && awsmiddleware.GetOperationName(ctx) == op {
						lose := false
						once.Do(func() { lose = true })
						if lose {
							lost.Add(1)
							return middleware.FinalizeOutput{}, md, lostResponse{}
						}
					}
					return out, md, err
				}), middleware.After)
		})
	})
	env := awstest.MustTables(t, client)
	c := storetest.NewClock(time.Now())
	return mustNew(t, idempotency.Config{API: client, Table: env.Refs["IdempotencyTable"], TTL: time.Hour, Clock: c.Now}), c, lost
}

// TestLostResponses: a Begin, a take-over or a Complete whose write landed but whose answer was
// lost is retried by the SDK; the retry must recognise its own write, not report the key busy
// or the lock lost.
func TestLostResponses(t *testing.T) {
	ctx := context.Background()
	t.Run("Begin", func(t *testing.T) {
		s, c, lost := loseFirst(t, "PutItem")
		resp, at, err := s.Begin(ctx, "k", "h", c.Now().Add(time.Minute), idempotency.Attempt{CommandID: "cmd"})
		if lost.Load() != 1 || resp != nil || err != nil || at.CommandID != "cmd" || at.Retry {
			t.Fatalf("Begin with its response lost (%d lost) = %v, %+v, %v; want to run", lost.Load(), resp, at, err)
		}
		if err := s.Complete(ctx, "k", at, idempotency.Response{Status: 200}); err != nil {
			t.Fatalf("Complete after that Begin: %v", err)
		}
	})
	t.Run("take-over", func(t *testing.T) {
		s, c, lost := loseFirst(t, "UpdateItem")
		begin(t, s, "k", "h", c.Now().Add(time.Second), idempotency.Attempt{CommandID: "cmd"})
		c.Advance(2 * time.Second)
		resp, at, err := s.Begin(ctx, "k", "h", c.Now().Add(time.Minute), idempotency.Attempt{CommandID: "other"})
		if lost.Load() != 1 || resp != nil || err != nil || at.CommandID != "cmd" || !at.Retry {
			t.Fatalf("take-over with its response lost (%d lost) = %v, %+v, %v; want the retry to run", lost.Load(), resp, at, err)
		}
		if err := s.Complete(ctx, "k", at, idempotency.Response{Status: 200}); err != nil {
			t.Fatalf("Complete by the retry: %v", err)
		}
	})
	t.Run("Complete", func(t *testing.T) {
		s, c, lost := loseFirst(t, "UpdateItem")
		at := begin(t, s, "k", "h", c.Now().Add(time.Minute), idempotency.Attempt{CommandID: "cmd"})
		if err := s.Complete(ctx, "k", at, idempotency.Response{Status: 201, Body: "b"}); lost.Load() != 1 || err != nil {
			t.Fatalf("Complete with its response lost (%d lost): %v; want success", lost.Load(), err)
		}
		if got, _, err := s.Begin(ctx, "k", "h", c.Now().Add(time.Minute), idempotency.Attempt{}); err != nil || got == nil || got.Status != 201 {
			t.Fatalf("replay = %+v, %v", got, err)
		}
	})
}
