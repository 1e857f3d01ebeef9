package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
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

// cliStack is a local deployment of the template's tables and keys under a stack name of its own.
type cliStack struct {
	name   string
	common []string // the flags naming it
	env    template.Env
	client *dynamodb.Client
	raw    *store.DynamoDB
}

func newCLIStack(t *testing.T, prefix string) cliStack {
	t.Helper()
	name := prefix + strconv.FormatInt(time.Now().UnixNano(), 36)
	s := cliStack{name: name, common: []string{"-template", "../../template.yaml", "-stack", name, "-endpoint", awstest.DynamoDBEndpoint(t)}}
	eventfold(t, append([]string{"tables", "create"}, s.common...)...)
	tmpl, err := template.ParseFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.env, err = tmpl.LocalEnv(name, localaws.Region, localaws.Account); err != nil {
		t.Fatal(err)
	}
	s.client = awstest.DynamoDB(t)
	reg, _ := command.Registry()
	s.raw, err = store.New(s.client, store.Config{EventsTable: s.env.Refs["EventsTable"], SnapshotsTable: s.env.Refs["SnapshotsTable"],
		ClaimsTable: s.env.Refs["ClaimsTable"], Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rebuild runs `eventfold projections rebuild` with args, returning its output and error.
func (s cliStack) rebuild(ctx context.Context, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := run(ctx, append(append([]string{"projections", "rebuild"}, args...), s.common...), &out, &errOut)
	return out.String(), err
}

func (s cliStack) tableExists(t *testing.T, table string) bool {
	t.Helper()
	_, err := s.client.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	var missing *ddbtypes.ResourceNotFoundException
	if errors.As(err, &missing) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

func (s cliStack) item(t *testing.T, table, pk string) map[string]ddbtypes.AttributeValue {
	t.Helper()
	out, err := s.client.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: pk}}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

// TestRebuildOfSealedUsersOrdersAndAnErasedUser: users and their orders with shipping
// addresses (sealed whole), one user erased afterwards, all projected by the live projector as
// functions/projector wires it. `projections rebuild` succeeds and its verify finds every read
// model equal to the live one: the rebuild opens what the projector opens, and what it cannot
// open (the erased user's) it redacts as the projector does.
func TestRebuildOfSealedUsersOrdersAndAnErasedUser(t *testing.T) {
	ctx := context.Background()
	s := newCLIStack(t, "rb")
	kmsClient := awstest.MustKeys(t, s.env)
	live, err := app.Projector(app.ProjectorConfig{EventsTable: s.env.Refs["EventsTable"], SnapshotsTable: s.env.Refs["SnapshotsTable"],
		ReadModelsTable: s.env.Refs["ReadModelsTable"], ParkingTable: s.env.Refs["ParkingTable"],
		KeysConfig: app.KeysConfig{KeysTable: s.env.Refs["KeysTable"], DataKey: s.env.Refs["DataKeyAlias"]}},
		app.Clients{DynamoDB: s.client, KMS: kmsClient}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := crypto.NewKeyring(kmsClient, s.client, crypto.KeyringConfig{Table: s.env.Refs["KeysTable"], KeyID: s.env.Refs["DataKeyAlias"], MaxKeys: 100, TTL: time.Minute})
	svc, err := command.New(command.Config{Store: crypto.NewSealingStore(s.raw, keys, domain.PersonalFields),
		EmailKey: []byte("0123456789abcdef0123456789abcdef"), Eraser: keys})
	if err != nil {
		t.Fatal(err)
	}
	ids := store.NewIDs(nil)
	meta := func() command.Meta { return command.Meta{CommandID: ids.New()} }
	var streams, users []string
	for i, name := range []string{"Ann", "Bob", "Cem"} {
		user := ids.New()
		users = append(users, user)
		email := strings.ToLower(name) + "@example.com"
		if _, err := svc.RegisterUser(ctx, withCaller(meta(), auth.User(user)), domain.RegisterUser{UserID: user, Email: email, Name: name + " Example"}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.OpenAccount(ctx, withCaller(meta(), auth.User(user)), domain.OpenAccount{AccountID: "acc-" + user, OwnerID: user, Currency: "EUR"}); err != nil {
			t.Fatal(err) // an order is paid from an account of the customer's
		}
		order := ids.New()
		if _, err := svc.PlaceOrder(ctx, withCaller(meta(), auth.User(user)), domain.PlaceOrder{OrderID: order, CustomerID: user, PaymentAccountID: "acc-" + user, Currency: "EUR",
			Lines:           []domain.OrderLine{{SKU: "SKU-1", Quantity: int64(i + 1), UnitPrice: 100}},
			ShippingAddress: domain.Address{Name: name + " Example", Line1: "1 Main Street", City: "Berlin", PostalCode: "10115", Country: "DE"}}); err != nil {
			t.Fatal(err)
		}
		streams = append(streams, "user-"+user, "account-acc-"+user, "order-"+order)
	}
	if _, err := svc.ChangeEmail(ctx, withCaller(meta(), auth.User(users[0])), users[0], domain.ChangeEmail{Email: "ann.lee@example.com"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.EraseUser(ctx, withCaller(meta(), auth.Operator("arn:aws:iam::123456789012:user/ops")), users[1]); err != nil {
		t.Fatal(err)
	}
	// The live projector gets every event through the stream, as in the projector Lambda.
	var batch []events.DynamoDBEventRecord
	for _, stream := range streams {
		stored, err := s.raw.Load(ctx, stream, store.Span{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range stored {
			rec, err := ddbstream.Record(e, fmt.Sprintf("%021d", len(batch)+1))
			if err != nil {
				t.Fatal(err)
			}
			batch = append(batch, rec)
		}
	}
	if resp, err := live.Processor.Handle(ctx, events.DynamoDBEvent{Records: batch}); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("live projector: %v, failures %v", err, resp.BatchItemFailures)
	}
	readModels := s.env.Refs["ReadModelsTable"]
	if got := s.item(t, readModels, "user-"+users[0])["email"]; got == nil || got.(*ddbtypes.AttributeValueMemberS).Value != "ann.lee@example.com" {
		t.Fatalf("live read model of Ann: email %v", got)
	}

	target := s.name + "-rebuilt"
	out, err := s.rebuild(ctx, "-target", target)
	if err != nil {
		t.Fatalf("projections rebuild: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("%d equal, 0 live behind, 0 live ahead, 0 only live, 0 different", len(streams)); !strings.Contains(out, want) {
		t.Fatalf("projections rebuild:\n%s\nwant %q", out, want)
	}
	if got := s.item(t, target, "user-"+users[0])["email"]; got == nil || got.(*ddbtypes.AttributeValueMemberS).Value != "ann.lee@example.com" {
		t.Fatalf("rebuilt read model of Ann: email %v", got)
	}
	if erased := s.item(t, target, "user-"+users[1]); erased["email"] != nil || erased["name"] != nil ||
		erased["userStatus"].(*ddbtypes.AttributeValueMemberS).Value != string(domain.UserStatusErased) {
		t.Fatalf("rebuilt read model of the erased user: %v", erased)
	}
	// The catch-up pass into the same table finds nothing to apply and keeps it equal.
	out, err = s.rebuild(ctx, "-target", target)
	if err != nil || !strings.Contains(out, "rebuilt "+target+": 0 events") || !strings.Contains(out, "0 different") || !strings.Contains(out, "caught up "+target) {
		t.Fatalf("catch-up: %v\n%s", err, out)
	}
}

// TestFailedRebuildDeletesTheTableItCreated: an event the projection cannot decode stops the
// rebuild. The table the run created is deleted and the error says so; a table the run did not
// create (the catch-up pass, -target naming an existing table) is kept, and the error says so.
func TestFailedRebuildDeletesTheTableItCreated(t *testing.T) {
	ctx := context.Background()
	s := newCLIStack(t, "rf")
	ids := store.NewIDs(nil)
	for i := 0; i < 3; i++ {
		acct := ids.New()
		data, _ := json.Marshal(domain.AccountOpened{AccountID: acct, OwnerID: "o", Currency: "EUR"})
		if _, err := s.raw.Append(ctx, "account-"+acct, 0, store.Event{ID: ids.New(), Type: domain.TypeAccountOpened, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	poison, err := store.EncodeItem(store.Event{ID: ids.New(), StreamID: "account-" + ids.New(), Version: 1, Type: domain.TypeAccountOpened,
		SchemaVersion: 1, RecordedAt: time.Now(), Data: []byte(`{"accountId": 7}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.env.Refs["EventsTable"]), Item: poison}); err != nil {
		t.Fatal(err)
	}

	target := s.name + "-rebuilt"
	out, err := s.rebuild(ctx, "-target", target)
	if err == nil || !errors.Is(err, consumer.ErrPoison) || !strings.Contains(err.Error(), "deleted the partial table "+target) {
		t.Fatalf("rebuild over a poison event: %v\n%s; want the poison named and the table deleted", err, out)
	}
	if s.tableExists(t, target) {
		t.Fatalf("the failed rebuild left %s behind", target)
	}

	// The catch-up pass into a table that exists: kept, whatever happens.
	if _, err := s.client.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: aws.String(target), BillingMode: ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: ddbtypes.KeyTypeHash}}}); err != nil {
		t.Fatal(err)
	}
	out, err = s.rebuild(ctx, "-target", target)
	if err == nil || !errors.Is(err, consumer.ErrPoison) || !strings.Contains(err.Error(), target+" is kept") {
		t.Fatalf("catch-up over a poison event: %v\n%s; want the poison named and the table kept", err, out)
	}
	if !s.tableExists(t, target) {
		t.Fatalf("the failed catch-up deleted %s, which it did not create", target)
	}

	// The live table is never a target.
	if _, err := s.rebuild(ctx, "-target", s.env.Refs["ReadModelsTable"]); err == nil || !strings.Contains(err.Error(), "live read-model table") {
		t.Fatalf("rebuild into the live table: %v", err)
	}
}

// TestInterruptedRebuildDeletesTheTableItCreated: an interrupt (the context ends) while the
// rebuild runs deletes the table it created, although the context it would delete with has ended.
func TestInterruptedRebuildDeletesTheTableItCreated(t *testing.T) {
	s := newCLIStack(t, "ri")
	ids := store.NewIDs(nil)
	var writes []ddbtypes.WriteRequest
	for i := 0; i < 200; i++ {
		acct := ids.New()
		data, _ := json.Marshal(domain.AccountOpened{AccountID: acct, OwnerID: "o", Currency: "EUR"})
		item, err := store.EncodeItem(store.Event{ID: ids.New(), StreamID: "account-" + acct, Version: 1, Type: domain.TypeAccountOpened,
			SchemaVersion: 1, RecordedAt: time.Now(), Data: data})
		if err != nil {
			t.Fatal(err)
		}
		writes = append(writes, ddbtypes.WriteRequest{PutRequest: &ddbtypes.PutRequest{Item: item}})
	}
	for len(writes) > 0 {
		n := min(25, len(writes))
		out, err := s.client.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{
			RequestItems: map[string][]ddbtypes.WriteRequest{s.env.Refs["EventsTable"]: writes[:n]}})
		if err != nil {
			t.Fatal(err)
		}
		writes = append(writes[n:], out.UnprocessedItems[s.env.Refs["EventsTable"]]...)
	}
	target := s.name + "-rebuilt"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the interrupt, as soon as the table is there
		for ctx.Err() == nil {
			if _, err := s.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(target)}); err == nil {
				cancel()
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	out, err := s.rebuild(ctx, "-target", target)
	if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "deleted the partial table "+target) {
		t.Fatalf("interrupted rebuild: %v\n%s; want the interrupt named and the table deleted", err, out)
	}
	if s.tableExists(t, target) {
		t.Fatalf("the interrupted rebuild left %s behind", target)
	}
}

// withCaller is m sent by c: the user commands are the user's, erasure and stock the operator's.
func withCaller(m command.Meta, c auth.Caller) command.Meta {
	m.Caller = c
	return m
}
