package crypto_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/store"
	"github.com/eventfold/eventfold/internal/template"
)

// tables is a fresh set of tables with a raw event store on them; keyring makes a keyring on
// them as a new process would, with its own cache.
type tables struct {
	client *dynamodb.Client
	env    template.Env
	raw    *store.DynamoDB
}

func newTables(t *testing.T) *tables {
	t.Helper()
	client := awstest.DynamoDB(t)
	env := awstest.MustTables(t, client)
	raw, err := store.New(client, store.Config{EventsTable: env.Refs["EventsTable"], SnapshotsTable: env.Refs["SnapshotsTable"],
		ClaimsTable: env.Refs["ClaimsTable"], Registry: userRegistry})
	if err != nil {
		t.Fatal(err)
	}
	return &tables{client: client, env: env, raw: raw}
}

func (tb *tables) keyring(t *testing.T) *crypto.Keyring {
	t.Helper()
	return crypto.NewKeyring(awstest.MustKeys(t, tb.env), tb.client, crypto.KeyringConfig{Table: tb.env.Refs["KeysTable"], KeyID: tb.env.Refs["DataKeyAlias"], MaxKeys: 100, TTL: time.Minute})
}

// keyItem returns the subject's item in the keys table: "none", "tombstone" or "wrapped".
func (tb *tables) keyItem(t *testing.T, subject string) string {
	t.Helper()
	out, err := tb.client.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(tb.env.Refs["KeysTable"]), ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: subject}}})
	switch {
	case err != nil:
		t.Fatal(err)
	case out.Item == nil:
		return "none"
	case out.Item["wrapped"] == nil:
		return "tombstone"
	}
	return "wrapped"
}

// opens checks that a process that never saw the subject opens their events on stream.
func (tb *tables) opens(t *testing.T, stream, subject string) {
	t.Helper()
	events, err := crypto.NewSealingStore(tb.raw, tb.keyring(t), domain.PersonalFields).Load(context.Background(), stream, store.Span{})
	if err != nil || len(events) == 0 {
		t.Fatalf("load %s: %d events, %v", stream, len(events), err)
	}
	for _, e := range events {
		if e.Shredded || !strings.Contains(string(e.Data), subject+"@example.com") {
			t.Fatalf("%s at %d does not open: %s (shredded %v)", stream, e.Version, e.Data, e.Shredded)
		}
	}
}

// hooked runs before on an inner store's first append, then appends.
type hooked struct {
	store.EventStore
	once   sync.Once
	before func()
}

func (h *hooked) AppendStreams(ctx context.Context, appends ...store.StreamAppend) ([]store.Appended, error) {
	h.once.Do(h.before)
	return h.EventStore.AppendStreams(ctx, appends...)
}

// TestRefusedAppendLeavesNoKey: the first append of a new subject that the store refuses (a
// version conflict, a claim another stream holds) stores no key, and the key it made is not kept:
// the next append makes the key that is stored, and other processes open its events.
func TestRefusedAppendLeavesNoKey(t *testing.T) {
	ctx := context.Background()
	tb := newTables(t)
	keys := tb.keyring(t)
	st := crypto.NewSealingStore(tb.raw, keys, domain.PersonalFields)

	conflicted := "subject-conflict"
	if _, err := st.AppendStreams(ctx, registered(conflicted, 3)); !errors.Is(err, store.ErrVersionConflict) {
		t.Fatalf("append at a version the stream is not at: %v, want a conflict", err)
	}
	if got := tb.keyItem(t, conflicted); got != "none" {
		t.Fatalf("keys table after a refused append: %s, want none", got)
	}

	holder, refused := registered("subject-holder", 0), registered("subject-refused", 0)
	holder.Claims = []store.Claim{{Key: "email-hash-1"}}
	refused.Claims = holder.Claims
	if _, err := st.AppendStreams(ctx, holder); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendStreams(ctx, refused); !errors.Is(err, store.ErrClaimed) {
		t.Fatalf("append with a held claim: %v, want ErrClaimed", err)
	}
	if got := tb.keyItem(t, "subject-refused"); got != "none" {
		t.Fatalf("keys table after a refused claim: %s, want none", got)
	}
	// Nothing of the discarded keys stayed in the cache: the next appends store the keys they
	// seal under.
	if _, err := st.AppendStreams(ctx, registered(conflicted, 0)); err != nil {
		t.Fatal(err)
	}
	refused.Claims = []store.Claim{{Key: "email-hash-2"}}
	if _, err := st.AppendStreams(ctx, refused); err != nil {
		t.Fatal(err)
	}
	tb.opens(t, "user-"+conflicted, conflicted)
	tb.opens(t, "user-subject-refused", "subject-refused")
}

// TestFirstAppendsOfOneSubjectRace: two processes append the first events of one subject at
// once, each having made a new key. One key is stored; the other process's append loses the
// insert, seals again under the stored key and succeeds; both appends open anywhere.
func TestFirstAppendsOfOneSubjectRace(t *testing.T) {
	ctx := context.Background()
	tb := newTables(t)
	const subject = "subject-raced"
	var ready sync.WaitGroup
	ready.Add(2)
	barrier := func() { ready.Done(); ready.Wait() } // both have sealed before either appends
	var (
		wg   sync.WaitGroup
		errs [2]error
		kms  [2]int64
	)
	for i := range 2 {
		keys := tb.keyring(t)
		st := crypto.NewSealingStore(&hooked{EventStore: tb.raw, before: barrier}, keys, domain.PersonalFields)
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := registered(subject, 0)
			a.StreamID = "order-" + string(rune('a'+i))
			_, errs[i] = st.AppendStreams(ctx, a)
			kms[i] = keys.KMSCalls()
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("racer %d: %v", i, err)
		}
	}
	if got := tb.keyItem(t, subject); got != "wrapped" {
		t.Fatalf("keys table: %s, want the one key", got)
	}
	tb.opens(t, "order-a", subject)
	tb.opens(t, "order-b", subject)
	// The winner made one KMS call (GenerateDataKey); the loser one more (Decrypt of the
	// winner's key, which it keeps).
	if kms[0]+kms[1] != 3 {
		t.Fatalf("KMS calls %v, want 1 and 2", kms)
	}
}

// TestErasureDuringFirstAppend: a subject erased between the first append's sealing and its
// write is not given a key: the tombstone fails the append, which is refused as erased and
// writes nothing.
func TestErasureDuringFirstAppend(t *testing.T) {
	ctx := context.Background()
	tb := newTables(t)
	const subject = "subject-erased"
	eraser := tb.keyring(t)
	inner := &hooked{EventStore: tb.raw, before: func() {
		if err := eraser.Erase(ctx, subject); err != nil {
			t.Error(err)
		}
	}}
	st := crypto.NewSealingStore(inner, tb.keyring(t), domain.PersonalFields)
	if _, err := st.AppendStreams(ctx, registered(subject, 0)); !errors.Is(err, crypto.ErrShredded) {
		t.Fatalf("first append of a subject erased meanwhile: %v, want ErrShredded", err)
	}
	if got := tb.keyItem(t, subject); got != "tombstone" {
		t.Fatalf("keys table: %s, want the tombstone", got)
	}
	if events, err := tb.raw.Load(ctx, "user-"+subject, store.Span{}); err != nil || len(events) != 0 {
		t.Fatalf("stream after the refused append: %d events, %v", len(events), err)
	}
}
