package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/app"
	"github.com/eventfold/eventfold/internal/auth"
	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/consumer"
	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/ddbstream"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/store"
	"github.com/eventfold/eventfold/internal/template"
)

// TestReviewRebuildAndReplayIgnoreSealing: a user registered through the sealing store, projected
// by the projector as functions/projector wires it (opening sealed fields), is then rebuilt by
// `eventfold projections rebuild` and a parked event of theirs replayed by `eventfold parked
// replay`. Neither opens sealed fields: the rebuilt read model and the replayed one hold the
// ciphertext ("ef1....") as the user's email, the rebuild's verify fails, and the replay corrupts
// the live read model.
func TestReviewRebuildAndReplayIgnoreSealing(t *testing.T) {
	ctx := context.Background()
	stack := "rv" + strconv.FormatInt(time.Now().UnixNano(), 36)
	common := []string{"-template", "../../template.yaml", "-stack", stack, "-endpoint", awstest.DynamoDBEndpoint(t)}
	eventfold(t, append([]string{"tables", "create"}, common...)...)
	tmpl, err := template.ParseFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env, err := tmpl.LocalEnv(stack, localaws.Region, localaws.Account)
	if err != nil {
		t.Fatal(err)
	}
	client := awstest.DynamoDB(t)
	kmsClient := awstest.MustKeys(t, env)
	reg, _ := command.Registry()
	raw, err := store.New(client, store.Config{EventsTable: env.Refs["EventsTable"], SnapshotsTable: env.Refs["SnapshotsTable"], ClaimsTable: env.Refs["ClaimsTable"], Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	keys := crypto.NewKeyring(kmsClient, client, crypto.KeyringConfig{Table: env.Refs["KeysTable"], KeyID: env.Refs["DataKeyAlias"], MaxKeys: 100, TTL: time.Minute})
	sealed := crypto.NewSealingStore(raw, keys, domain.PersonalFields)
	svc, err := command.New(command.Config{Store: sealed, EmailKey: []byte("0123456789abcdef0123456789abcdef"), Eraser: keys})
	if err != nil {
		t.Fatal(err)
	}
	ids := store.NewIDs(nil)
	user := ids.New()
	if _, err := svc.RegisterUser(ctx, withCaller(command.Meta{CommandID: ids.New()}, auth.User(user)), domain.RegisterUser{UserID: user, Email: "ann@example.com", Name: "Ann Example"}); err != nil {
		t.Fatal(err)
	}
	// The live projector, wired as functions/projector does.
	readModels := env.Refs["ReadModelsTable"]
	live, err := app.Projector(app.ProjectorConfig{EventsTable: env.Refs["EventsTable"], SnapshotsTable: env.Refs["SnapshotsTable"],
		ReadModelsTable: readModels, ParkingTable: env.Refs["ParkingTable"],
		KeysConfig: app.KeysConfig{KeysTable: env.Refs["KeysTable"], DataKey: env.Refs["DataKeyAlias"]}},
		app.Clients{DynamoDB: client, KMS: kmsClient}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	parking, proc := live.Parking, live.Processor
	stored, err := raw.Load(ctx, "user-"+user, store.Span{})
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := ddbstream.Record(stored[0], "100")
	if resp, err := proc.Handle(ctx, events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{rec}}); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatal(resp, err)
	}
	email := func(table string) string {
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
			Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "user-" + user}}})
		if err != nil {
			t.Fatal(err)
		}
		s, _ := out.Item["email"].(*ddbtypes.AttributeValueMemberS)
		if s == nil {
			return "<none>"
		}
		return s.Value
	}
	t.Logf("live read model email: %q", email(readModels))

	// 1. projections rebuild
	var out, errOut bytes.Buffer
	rebuildErr := run(ctx, append([]string{"projections", "rebuild", "-target", stack + "-rebuilt"}, common...), &out, &errOut)
	t.Logf("projections rebuild: err=%v\n%s", rebuildErr, out.String())
	rebuiltEmail := email(stack + "-rebuilt")
	t.Logf("rebuilt read model email: %.40q...", rebuiltEmail)

	// 2. parked replay: the user's email change was parked (say, by a projector bug since fixed).
	if _, err := svc.ChangeEmail(ctx, withCaller(command.Meta{CommandID: ids.New()}, auth.User(user)), user, domain.ChangeEmail{Email: "ann.lee@example.com"}); err != nil {
		t.Fatal(err)
	}
	stored, err = raw.Load(ctx, "user-"+user, store.Span{})
	if err != nil {
		t.Fatal(err)
	}
	rec2, _ := ddbstream.Record(stored[1], "200")
	recJSON, _ := json.Marshal(rec2)
	if err := parking.Park(ctx, consumer.Parked{Consumer: "projector", StreamID: "user-" + user, Version: 2, Sequence: "200", Record: recJSON, Error: "simulated", ParkedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	t.Logf("parked replay:\n%s", eventfold(t, append([]string{"parked", "replay"}, common...)...))
	replayedEmail := email(readModels)
	t.Logf("live read model email after the replay: %.40q...", replayedEmail)

	if rebuildErr != nil || rebuiltEmail != "ann@example.com" {
		t.Errorf("rebuild: err %v, rebuilt email %.20q...; want success and the email the live projector shows", rebuildErr, rebuiltEmail)
	}
	if replayedEmail != "ann.lee@example.com" {
		t.Errorf("replay wrote email %.20q... into the live read model; want ann.lee@example.com", replayedEmail)
	}
}
