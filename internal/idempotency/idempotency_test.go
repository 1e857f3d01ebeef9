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
)

func TestMain(m *testing.M) { awstest.Main(m) }

type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func mustStore(t *testing.T) (*idempotency.Store, *clock) {
	t.Helper()
	client := awstest.DynamoDB(t)
	env := awstest.MustTables(t, client)
	c := &clock{}
	c.ns.Store(time.Now().UnixNano())
	return idempotency.New(client, env.Refs["IdempotencyTable"], time.Hour, c.now), c
}

func TestRecordLifecycle(t *testing.T) {
	ctx := context.Background()
	s, c := mustStore(t)
	lock := c.now().Add(10 * time.Second)
	if resp, err := s.Begin(ctx, "k1", "h1", lock); resp != nil || err != nil {
		t.Fatalf("first Begin = %v, %v; want to run", resp, err)
	}
	if _, err := s.Begin(ctx, "k1", "h1", lock); !errors.Is(err, idempotency.ErrInProgress) {
		t.Fatalf("Begin while running: %v, want ErrInProgress", err)
	}
	if _, err := s.Begin(ctx, "k1", "other", lock); !errors.Is(err, idempotency.ErrMismatch) {
		t.Fatalf("Begin with another request: %v, want ErrMismatch", err)
	}
	want := idempotency.Response{Status: 201, Headers: map[string]string{"ETag": `"1"`}, Body: `{"id":"x"}`}
	if err := s.Complete(ctx, "k1", "h1", want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Begin(ctx, "k1", "h1", lock)
	if err != nil || got == nil || got.Status != 201 || got.Body != want.Body || got.Headers["ETag"] != `"1"` {
		t.Fatalf("Begin after Complete = %+v, %v; want the recorded response", got, err)
	}
	// Completing twice, or completing another request's record, fails.
	if err := s.Complete(ctx, "k1", "h1", want); err == nil {
		t.Fatal("second Complete succeeded")
	}
	// A record past its TTL counts as gone even before DynamoDB deletes it.
	c.advance(2 * time.Hour)
	if resp, err := s.Begin(ctx, "k1", "h2", c.now().Add(time.Second)); resp != nil || err != nil {
		t.Fatalf("Begin after expiry = %v, %v; want to run", resp, err)
	}
}

func TestLockExpiryAndAbandon(t *testing.T) {
	ctx := context.Background()
	s, c := mustStore(t)
	if _, err := s.Begin(ctx, "k", "h", c.now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	c.advance(6 * time.Second) // the attempt's Lambda deadline passed: it crashed or timed out
	if _, err := s.Begin(ctx, "k", "other", c.now().Add(5*time.Second)); !errors.Is(err, idempotency.ErrMismatch) {
		t.Fatalf("another request on an expired lock: %v, want ErrMismatch", err)
	}
	if resp, err := s.Begin(ctx, "k", "h", c.now().Add(5*time.Second)); resp != nil || err != nil {
		t.Fatalf("retry after the lock expired = %v, %v; want to run", resp, err)
	}
	if err := s.Abandon(ctx, "k", "h"); err != nil {
		t.Fatal(err)
	}
	if resp, err := s.Begin(ctx, "k", "h2", c.now().Add(5*time.Second)); resp != nil || err != nil {
		t.Fatalf("Begin after Abandon = %v, %v; want to run", resp, err)
	}
	if err := s.Abandon(ctx, "k", "h"); err != nil { // another request's record: left alone
		t.Fatal(err)
	}
	if _, err := s.Begin(ctx, "k", "h2", c.now().Add(5*time.Second)); !errors.Is(err, idempotency.ErrInProgress) {
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
			resp, err := s.Begin(ctx, "race", "h", c.now().Add(time.Minute))
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
