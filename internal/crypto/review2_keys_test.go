package crypto_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/store"
)

// faultFunc decides, for one attempt of a TransactWriteItems (inside the SDK's retry loop), what
// happens: lose its response after DynamoDB applied it (lose), or fail it before it is sent
// (fail, not retryable).
type faultFunc func(attempt int) (fail, lose bool)

type crashed struct{}

func (crashed) Error() string { return "process crashed (simulated)" }

type lost struct{}

func (lost) Error() string        { return "response lost (simulated)" }
func (lost) RetryableError() bool { return true }

// faultyStore is a raw event store on the tables of tb whose TransactWriteItems attempts go
// through fault; it returns the store and a counter of the transaction attempts sent.
func faultyStore(t *testing.T, tb *tables, fault faultFunc) (*store.DynamoDB, *atomic.Int64) {
	t.Helper()
	var attempts atomic.Int64
	client := awstest.DynamoDB(t, func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("review2Fault",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					if awsmiddleware.GetOperationName(ctx) != "TransactWriteItems" {
						return next.HandleFinalize(ctx, in)
					}
					fail, lose := fault(int(attempts.Add(1)))
					if fail {
						return middleware.FinalizeOutput{}, middleware.Metadata{}, crashed{}
					}
					out, md, err := next.HandleFinalize(ctx, in)
					if err == nil && lose {
						return middleware.FinalizeOutput{}, md, lost{}
					}
					return out, md, err
				}), middleware.After)
		})
	})
	raw, err := store.New(client, store.Config{EventsTable: tb.env.Refs["EventsTable"], SnapshotsTable: tb.env.Refs["SnapshotsTable"],
		ClaimsTable: tb.env.Refs["ClaimsTable"], Registry: userRegistry})
	if err != nil {
		t.Fatal(err)
	}
	return raw, &attempts
}

// again is a second event of subject on their stream at expected, sealed by whoever appends it.
func again(subject string, expected int64) store.StreamAppend {
	a := registered(subject, expected)
	return a
}

// TestReview2CrashBeforeTransaction: the process dies after GenerateDataKey and before the
// transaction that would store the key reaches DynamoDB. Nothing is stored; the next append
// (this process or another) makes and stores a key, and every process opens its events.
func TestReview2CrashBeforeTransaction(t *testing.T) {
	ctx := context.Background()
	tb := newTables(t)
	const subject = "subject-crash"
	raw, _ := faultyStore(t, tb, func(n int) (bool, bool) { return n == 1, false })
	keys := tb.keyring(t)
	st := crypto.NewSealingStore(raw, keys, domain.PersonalFields)
	if _, err := st.AppendStreams(ctx, registered(subject, 0)); !errors.As(err, new(crashed)) {
		t.Fatalf("append that crashed: %v", err)
	}
	if got := tb.keyItem(t, subject); got != "none" {
		t.Fatalf("keys table after the crash: %s, want none", got)
	}
	if events, err := tb.raw.Load(ctx, "user-"+subject, store.Span{}); err != nil || len(events) != 0 {
		t.Fatalf("stream after the crash: %d events, %v", len(events), err)
	}
	// The same process again: the discarded key must not have been cached.
	if _, err := st.AppendStreams(ctx, registered(subject, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendStreams(ctx, again(subject, 1)); err != nil {
		t.Fatal(err)
	}
	tb.opens(t, "user-"+subject, subject)
	if n := keys.KMSCalls(); n != 2 {
		t.Fatalf("KMS calls: %d, want 2 GenerateDataKey (crashed one, stored one) and no more", n)
	}
}

// TestReview2LostTransactionResponse: the transaction that stores a new key with the first
// events is applied, its response lost, and the SDK sends it again. The append succeeds once;
// the key cached is the key stored: later appends of this process, sealed under the cached key,
// open in a process that reads the keys table. When every attempt's response is lost, the
// append fails, and a retry of it (same event IDs) answers with what was written.
func TestReview2LostTransactionResponse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		loseAll bool
	}{{"first response lost", false}, {"every response lost", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			tb := newTables(t)
			const subject = "subject-lost"
			raw, attempts := faultyStore(t, tb, func(n int) (bool, bool) { return false, n == 1 || tc.loseAll })
			keys := tb.keyring(t)
			st := crypto.NewSealingStore(raw, keys, domain.PersonalFields)
			first := registered(subject, 0)
			res, err := st.AppendStreams(ctx, first)
			if tc.loseAll {
				if err == nil {
					t.Fatalf("append whose every response was lost succeeded: %+v", res)
				}
				// The command layer's retry of the same events, through a healthy store.
				st = crypto.NewSealingStore(tb.raw, keys, domain.PersonalFields)
				if res, err = st.AppendStreams(ctx, first); err != nil {
					t.Fatalf("retry after lost responses: %v", err)
				}
			} else if err != nil {
				t.Fatalf("append with a lost response: %v", err)
			}
			if attempts.Load() < 2 || len(res) != 1 || res[0].Version != 1 || res[0].Events[0].ID != first.Events[0].ID {
				t.Fatalf("%d attempts, result %+v", attempts.Load(), res)
			}
			if got := tb.keyItem(t, subject); got != "wrapped" {
				t.Fatalf("keys table: %s", got)
			}
			// Sealed under whatever this process cached.
			if _, err := st.AppendStreams(ctx, again(subject, 1)); err != nil {
				t.Fatal(err)
			}
			tb.opens(t, "user-"+subject, subject)
		})
	}
}

// TestReview2SameAppendByAnotherProcessFirst: while this process holds a new key for a subject,
// another process writes the very same append (same event IDs: a retry that overtook it) under a
// key of its own. This process's transaction finds its events written and answers with them; it
// must not cache its own key, which was never stored: its later appends must open elsewhere.
func TestReview2SameAppendByAnotherProcessFirst(t *testing.T) {
	ctx := context.Background()
	tb := newTables(t)
	const subject = "subject-overtaken"
	first := registered(subject, 0)
	other := crypto.NewSealingStore(tb.raw, tb.keyring(t), domain.PersonalFields)
	inner := &hooked{EventStore: tb.raw, before: func() {
		if _, err := other.AppendStreams(ctx, first); err != nil {
			t.Error(err)
		}
	}}
	keys := tb.keyring(t)
	st := crypto.NewSealingStore(inner, keys, domain.PersonalFields)
	res, err := st.AppendStreams(ctx, first)
	if err != nil || len(res) != 1 || res[0].Version != 1 {
		t.Fatalf("append overtaken by its own retry: %+v, %v", res, err)
	}
	if _, err := st.AppendStreams(ctx, again(subject, 1)); err != nil {
		t.Fatal(err)
	}
	tb.opens(t, "user-"+subject, subject)
	// And this process opens what the other one sealed.
	events, err := st.Load(ctx, "user-"+subject, store.Span{})
	if err != nil || len(events) != 2 || events[0].Shredded || events[1].Shredded {
		t.Fatalf("own load: %d events, %v", len(events), err)
	}
}

// TestReview2MultiStreamTwoSubjects: one atomic append to two streams of two new subjects, and
// one of one new subject on two streams. One key is stored per subject, never two inserts of one
// item; when another process stores the key of one of the subjects first, the append is sealed
// again and succeeds; everything opens in a fresh process.
func TestReview2MultiStreamTwoSubjects(t *testing.T) {
	ctx := context.Background()
	tb := newTables(t)
	t.Run("one subject on two streams", func(t *testing.T) {
		a, b := registered("subject-twice", 0), registered("subject-twice", 0)
		b.StreamID = "order-twice"
		st := crypto.NewSealingStore(tb.raw, tb.keyring(t), domain.PersonalFields)
		if _, err := st.AppendStreams(ctx, a, b); err != nil {
			t.Fatalf("append of one new subject to two streams: %v", err)
		}
		tb.opens(t, "user-subject-twice", "subject-twice")
		tb.opens(t, "order-twice", "subject-twice")
	})
	t.Run("two subjects, one raced", func(t *testing.T) {
		a, b := registered("subject-a", 0), registered("subject-b", 0)
		rival := crypto.NewSealingStore(tb.raw, tb.keyring(t), domain.PersonalFields)
		var once sync.Once
		inner := &hooked{EventStore: tb.raw, before: func() {
			once.Do(func() {
				c := registered("subject-b", 0)
				c.StreamID = "order-rival"
				if _, err := rival.AppendStreams(ctx, c); err != nil {
					t.Error(err)
				}
			})
		}}
		keys := tb.keyring(t)
		st := crypto.NewSealingStore(inner, keys, domain.PersonalFields)
		if _, err := st.AppendStreams(ctx, a, b); err != nil {
			t.Fatalf("append of two subjects, one raced: %v", err)
		}
		for _, s := range []string{"subject-a", "subject-b"} {
			if got := tb.keyItem(t, s); got != "wrapped" {
				t.Fatalf("keys table for %s: %s", s, got)
			}
			tb.opens(t, "user-"+s, s)
		}
		tb.opens(t, "order-rival", "subject-b")
		// Later appends sealed under this process's cache open elsewhere too.
		if _, err := st.AppendStreams(ctx, again("subject-a", 1), again("subject-b", 1)); err != nil {
			t.Fatal(err)
		}
		tb.opens(t, "user-subject-a", "subject-a")
		tb.opens(t, "user-subject-b", "subject-b")
	})
}

// TestReview2SnapshotOfSubjectWithoutKey: a snapshot of a subject who has no key is refused
// (ErrShredded), writes nothing and makes no key.
func TestReview2SnapshotOfSubjectWithoutKey(t *testing.T) {
	ctx := context.Background()
	tb := newTables(t)
	const subject = "subject-nokey"
	// The stream must have the version the snapshot is of: an event with a subject but no
	// personal field, which needs no key.
	if _, err := tb.raw.Append(ctx, "user-"+subject, 0, store.Event{ID: ids.New(), Type: domain.TypeUserRegistered, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	keys := tb.keyring(t)
	st := crypto.NewSealingStore(tb.raw, keys, domain.PersonalFields)
	err := st.SaveSnapshot(ctx, store.Snapshot{StreamID: "user-" + subject, Version: 1, EventID: "e", SchemaVersion: 1, Subject: subject, Data: []byte(`{"email":"x@example.com"}`)})
	if !errors.Is(err, crypto.ErrShredded) {
		t.Fatalf("snapshot of a subject without a key: %v, want ErrShredded", err)
	}
	if got := tb.keyItem(t, subject); got != "none" {
		t.Fatalf("keys table: %s", got)
	}
	if _, err := tb.raw.LoadSnapshot(ctx, "user-"+subject, 1); !errors.Is(err, store.ErrNoSnapshot) {
		t.Fatalf("snapshot stored: %v", err)
	}
	if n := keys.KMSCalls(); n != 0 {
		t.Fatalf("KMS calls: %d", n)
	}
}

// TestReview2WarmCacheMakesNoKMSCalls: once a process has a subject's key, appends and loads of
// that subject make no KMS call; a process that has not makes one Decrypt, then none.
func TestReview2WarmCacheMakesNoKMSCalls(t *testing.T) {
	ctx := context.Background()
	tb := newTables(t)
	const subject = "subject-warm"
	keys := tb.keyring(t)
	st := crypto.NewSealingStore(tb.raw, keys, domain.PersonalFields)
	if _, err := st.AppendStreams(ctx, registered(subject, 0)); err != nil {
		t.Fatal(err)
	}
	base := keys.KMSCalls()
	for v := int64(1); v <= 5; v++ {
		if _, err := st.AppendStreams(ctx, again(subject, v)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Load(ctx, "user-"+subject, store.Span{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := keys.KMSCalls() - base; n != 0 {
		t.Fatalf("warm cache: %d KMS calls, want 0", n)
	}
	other := tb.keyring(t)
	ost := crypto.NewSealingStore(tb.raw, other, domain.PersonalFields)
	for v := int64(6); v <= 8; v++ {
		if _, err := ost.AppendStreams(ctx, again(subject, v)); err != nil {
			t.Fatal(err)
		}
	}
	if n := other.KMSCalls(); n != 1 {
		t.Fatalf("cold process: %d KMS calls, want 1 Decrypt", n)
	}
}
