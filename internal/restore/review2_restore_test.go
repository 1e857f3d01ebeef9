package restore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/auth"
	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/restore"
	"github.com/eventfold/eventfold/internal/store"
)

// crashAfter is the restore's DynamoDB API failing for good after its first n writes (PutItem or
// DeleteItem): the operator's session died halfway.
type crashAfter struct {
	restore.API
	n      int64
	writes atomic.Int64
}

var errCrash = errors.New("the restore's process died (simulated)")

func (c *crashAfter) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if c.writes.Add(1) > c.n {
		return nil, errCrash
	}
	return c.API.PutItem(ctx, in, o...)
}

func (c *crashAfter) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if c.writes.Add(1) > c.n {
		return nil, errCrash
	}
	return c.API.DeleteItem(ctx, in, o...)
}

// keyItem reads a subject's item in the keys table as it is.
func (w *world) keyItem(t *testing.T, subject string) map[string]types.AttributeValue {
	t.Helper()
	out, err := w.client.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(w.env.Refs["KeysTable"]), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: subject}}})
	if err != nil || out.Item == nil || out.Item["wrapped"] == nil {
		t.Fatalf("the key of %s: %v, item %v", subject, err, out.Item != nil)
	}
	return out.Item
}

// restoreKey puts a subject's key item back as it was: KeysTable restored to a point before the
// subject's erasure.
func (w *world) restoreKey(t *testing.T, item map[string]types.AttributeValue) {
	t.Helper()
	if _, err := w.client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(w.env.Refs["KeysTable"]), Item: item}); err != nil {
		t.Fatal(err)
	}
}

// readable reports whether any personal field of the stream's events opens, for a process that
// starts cold (no cached key).
func (w *world) readable(t *testing.T, stream string) bool {
	t.Helper()
	cold := crypto.NewKeyring(awstest.MustKeys(t, w.env), w.client, crypto.KeyringConfig{Table: w.env.Refs["KeysTable"], KeyID: w.env.Refs["DataKeyAlias"], MaxKeys: 100, TTL: time.Minute})
	events, err := crypto.NewSealingStore(w.raw, cold, domain.PersonalFields).Load(context.Background(), stream, store.Span{})
	if err != nil {
		t.Fatalf("load %s: %v", stream, err)
	}
	for _, e := range events {
		if e.Subject != "" && !e.Shredded && (strings.Contains(string(e.Data), "@example.com") || strings.Contains(string(e.Data), "Some One") || strings.Contains(string(e.Data), "Main St")) {
			return true
		}
	}
	return false
}

// pointInTime sleeps across a point T and returns it.
func pointInTime() time.Time {
	time.Sleep(10 * time.Millisecond)
	at := time.Now()
	time.Sleep(10 * time.Millisecond)
	return at
}

func (w *world) copyAt(t *testing.T, at time.Time) string {
	t.Helper()
	restored := awstest.MustTables(t, w.client).Refs["EventsTable"]
	if _, err := restore.Copy(context.Background(), w.client, w.env.Refs["EventsTable"], restored, at); err != nil {
		t.Fatal(err)
	}
	return restored
}

// TestReview2RestoreStoppedHalfwayKeepsTheErasureMadeAfterT: the package promises that a restore
// that stops halfway is finished by running it again. Bob changes his address and is erased after
// T, and KeysTable was restored to T as well (the README says it does not matter). A first run
// dies after its n-th write; a second one finishes. Before the fix, a first run that had deleted
// bob's SubjectErased left nothing telling the second run that bob was erased after T: bob came
// back active, his data readable, his address claimed again; and the idempotency record of a
// command the first run had deleted was kept.
func TestReview2RestoreStoppedHalfwayKeepsTheErasureMadeAfterT(t *testing.T) {
	finished := false
	for n := int64(0); !finished; n++ {
		t.Run(fmt.Sprintf("stopped after %d writes", n), func(t *testing.T) {
			ctx := context.Background()
			w := newWorld(t)
			bob := w.mustRegister(t, "bob@example.com")
			acct := w.ids.New()
			if _, err := w.svc.OpenAccount(ctx, withCaller(w.meta(), auth.User(bob)), domain.OpenAccount{AccountID: acct, OwnerID: bob, Currency: "EUR"}); err != nil {
				t.Fatal(err)
			}
			at := pointInTime()
			lost := w.keyed(t, "after", bob, acct) // a keyed deposit after T
			if _, err := w.svc.ChangeEmail(ctx, withCaller(w.meta(), auth.User(bob)), bob, domain.ChangeEmail{Email: "bob.new@example.com"}); err != nil {
				t.Fatal(err)
			}
			key := w.keyItem(t, bob)
			if _, err := w.svc.EraseUser(ctx, withCaller(w.meta(), auth.Operator("arn:aws:iam::123456789012:user/ops")), bob); err != nil {
				t.Fatal(err)
			}
			w.restoreKey(t, key) // KeysTable restored to T too
			restored := w.copyAt(t, at)

			c := w.config(restored)
			c.API = &crashAfter{API: w.client, n: n}
			switch _, err := restore.Apply(ctx, c, false); {
			case err == nil:
				finished = true // n is more writes than a restore makes: every point was tried
			case !errors.Is(err, errCrash):
				t.Fatalf("first run: %v, want the simulated crash", err)
			}
			r, err := restore.Apply(ctx, w.config(restored), false)
			if err != nil {
				t.Fatalf("second run: %v", err)
			}
			t.Logf("second run: %+v", r)

			bobs := w.versions(t, "user-"+bob)
			if len(bobs) != 2 || bobs[1].Type != domain.TypeSubjectErased {
				t.Errorf("bob, erased after T, ends the restore with %d events, the last not SubjectErased: his erasure is lost", len(bobs))
			}
			if w.readable(t, "user-"+bob) {
				t.Errorf("bob's personal data opens after the restore; he was erased after T")
			}
			if got := w.versions(t, "account-"+acct); len(got) != 1 {
				t.Errorf("the account has %d events after the restore, want its opening", len(got))
			}
			for _, free := range []string{"bob@example.com", "bob.new@example.com"} {
				if _, err := w.register(t, free); err != nil {
					t.Errorf("%s, released by bob's erasure, is taken after the restore: %v", free, err)
				}
			}
			out, err := w.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(w.env.Refs["IdempotencyTable"]), ConsistentRead: aws.Bool(true),
				Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "after"}}})
			if err != nil {
				t.Fatal(err)
			}
			if out.Item != nil {
				t.Errorf("the idempotency record of the deposit lost by the restore (command %s) is still there: a retry replays a success that no longer exists", lost.CommandID)
			}
		})
	}
}

// TestReview2RestoreWithKeysAtTErasesAUserErasedAfterT: the case the README names, which holds:
// a registered user erased after T, KeysTable restored to T, one run of Apply; and a user who
// registered and was erased after T (gone from the copy entirely) leaves nothing behind.
func TestReview2RestoreWithKeysAtTErasesAUserErasedAfterT(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	bob := w.mustRegister(t, "bob@example.com")
	at := pointInTime()
	key := w.keyItem(t, bob)
	if _, err := w.svc.EraseUser(ctx, withCaller(w.meta(), auth.Operator("arn:aws:iam::123456789012:user/ops")), bob); err != nil {
		t.Fatal(err)
	}
	eve := w.mustRegister(t, "eve@example.com")
	if _, err := w.svc.EraseUser(ctx, withCaller(w.meta(), auth.Operator("arn:aws:iam::123456789012:user/ops")), eve); err != nil {
		t.Fatal(err)
	}
	w.restoreKey(t, key)
	r, err := restore.Apply(ctx, w.config(w.copyAt(t, at)), false)
	if err != nil {
		t.Fatal(err)
	}
	if w.readable(t, "user-"+bob) {
		t.Fatalf("bob's data opens after the restore (report %+v)", r)
	}
	if bobs := w.versions(t, "user-"+bob); len(bobs) != 2 || bobs[1].Type != domain.TypeSubjectErased {
		t.Fatalf("bob's stream: %d events", len(bobs))
	}
	// Eve registered and was erased after T: her registration is gone, her erasure is made
	// again (recorded as the one event of her stream).
	if evs := w.versions(t, "user-"+eve); len(evs) != 1 || evs[0].Type != domain.TypeSubjectErased {
		t.Fatalf("eve, registered and erased after T, has %d events; want her erasure alone", len(evs))
	}
	for _, free := range []string{"bob@example.com", "eve@example.com"} {
		if _, err := w.register(t, free); err != nil {
			t.Fatalf("register %s after the restore: %v", free, err)
		}
	}
}
