package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/eventfold/eventfold/internal/app"
	"github.com/eventfold/eventfold/internal/auth"
	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/store"
)

// TestRestoreProcedure runs the README's restore procedure with the operator commands, on the
// local stack: the command side as the commands Lambda wires it, a point in time T, more
// commands and an erasure after it, then `restore copy` (the stand-in for point-in-time
// recovery), `restore apply -dry-run`, `restore apply`, and `projections rebuild`. The read models
// rebuilt from the restored store show the state at T, except the erasure made after it, which
// is made again; and a command on the restored store appends where the stream ends.
func TestRestoreProcedure(t *testing.T) {
	ctx := context.Background()
	s := newCLIStack(t, "rs")
	kmsClient := awstest.MustKeys(t, s.env)
	// The stack's secret, on moto, as the runner or CloudFormation creates it; restore apply
	// reads the key from it as the commands function does.
	secrets := localaws.SecretsManager(awstest.KMSEndpoint(t))
	secretName := s.env.Refs[emailHashKeySecret]
	awstest.MustSecrets(t, s.env)
	emailKey, err := app.ReadEmailHashKey(ctx, secrets, secretName)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := app.Commands(app.CommandsConfig{
		EventsTable: s.env.Refs["EventsTable"], SnapshotsTable: s.env.Refs["SnapshotsTable"], ClaimsTable: s.env.Refs["ClaimsTable"],
		IdempotencyTable: s.env.Refs["IdempotencyTable"], KeysConfig: app.KeysConfig{KeysTable: s.env.Refs["KeysTable"], DataKey: s.env.Refs["DataKeyAlias"]},
		EmailHashKey: emailKey,
	}, app.Clients{DynamoDB: s.client, KMS: kmsClient}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	svc, ids := cs.Service, store.NewIDs(nil)
	meta := func() command.Meta { return command.Meta{CommandID: ids.New()} }
	ann, bob := ids.New(), ids.New()
	for id, email := range map[string]string{ann: "ann@example.com", bob: "bob@example.com"} {
		if _, err := svc.RegisterUser(ctx, withCaller(meta(), auth.User(id)), domain.RegisterUser{UserID: id, Email: email, Name: "Some One"}); err != nil {
			t.Fatal(err)
		}
	}
	acct := ids.New()
	if _, err := svc.OpenAccount(ctx, withCaller(meta(), auth.User(ann)), domain.OpenAccount{AccountID: acct, OwnerID: ann, Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Deposit(ctx, withCaller(meta(), auth.User(ann)), acct, domain.Deposit{Amount: 100}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	at := time.Now().UTC()
	time.Sleep(10 * time.Millisecond)
	if _, err := svc.Deposit(ctx, withCaller(meta(), auth.User(ann)), acct, domain.Deposit{Amount: 5000}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ChangeEmail(ctx, withCaller(meta(), auth.User(ann)), ann, domain.ChangeEmail{Email: "ann.later@example.com"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.EraseUser(ctx, withCaller(meta(), auth.Operator("arn:aws:iam::123456789012:user/ops")), bob); err != nil {
		t.Fatal(err)
	}

	copyOf := s.name + "-events-at-t"
	out := eventfold(t, append([]string{"restore", "copy", "-until", at.Format(time.RFC3339Nano), "-target", copyOf}, s.common...)...)
	if !strings.Contains(out, "copied 4 events") {
		t.Fatalf("restore copy:\n%s", out)
	}
	apply := append([]string{"restore", "apply", "-from", copyOf}, s.common...)
	if out := eventfold(t, append(apply, "-dry-run")...); !strings.Contains(out, "nothing changed") || !strings.Contains(out, "2 deleted; 1 erasures made after T kept") {
		t.Fatalf("restore apply -dry-run:\n%s", out)
	}
	if events, _ := s.raw.Load(ctx, "account-"+acct, store.Span{}); len(events) != 3 {
		t.Fatalf("the dry run changed the account: %d events", len(events))
	}
	out = eventfold(t, apply...)
	t.Logf("restore apply:\n%s", out)
	// The deposit and ann's change after T go; bob's erasure after T stays, at the end of his
	// restored stream.
	if !strings.Contains(out, "2 deleted; 1 erasures made after T kept") || !strings.Contains(out, "1 subjects erased again") {
		t.Fatalf("restore apply:\n%s", out)
	}

	target := s.name + "-rm-restored"
	if out, err := s.rebuild(ctx, "-target", target, "-kms-endpoint", awstest.KMSEndpoint(t)); err != nil {
		t.Fatalf("projections rebuild after the restore: %v\n%s", err, out)
	}
	str := func(item map[string]ddbtypes.AttributeValue, name string) string {
		v, _ := item[name].(*ddbtypes.AttributeValueMemberS)
		if v == nil {
			return "<none>"
		}
		return v.Value
	}
	num := func(item map[string]ddbtypes.AttributeValue, name string) string {
		v, _ := item[name].(*ddbtypes.AttributeValueMemberN)
		if v == nil {
			return "<none>"
		}
		return v.Value
	}
	if a := s.item(t, target, "account-"+acct); num(a, "balance") != "100" || num(a, "v") != "2" {
		t.Fatalf("rebuilt account: %v; want the balance at T, 100, at version 2", a)
	}
	if u := s.item(t, target, "user-"+ann); str(u, "email") != "ann@example.com" {
		t.Fatalf("rebuilt ann: %v; want her address at T", u)
	}
	if u := s.item(t, target, "user-"+bob); str(u, "userStatus") != "erased" || u["email"] != nil {
		t.Fatalf("rebuilt bob: %v; want erased, as he was after T", u)
	}
	// The restored store takes commands where its streams end, and its claims are those of T.
	if res, err := svc.Deposit(ctx, withCaller(meta(), auth.User(ann)), acct, domain.Deposit{Amount: 1}); err != nil || res.Version != 3 {
		t.Fatalf("deposit after the restore: %+v, %v; want version 3", res, err)
	}
	if _, err := svc.RegisterUser(ctx, withCaller(meta(), auth.User("someone-else")), domain.RegisterUser{UserID: "someone-else", Email: "ann@example.com", Name: "X"}); !errors.Is(err, domain.ErrEmailTaken) {
		t.Fatalf("ann's address of T: %v, want it hers again", err)
	}

	// Without the email hash key's secret the command refuses to run, and says which.
	if _, err := secrets.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(secretName), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	var o, e bytes.Buffer
	if err := run(ctx, apply, &o, &e); err == nil || !strings.Contains(err.Error(), secretName) {
		t.Fatalf("restore apply without the secret %s: %v", secretName, err)
	}
}
