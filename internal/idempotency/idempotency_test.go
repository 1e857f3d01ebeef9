package idempotency_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	return idempotency.New(client, env.Refs["IdempotencyTable"], time.Hour, c.Now), c
}

func TestRecordLifecycle(t *testing.T) {
	ctx := context.Background()
	s, c := mustStore(t)
	lock := c.Now().Add(10 * time.Second)
	first := idempotency.Attempt{CommandID: "cmd-1", NewID: "new-1"}
	resp, at, err := s.Begin(ctx, "k1", "h1", lock, first)
	if resp != nil || err != nil || at != first {
		t.Fatalf("first Begin = %v, %+v, %v; want to run as the fresh attempt", resp, at, err)
	}
	if _, _, err := s.Begin(ctx, "k1", "h1", lock, idempotency.Attempt{CommandID: "cmd-2"}); !errors.Is(err, idempotency.ErrInProgress) {
		t.Fatalf("Begin while running: %v, want ErrInProgress", err)
	}
	if _, _, err := s.Begin(ctx, "k1", "other", lock, idempotency.Attempt{CommandID: "cmd-3"}); !errors.Is(err, idempotency.ErrMismatch) {
		t.Fatalf("Begin with another request: %v, want ErrMismatch", err)
	}
	want := idempotency.Response{Status: 201, Headers: map[string]string{"ETag": `"1"`}, Body: `{"id":"x"}`}
	if err := s.Complete(ctx, "k1", "h1", want); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.Begin(ctx, "k1", "h1", lock, idempotency.Attempt{CommandID: "cmd-4"})
	if err != nil || got == nil || got.Status != 201 || got.Body != want.Body || got.Headers["ETag"] != `"1"` {
		t.Fatalf("Begin after Complete = %+v, %v; want the recorded response", got, err)
	}
	// Completing twice fails.
	if err := s.Complete(ctx, "k1", "h1", want); err == nil {
		t.Fatal("second Complete succeeded")
	}
	// A record past its TTL counts as gone even before DynamoDB deletes it: a fresh attempt.
	c.Advance(2 * time.Hour)
	fresh := idempotency.Attempt{CommandID: "cmd-5"}
	if resp, at, err := s.Begin(ctx, "k1", "h2", c.Now().Add(time.Second), fresh); resp != nil || err != nil || at != fresh {
		t.Fatalf("Begin after expiry = %v, %+v, %v; want to run afresh", resp, at, err)
	}
}

// TestRetriesRunAsTheSameAttempt: once an attempt's lock expires (it crashed) or is released (it
// failed after perhaps writing), the retry runs with the same command and new IDs, marked Retry.
func TestRetriesRunAsTheSameAttempt(t *testing.T) {
	ctx := context.Background()
	s, c := mustStore(t)
	first := idempotency.Attempt{CommandID: "cmd-a", NewID: "id-a"}
	if _, _, err := s.Begin(ctx, "k", "h", c.Now().Add(5*time.Second), first); err != nil {
		t.Fatal(err)
	}
	c.Advance(6 * time.Second) // the attempt's Lambda deadline passed: it crashed or timed out
	if _, _, err := s.Begin(ctx, "k", "other", c.Now().Add(5*time.Second), idempotency.Attempt{CommandID: "x"}); !errors.Is(err, idempotency.ErrMismatch) {
		t.Fatalf("another request on an expired lock: %v, want ErrMismatch", err)
	}
	resp, at, err := s.Begin(ctx, "k", "h", c.Now().Add(5*time.Second), idempotency.Attempt{CommandID: "cmd-b", NewID: "id-b"})
	if resp != nil || err != nil || at != (idempotency.Attempt{CommandID: "cmd-a", NewID: "id-a", Retry: true}) {
		t.Fatalf("retry after the lock expired = %v, %+v, %v; want the first attempt again", resp, at, err)
	}
	if _, _, err := s.Begin(ctx, "k", "h", c.Now().Add(5*time.Second), idempotency.Attempt{CommandID: "cmd-c"}); !errors.Is(err, idempotency.ErrInProgress) {
		t.Fatalf("Begin while the retry runs: %v, want ErrInProgress", err)
	}
	if err := s.Release(ctx, "k", "h"); err != nil {
		t.Fatal(err)
	}
	if _, at, err := s.Begin(ctx, "k", "h", c.Now().Add(5*time.Second), idempotency.Attempt{CommandID: "cmd-d"}); err != nil || at.CommandID != "cmd-a" || !at.Retry {
		t.Fatalf("Begin after Release = %+v, %v; want the first attempt again, at once", at, err)
	}
	// Abandon, for an attempt that wrote nothing, frees the key for a new request.
	if err := s.Abandon(ctx, "k", "h"); err != nil {
		t.Fatal(err)
	}
	fresh := idempotency.Attempt{CommandID: "cmd-e"}
	if _, at, err := s.Begin(ctx, "k", "h2", c.Now().Add(5*time.Second), fresh); err != nil || at != fresh {
		t.Fatalf("Begin after Abandon = %+v, %v; want a fresh attempt", at, err)
	}
	if err := s.Abandon(ctx, "k", "h"); err != nil { // another request's record: left alone
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
