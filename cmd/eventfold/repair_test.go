package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/runner"
	"github.com/eventfold/eventfold/internal/store"
)

// TestRepairRestoresWhatTheProjectorGaveUp runs the template through the local runner, with the
// projector's trigger allowed one retry. The read-model table goes away for a while: the
// projector's batches fail, their retries run out, and the trigger discards them to its OnFailure
// queue (on moto's SQS, as in AWS). Once the table is back, the projector carries on with new
// events, and the discarded ones are missing for good: no later event of their streams comes to
// fill the gap. `projections repair` applies them from the event store, removes the OnFailure
// records, and run again applies and changes nothing.
func TestRepairRestoresWhatTheProjectorGaveUp(t *testing.T) {
	kmsEndpoint := os.Getenv(localaws.EnvKMSEndpoint)
	if kmsEndpoint == "" {
		t.Skip("needs moto's server (" + localaws.EnvKMSEndpoint + ") for the OnFailure queue")
	}
	ctx := context.Background()
	root, _ := awstest.RepoRoot()
	data, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The projector's trigger comes first in the template: one retry, not ten.
	const bounded = "MaximumRetryAttempts: 10\n            MaximumRecordAgeInSeconds: 21600"
	if !strings.Contains(string(data), bounded) {
		t.Fatalf("template.yaml no longer bounds the projector's trigger with %q", bounded)
	}
	tmplPath := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(tmplPath, []byte(strings.Replace(string(data), bounded, "MaximumRetryAttempts: 1\n            MaximumRecordAgeInSeconds: 21600", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	stack := "rp" + strconv.FormatInt(time.Now().UnixNano(), 36)
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	r, err := runner.Start(startCtx, runner.Config{
		Template: tmplPath, Root: root, Stack: stack,
		Params:           nil,
		DynamoDBEndpoint: awstest.DynamoDBEndpoint(t), KMSEndpoint: kmsEndpoint, Addr: "127.0.0.1:0",
		MaxInstances: 1, RetryDelay: 50 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Output: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("close the runner: %v", err)
		}
	})
	env := r.Env()
	client := awstest.DynamoDB(t)
	readModels, queueURL := env.Refs["ReadModelsTable"], env.Refs["ProjectorStreamFailures"]
	flags := []string{"-template", tmplPath, "-stack", stack, "-endpoint", awstest.DynamoDBEndpoint(t), "-kms-endpoint", kmsEndpoint}
	reg, _ := command.Registry()
	es, err := store.New(client, store.Config{EventsTable: env.Refs["EventsTable"], SnapshotsTable: env.Refs["SnapshotsTable"], Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ids := store.NewIDs(nil)
	appendEvent := func(stream string, expected int64, ev domain.Event) {
		t.Helper()
		data, _ := json.Marshal(ev)
		if _, err := es.Append(ctx, stream, expected, store.Event{ID: ids.New(), Type: ev.EventType(), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	version := func(pk string) int64 {
		t.Helper()
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(readModels), ConsistentRead: aws.Bool(true),
			Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: pk}}})
		if err != nil {
			t.Fatal(err)
		}
		v, ok := out.Item["v"].(*ddbtypes.AttributeValueMemberN)
		if !ok {
			return 0
		}
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	open := func(id string) (string, domain.Event) {
		return "account-" + id, domain.AccountOpened{AccountID: id, OwnerID: "owner-" + id, Currency: "EUR"}
	}

	a, b, c := ids.New(), ids.New(), ids.New()
	streamA, openA := open(a)
	appendEvent(streamA, 0, openA)
	waitUntil("the projector to apply "+streamA, func() bool { return version(streamA) == 1 })

	// The read-model table goes away: every batch fails until its retries run out.
	if _, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(readModels)}); err != nil {
		t.Fatal(err)
	}
	streamB, openB := open(b)
	appendEvent(streamB, 0, openB)
	appendEvent(streamA, 1, domain.MoneyDeposited{AccountID: a, Amount: 500})
	waitUntil("the trigger to discard the failing batches", func() bool {
		n := 0
		for _, f := range r.Failures("ProjectorStreamFailures") {
			n += f.DDBStreamBatchInfo.BatchSize
		}
		return n >= 2
	})
	discarded := len(r.Failures("ProjectorStreamFailures"))

	// A repair that fails (here: no read-model table yet) releases the records it claimed.
	var out0, errOut0 bytes.Buffer
	if err := run(ctx, append([]string{"projections", "repair", "-failures-queue", queueURL}, flags...), &out0, &errOut0); err == nil ||
		!strings.Contains(err.Error(), "run the command again") {
		t.Fatalf("repair without a read-model table: %v, want an error saying to run it again\n%s", err, out0.String())
	}
	if n := receiveAll(t, localaws.SQS(kmsEndpoint), queueURL); n != discarded {
		t.Fatalf("after a failed repair the queue shows %d OnFailure records, want the %d it claimed, released", n, discarded)
	}

	// The table is back; the projector carries on with new events, not with those it gave up.
	eventfold(t, append([]string{"tables", "create"}, flags[:6]...)...)
	streamC, openC := open(c)
	appendEvent(streamC, 0, openC)
	waitUntil("the projector to apply "+streamC, func() bool { return version(streamC) == 1 })
	if va, vb := version(streamA), version(streamB); va != 0 || vb != 0 {
		t.Fatalf("before the repair %s is at %d and %s at %d: want both missing, or the test shows no loss", streamA, va, streamB, vb)
	}

	repair := func() string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(ctx, append([]string{"projections", "repair", "-failures-queue", queueURL}, flags...), &out, &errOut); err != nil {
			t.Fatalf("projections repair: %v\n%s%s", err, out.String(), errOut.String())
		}
		return out.String()
	}
	out := repair()
	if want := fmt.Sprintf("removed %d of %d OnFailure records", discarded, discarded); !strings.Contains(out, want) ||
		!strings.Contains(out, "repaired "+readModels+": 3 events applied") {
		t.Fatalf("projections repair:\n%s\nwant 3 events applied (A at 1 and 2, B at 1) and %q", out, want)
	}
	if va, vb, vc := version(streamA), version(streamB), version(streamC); va != 2 || vb != 1 || vc != 1 {
		t.Fatalf("after the repair: %s at %d, %s at %d, %s at %d; want 2, 1, 1", streamA, va, streamB, vb, streamC, vc)
	}
	item, _ := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(readModels), ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: streamA}}})
	if bal, _ := item.Item["balance"].(*ddbtypes.AttributeValueMemberN); bal == nil || bal.Value != "500" {
		t.Fatalf("after the repair %s has balance %v, want 500", streamA, item.Item["balance"])
	}
	if left := receiveAll(t, localaws.SQS(kmsEndpoint), queueURL); left != 0 {
		t.Fatalf("%d OnFailure records left on the queue after the repair", left)
	}

	// Again: nothing to apply, nothing changes.
	before := scanTable(t, client, readModels)
	if out := repair(); !strings.Contains(out, "repaired "+readModels+": 0 events applied") || !strings.Contains(out, "claimed 0 OnFailure records") {
		t.Fatalf("second repair:\n%s\nwant 0 events applied and 0 records claimed", out)
	}
	if after := scanTable(t, client, readModels); !reflect.DeepEqual(before, after) {
		t.Fatalf("the second repair changed the read models:\nbefore %v\nafter  %v", before, after)
	}
}

// receiveAll counts the messages visible on the queue at url (up to 10), and leaves them there,
// visible.
func receiveAll(t *testing.T, api *sqs.Client, url string) int {
	t.Helper()
	out, err := api.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range out.Messages {
		if _, err := api.ChangeMessageVisibility(context.Background(), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	}
	return len(out.Messages)
}

// scanTable returns every item of table by its pk and, where it has one, its version v (the
// events table's sort key).
func scanTable(t *testing.T, client *dynamodb.Client, table string) map[string]map[string]ddbtypes.AttributeValue {
	t.Helper()
	items := map[string]map[string]ddbtypes.AttributeValue{}
	for p := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)}); p.HasMorePages(); {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			key := it["pk"].(*ddbtypes.AttributeValueMemberS).Value
			if v, ok := it["v"].(*ddbtypes.AttributeValueMemberN); ok {
				key += "@" + v.Value
			}
			items[key] = it
		}
	}
	return items
}

// TestSagasRepairStartsMissingRunsAndRedrivesUnfinishedOnes: one order whose OrderPlaced the saga
// never got (its trigger gave the batch up: no run), one run stuck in charging past its
// deadline (the reply given up), one run finished. `sagas repair` starts the first (the run
// charges an account holding nothing, compensates and cancels), redrives the second (past its
// deadline: compensate, cancel for timeout), leaves the third; run again, it changes nothing.
func TestSagasRepairStartsMissingRunsAndRedrivesUnfinishedOnes(t *testing.T) {
	ctx := context.Background()
	s := newSagaStack(t)
	lost := s.order(t)
	stuck, _ := s.stuckInCharging(t, time.Now().Add(-time.Hour))
	done, _ := s.stuckInCharging(t, time.Now().Add(-time.Hour))
	if err, out := s.sagas("redrive", done.OrderID); err != nil {
		t.Fatalf("sagas redrive: %v\n%s", err, out)
	}

	err, out := s.sagas("repair")
	if err != nil {
		t.Fatalf("sagas repair: %v\n%s", err, out)
	}
	for _, want := range []string{"started: " + lost.OrderID + "\tstep cancelled\n", "redrove: " + stuck.OrderID + "\tstep cancelled\n",
		"3 orders: 1 runs started, 1 redriven, 1 finished already, 0 could not be repaired\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("sagas repair:\n%s\nwant the line %q", out, want)
		}
	}
	for order, reason := range map[string]string{lost.OrderID: domain.ErrInsufficientFunds.Code, stuck.OrderID: domain.ReasonTimeout} {
		if f, _, _, err := s.side.Saga.Load(ctx, order); err != nil || f.Step != domain.StepCancelled || f.Reason != reason {
			t.Fatalf("run of %s after the repair: step %q reason %q (%v), want cancelled for %s", order, f.Step, f.Reason, err, reason)
		}
	}

	before := scanTable(t, s.client, s.env.Refs["EventsTable"])
	if err, out := s.sagas("repair"); err != nil || !strings.Contains(out, "3 orders: 0 runs started, 0 redriven, 3 finished already") {
		t.Fatalf("second sagas repair: %v\n%s", err, out)
	}
	if after := scanTable(t, s.client, s.env.Refs["EventsTable"]); len(after) != len(before) {
		t.Fatalf("the second repair changed the events table: %d items, had %d", len(after), len(before))
	}
}
