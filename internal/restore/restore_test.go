package restore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/auth"
	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/idempotency"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/restore"
	"github.com/eventfold/eventfold/internal/store"
	"github.com/eventfold/eventfold/internal/template"
)

func TestMain(m *testing.M) { awstest.Main(m) }

var emailKey = []byte("0123456789abcdef0123456789abcdef")

type world struct {
	client *dynamodb.Client
	env    template.Env
	raw    *store.DynamoDB
	keys   *crypto.Keyring
	svc    *command.Service
	idem   *idempotency.Store
	ids    *store.IDs
}

// newWorld wires the command side on fresh tables as functions/commands does: the sealing store
// over the DynamoDB store, keys under the KMS emulator.
func newWorld(t *testing.T) *world {
	t.Helper()
	client := awstest.DynamoDB(t)
	env := awstest.MustTables(t, client)
	kmsClient := awstest.MustKeys(t, env)
	reg, err := command.Registry()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := store.New(client, store.Config{EventsTable: env.Refs["EventsTable"], SnapshotsTable: env.Refs["SnapshotsTable"], ClaimsTable: env.Refs["ClaimsTable"], Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	keys := crypto.NewKeyring(kmsClient, client, crypto.KeyringConfig{Table: env.Refs["KeysTable"], KeyID: env.Refs["DataKeyAlias"], MaxKeys: 100, TTL: time.Minute})
	idem, err := idempotency.New(idempotency.Config{API: client, Table: env.Refs["IdempotencyTable"]})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{client: client, env: env, raw: raw, keys: keys, idem: idem, ids: store.NewIDs(nil)}
	w.svc = w.service(t)
	return w
}

func (w *world) service(t *testing.T) *command.Service {
	t.Helper()
	sealed := crypto.NewSealingStore(w.raw, w.keys, domain.PersonalFields)
	svc, err := command.New(command.Config{Store: sealed, EmailKey: emailKey, Eraser: w.keys, SnapshotEvery: 2})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func (w *world) meta() command.Meta { return command.Meta{CommandID: w.ids.New(), CorrelationID: "c"} }

func (w *world) register(t *testing.T, email string) (string, error) {
	t.Helper()
	id := w.ids.New()
	_, err := w.svc.RegisterUser(context.Background(), withCaller(w.meta(), auth.User(id)), domain.RegisterUser{UserID: id, Email: email, Name: "Some One"})
	return id, err
}

func (w *world) mustRegister(t *testing.T, email string) string {
	t.Helper()
	id, err := w.register(t, email)
	if err != nil {
		t.Fatalf("register %s: %v", email, err)
	}
	return id
}

// keyed runs a deposit of owner's to their account acct as an Idempotency-Key request would:
// Begin, the command, Complete.
func (w *world) keyed(t *testing.T, key, owner, acct string) command.Meta {
	t.Helper()
	ctx := context.Background()
	m := withCaller(w.meta(), auth.User(owner))
	_, at, err := w.idem.Begin(ctx, key, "hash-"+key, time.Now().Add(time.Minute), idempotency.Attempt{CommandID: m.CommandID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Deposit(ctx, m, acct, domain.Deposit{Amount: 1}); err != nil {
		t.Fatal(err)
	}
	if err := w.idem.Complete(ctx, key, at, idempotency.Response{Status: 200, Body: "{}"}); err != nil {
		t.Fatal(err)
	}
	return m
}

func (w *world) versions(t *testing.T, stream string) []store.Event {
	t.Helper()
	events, err := w.raw.Load(context.Background(), stream, store.Span{})
	if err != nil {
		t.Fatalf("load %s: %v", stream, err)
	}
	return events
}

func (w *world) config(restored string) restore.Config {
	return restore.Config{API: w.client, Events: w.env.Refs["EventsTable"], Restored: restored,
		Snapshots: w.env.Refs["SnapshotsTable"], Claims: w.env.Refs["ClaimsTable"], Idempotency: w.idem, Users: w.svc}
}

// TestRestoreToAPointInTime runs the restore procedure end to end on the local stack: commands
// before and after a point T, a point-in-time copy of the events table at T, then Apply. The live
// tables must end as at T, except that erasures made after T are made again; no stream has a gap,
// even for an instance that still holds state from after T; claims, snapshots and idempotency
// records agree with the restored events; running it again changes nothing.
func TestRestoreToAPointInTime(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)

	// Before T.
	ann := w.mustRegister(t, "ann@example.com")
	bob := w.mustRegister(t, "bob@example.com")
	carl := w.mustRegister(t, "carl@example.com")
	if _, err := w.svc.EraseUser(ctx, withCaller(w.meta(), auth.Operator("arn:aws:iam::123456789012:user/ops")), carl); err != nil {
		t.Fatal(err)
	}
	acct := w.ids.New()
	if _, err := w.svc.OpenAccount(ctx, withCaller(w.meta(), auth.User(ann)), domain.OpenAccount{AccountID: acct, OwnerID: ann, Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	kept := w.keyed(t, "before", ann, acct) // version 2, a snapshot at 2
	time.Sleep(10 * time.Millisecond)
	at := time.Now()
	time.Sleep(10 * time.Millisecond)

	// After T: all of this is lost by the restore, but for the erasure.
	lost := w.keyed(t, "after", ann, acct) // version 3
	for i := 0; i < 2; i++ {               // versions 4, 5: a snapshot at 4
		if _, err := w.svc.Deposit(ctx, withCaller(w.meta(), auth.User(ann)), acct, domain.Deposit{Amount: 10}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.svc.ChangeEmail(ctx, withCaller(w.meta(), auth.User(ann)), ann, domain.ChangeEmail{Email: "ann.new@example.com"}); err != nil {
		t.Fatal(err)
	}
	dave := w.mustRegister(t, "dave@example.com")
	if _, err := w.svc.EraseUser(ctx, withCaller(w.meta(), auth.Operator("arn:aws:iam::123456789012:user/ops")), bob); err != nil {
		t.Fatal(err)
	}

	// The point-in-time copy.
	restored := awstest.MustTables(t, w.client).Refs["EventsTable"]
	n, err := restore.Copy(ctx, w.client, w.env.Refs["EventsTable"], restored, at)
	if err != nil {
		t.Fatal(err)
	}
	if n != 6 { // ann, bob and carl registered, carl erased, the account opened, one deposit
		t.Fatalf("copied %d events, want the 6 recorded before T", n)
	}

	dry, err := restore.Apply(ctx, w.config(restored), true)
	if err != nil {
		t.Fatal(err)
	}
	accountBefore := len(w.versions(t, "account-"+acct))
	if accountBefore != 5 || dry.Deleted == 0 {
		t.Fatalf("a dry run changed the events table (%d account events) or found nothing: %+v", accountBefore, dry)
	}

	r, err := restore.Apply(ctx, w.config(restored), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report: %+v", r)
	if r.Deleted != dry.Deleted || r.PutBack != 0 || r.Snapshots != 1 || r.Idempotency != 1 {
		t.Fatalf("report %+v (dry run %+v): want the post-T events deleted, nothing put back, the snapshot at 4 and one idempotency record removed", r, dry)
	}

	// The events: as at T, plus bob's erasure made again.
	if got := w.versions(t, "account-"+acct); len(got) != 2 {
		t.Fatalf("account has %d events after the restore, want 2", len(got))
	}
	if got := w.versions(t, "user-"+dave); len(got) != 0 {
		t.Fatalf("dave, registered after T, still has %d events", len(got))
	}
	bobs := w.versions(t, "user-"+bob)
	if len(bobs) != 2 || bobs[1].Type != domain.TypeSubjectErased {
		t.Fatalf("bob's stream after the restore: %d events, want registered then erased again", len(bobs))
	}
	if got := w.versions(t, "user-"+ann); len(got) != 1 {
		t.Fatalf("ann's email change after T is still there: %d events", len(got))
	}

	// No gap, even for the instance that holds the account at version 5 in its state cache.
	res, err := w.svc.Deposit(ctx, withCaller(w.meta(), auth.User(ann)), acct, domain.Deposit{Amount: 7})
	if err != nil || res.Version != 3 {
		t.Fatalf("a warm deposit after the restore = %+v, %v; want version 3", res, err)
	}
	cold := w.service(t)
	if res, err := cold.Deposit(ctx, withCaller(w.meta(), auth.User(ann)), acct, domain.Deposit{Amount: 7}); err != nil || res.Version != 4 {
		t.Fatalf("a cold deposit after the restore = %+v, %v; want version 4", res, err)
	}
	if got := w.versions(t, "account-"+acct); len(got) != 4 {
		t.Fatalf("account: %d events", len(got))
	}

	// Claims: ann holds her address of T again; the addresses taken after T are free; bob's too.
	if _, err := w.register(t, "ann@example.com"); !errors.Is(err, domain.ErrEmailTaken) {
		t.Fatalf("register ann@ again: %v, want it taken by ann", err)
	}
	for _, free := range []string{"ann.new@example.com", "dave@example.com", "bob@example.com"} {
		if _, err := w.register(t, free); err != nil {
			t.Fatalf("register %s after the restore: %v, want it free", free, err)
		}
	}

	// Erasures: bob's key is gone, and so is carl's.
	for _, subject := range []string{bob, carl} {
		if _, err := w.keys.Open(ctx, subject, "x", []byte("ef1.x")); !errors.Is(err, crypto.ErrShredded) {
			t.Fatalf("the key of %s after the restore: %v, want ErrShredded", subject, err)
		}
	}

	// Idempotency: the record of the lost deposit is gone, the one of the kept deposit stays.
	for key, m := range map[string]command.Meta{"before": kept, "after": lost} {
		out, err := w.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(w.env.Refs["IdempotencyTable"]), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: key}}})
		if err != nil {
			t.Fatal(err)
		}
		if (out.Item != nil) != (key == "before") {
			t.Fatalf("idempotency record %q (command %s) present = %v after the restore", key, m.CommandID, out.Item != nil)
		}
	}

	// Snapshots left agree with the stream: a cold load through them gives the same state.
	h, err := store.LoadHistory(ctx, w.raw, "account-"+acct, 1)
	if err != nil || h.Version() != 4 {
		t.Fatalf("history of the account = version %d, %v", h.Version(), err)
	}

	// Running it again is harmless: the restored copy is behind now, so use a fresh copy of what
	// the live table holds; nothing is deleted or put back.
	again := awstest.MustTables(t, w.client).Refs["EventsTable"]
	if _, err := restore.Copy(ctx, w.client, w.env.Refs["EventsTable"], again, time.Now()); err != nil {
		t.Fatal(err)
	}
	r2, err := restore.Apply(ctx, w.config(again), false)
	if err != nil || r2.Deleted != 0 || r2.PutBack != 0 || r2.Snapshots != 0 || r2.ClaimsReleased != 0 || r2.ClaimsTaken != 0 {
		t.Fatalf("second run = %+v, %v; want no change", r2, err)
	}
	if got := w.versions(t, "user-"+bob); len(got) != 2 {
		t.Fatalf("bob's stream after a second run: %d events", len(got))
	}
}

// TestRestoreRefusesACopyWithAGap: a copy that is not a contiguous event store is refused before
// any write.
func TestRestoreRefusesACopyWithAGap(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	acct := w.ids.New()
	if _, err := w.svc.OpenAccount(ctx, withCaller(w.meta(), auth.User("o")), domain.OpenAccount{AccountID: acct, OwnerID: "o", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := w.svc.Deposit(ctx, withCaller(w.meta(), auth.User("o")), acct, domain.Deposit{Amount: 1}); err != nil {
			t.Fatal(err)
		}
	}
	restored := awstest.MustTables(t, w.client).Refs["EventsTable"]
	if _, err := restore.Copy(ctx, w.client, w.env.Refs["EventsTable"], restored, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(restored), Key: store.EventKey("account-"+acct, 2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := restore.Apply(ctx, w.config(restored), false); !errors.Is(err, restore.ErrNotRestorable) {
		t.Fatalf("Apply of a copy with a gap: %v, want ErrNotRestorable", err)
	}
	if got := w.versions(t, "account-"+acct); len(got) != 3 {
		t.Fatalf("the live stream after a refused restore: %d events, want 3", len(got))
	}
}

// withCaller is m sent by c: the user commands are the user's, erasure and stock the operator's.
func withCaller(m command.Meta, c auth.Caller) command.Meta {
	m.Caller = c
	return m
}
