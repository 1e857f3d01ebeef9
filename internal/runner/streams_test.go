package runner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/runner"
)

// put writes an item {pk, mode, kind} and returns nothing; the stream record follows.
func put(t testing.TB, client *dynamodb.Client, table, pk, mode, kind string) {
	t.Helper()
	item := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "mode": &types.AttributeValueMemberS{Value: mode}}
	if kind != "" {
		item["kind"] = &types.AttributeValueMemberS{Value: kind}
	}
	if _, err := client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}
}

// batches are a function's stream invocations, each as the pk values it carried.
type batch struct {
	keys    []string
	outcome string
}

func batches(r *runner.Runner, function string) []batch {
	var out []batch
	for _, inv := range r.Invocations() {
		if inv.Function != function {
			continue
		}
		var ev struct {
			Records []struct {
				Dynamodb struct {
					NewImage map[string]map[string]any
				} `json:"dynamodb"`
			}
		}
		json.Unmarshal(inv.Payload, &ev)
		var b batch
		for _, rec := range ev.Records {
			b.keys = append(b.keys, fmt.Sprint(rec.Dynamodb.NewImage["pk"]["S"]))
		}
		b.outcome = inv.Outcome
		out = append(out, b)
	}
	return out
}

// waitFor polls until cond holds, for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func describe(bs []batch) string {
	var parts []string
	for _, b := range bs {
		parts = append(parts, "["+strings.Join(b.keys, ",")+"]"+b.outcome)
	}
	return strings.Join(parts, " ")
}

func startStreams(t *testing.T, tmpl string) (*runner.Runner, *dynamodb.Client) {
	t.Helper()
	root, _ := awstest.RepoRoot()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stackSeq++
	r, err := runner.Start(ctx, runner.Config{
		Template: tmpl, Root: root, Stack: fmt.Sprintf("st%d%d", time.Now().UnixNano()%1e9, stackSeq),
		DynamoDBEndpoint: awstest.DynamoDBEndpoint(t), KMSEndpoint: os.Getenv(localaws.EnvKMSEndpoint),
		Addr: "127.0.0.1:0", MaxInstances: 1, RetryDelay: 50 * time.Millisecond,
		Log: testLog(t), Output: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("close the runner: %v", err)
		}
	})
	return r, awstest.DynamoDB(t)
}

func TestEventSourceMappingRules(t *testing.T) {
	r, client := startStreams(t, "testdata/streams.yaml")
	table := func(id string) string { return r.Env().Refs[id] }

	t.Run("BatchSizeAndWindowKeepShardOrder", func(t *testing.T) {
		for i := 0; i < 25; i++ {
			put(t, client, table("BatchTable"), fmt.Sprintf("b%02d", i), "ok", "")
		}
		total := func() (n int) {
			for _, b := range batches(r, "BatchFunction") {
				n += len(b.keys)
			}
			return n
		}
		waitFor(t, 15*time.Second, "25 records", func() bool { return total() >= 25 })
		var all []string
		for _, b := range batches(r, "BatchFunction") {
			if len(b.keys) > 10 || b.outcome != "ok" {
				t.Fatalf("batch over BatchSize 10 or failed: %s", describe(batches(r, "BatchFunction")))
			}
			all = append(all, b.keys...)
		}
		for i, k := range all {
			if k != fmt.Sprintf("b%02d", i) {
				t.Fatalf("records out of order or repeated: %v", all)
			}
		}
		if n := len(batches(r, "BatchFunction")); n > 5 {
			t.Fatalf("25 records written at once took %d invocations; the 1 s window should gather them (%s)", n, describe(batches(r, "BatchFunction")))
		}
		before := len(batches(r, "BatchFunction"))
		for i := 0; i < 3; i++ { // spread over 150 ms, inside one 1 s window
			put(t, client, table("BatchTable"), fmt.Sprintf("w%d", i), "ok", "")
			time.Sleep(50 * time.Millisecond)
		}
		waitFor(t, 10*time.Second, "the windowed batch", func() bool { return total() >= 28 })
		if got := batches(r, "BatchFunction")[before:]; len(got) != 1 || len(got[0].keys) != 3 {
			t.Fatalf("3 records within the window came as %s, want one batch", describe(got))
		}
	})

	t.Run("RetryUntilSuccessThenDiscardAfterMaximumRetryAttempts", func(t *testing.T) {
		put(t, client, table("RetryTable"), "r1", "fail-twice", "")
		waitFor(t, 15*time.Second, "r1 to succeed", func() bool {
			bs := batches(r, "RetryFunction")
			return len(bs) > 0 && bs[len(bs)-1].outcome == "ok"
		})
		if got := describe(batches(r, "RetryFunction")); got != "[r1]error [r1]error [r1]ok" {
			t.Fatalf("invocations %s, want two failures then success", got)
		}
		put(t, client, table("RetryTable"), "p1", "poison", "")
		waitFor(t, 15*time.Second, "p1 to be discarded", func() bool { return len(r.Failures("FailureQueue")) > 0 })
		put(t, client, table("RetryTable"), "r2", "ok", "")
		waitFor(t, 15*time.Second, "r2 after the discarded record", func() bool {
			return strings.HasSuffix(describe(batches(r, "RetryFunction")), "[r2]ok")
		})
		if got := describe(batches(r, "RetryFunction")); got != "[r1]error [r1]error [r1]ok [p1]error [p1]error [p1]error [r2]ok" {
			t.Fatalf("invocations %s, want p1 tried 1+2 times", got)
		}
		f := r.Failures("FailureQueue")
		if len(f) != 1 || f[0].RequestContext.Condition != "RetryAttemptsExhausted" || f[0].DDBStreamBatchInfo.BatchSize != 1 ||
			f[0].RequestContext.ApproximateInvokeCount != 3 || f[0].DDBStreamBatchInfo.StartSequenceNumber == "" ||
			f[0].DDBStreamBatchInfo.StreamARN != r.Env().Attrs["RetryTable.StreamArn"] {
			t.Fatalf("OnFailure record = %+v", f)
		}
		// The record reaches the template's queue on moto's SQS too, as Lambda's JSON body.
		if got := receiveFailures(t, r.Env().Refs["FailureQueue"]); len(got) != 1 || got[0] != f[0] {
			t.Fatalf("FailureQueue on SQS holds %+v, want %+v", got, f)
		}
	})

	t.Run("BisectIsolatesThePoisonRecord", func(t *testing.T) {
		before := len(r.Failures("FailureQueue"))
		for _, k := range []string{"x1", "x2", "x3", "x4"} {
			mode := "ok"
			if k == "x3" {
				mode = "poison"
			}
			put(t, client, table("BisectTable"), k, mode, "")
		}
		waitFor(t, 20*time.Second, "x4", func() bool { return strings.HasSuffix(describe(batches(r, "BisectFunction")), "[x4]ok") })
		if got := describe(batches(r, "BisectFunction")); got != "[x1,x2,x3,x4]error [x1,x2]ok [x3,x4]error [x3]error [x4]ok" {
			t.Fatalf("invocations %s", got)
		}
		f := r.Failures("FailureQueue")[before:]
		if len(f) != 1 || f[0].DDBStreamBatchInfo.BatchSize != 1 || f[0].DDBStreamBatchInfo.StartSequenceNumber != f[0].DDBStreamBatchInfo.EndSequenceNumber {
			t.Fatalf("OnFailure records %+v, want x3 alone", f)
		}
	})

	t.Run("ReportBatchItemFailuresResumesFromTheLowestFailure", func(t *testing.T) {
		for _, k := range []string{"a", "b", "c"} {
			mode := "ok"
			if k == "b" {
				mode = "report-twice"
			}
			put(t, client, table("ReportTable"), k, mode, "")
		}
		waitFor(t, 15*time.Second, "b and c to succeed", func() bool { return strings.HasSuffix(describe(batches(r, "ReportFunction")), "[b,c]ok") })
		if got := describe(batches(r, "ReportFunction")); got != "[a,b,c]partial [b,c]partial [b,c]ok" {
			t.Fatalf("invocations %s", got)
		}
		put(t, client, table("ReportTable"), "m", "malformed", "")
		put(t, client, table("ReportTable"), "n", "ok", "")
		waitFor(t, 15*time.Second, "m and n", func() bool { return strings.HasSuffix(describe(batches(r, "ReportFunction")), "[m,n]ok") })
		if got := describe(batches(r, "ReportFunction")); !strings.HasSuffix(got, "[m,n]malformed [m,n]ok") {
			t.Fatalf("invocations %s: a malformed response must fail the whole batch", got)
		}
	})

	t.Run("PartialFailuresCountAsRetries", func(t *testing.T) {
		before := len(r.Failures("FailureQueue"))
		put(t, client, table("ReportLimitTable"), "ok1", "ok", "")
		put(t, client, table("ReportLimitTable"), "bad", "report-always", "")
		put(t, client, table("ReportLimitTable"), "ok2", "ok", "")
		waitFor(t, 15*time.Second, "bad to be discarded", func() bool { return len(r.Failures("FailureQueue")) > before })
		if got := describe(batches(r, "ReportLimitFunction")); got != "[ok1,bad,ok2]partial [bad,ok2]partial" {
			t.Fatalf("invocations %s, want one retry (MaximumRetryAttempts 1) after the partial failure", got)
		}
		f := r.Failures("FailureQueue")[before]
		if f.DDBStreamBatchInfo.BatchSize != 2 || f.RequestContext.ApproximateInvokeCount != 2 {
			t.Fatalf("OnFailure record = %+v, want bad and ok2 after 2 invocations", f)
		}
	})

	t.Run("FilterCriteria", func(t *testing.T) {
		put(t, client, table("FilterTable"), "f1", "ok", "keep")
		put(t, client, table("FilterTable"), "f2", "ok", "drop")
		put(t, client, table("FilterTable"), "f3", "ok", "also-this")
		put(t, client, table("FilterTable"), "f4", "ok", "")
		put(t, client, table("FilterTable"), "f1", "ok", "keep") // a MODIFY: filtered out by eventName
		put(t, client, table("FilterTable"), "f5", "ok", "keep")
		waitFor(t, 15*time.Second, "f5", func() bool { return strings.Contains(describe(batches(r, "FilterFunction")), "f5") })
		var got []string
		for _, b := range batches(r, "FilterFunction") {
			got = append(got, b.keys...)
		}
		if strings.Join(got, ",") != "f1,f3,f5" {
			t.Fatalf("delivered %v, want f1, f3, f5", got)
		}
	})
}

// TestEndToEndStream: an HTTP request through the runner reaches the commands Lambda, which
// appends an event; the event store's stream delivers it to a consumer function. The template is
// the project's, with a test consumer added on the events table's stream.
func TestEndToEndStream(t *testing.T) {
	root, _ := awstest.RepoRoot()
	data, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fn, _ := filepath.Abs("testdata/fn")
	consumer := fmt.Sprintf(`
  TestConsumer:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: go1.x
    Properties:
      CodeUri: %s
      Events:
        Events:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt EventsTable.StreamArn
            StartingPosition: TRIM_HORIZON
            BatchSize: 10
`, fn)
	text := strings.Replace(string(data), "\nResources:\n", "\nResources:\n"+consumer, 1)
	path := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := runner.Start(ctx, runner.Config{
		Template: path, Root: root, Stack: fmt.Sprintf("e2e%d", time.Now().UnixNano()%1e9),
		Params:           nil,
		DynamoDBEndpoint: awstest.DynamoDBEndpoint(t), KMSEndpoint: os.Getenv(localaws.EnvKMSEndpoint), Addr: "127.0.0.1:0", RetryDelay: 50 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Output: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := r.Close(); err != nil {
			t.Errorf("close the runner: %v", err)
		}
	}()
	resp, body := callAs(t, userOf(t, r, "streams"), "POST", r.URL()+"/accounts", "application/json", []byte(`{"currency":"EUR"}`))
	if resp.StatusCode != 201 {
		t.Fatalf("POST /accounts = %d %s", resp.StatusCode, body)
	}
	var created struct{ ID string }
	json.Unmarshal(body, &created)
	waitFor(t, 15*time.Second, "the consumer to get the event", func() bool {
		for _, b := range batches(r, "TestConsumer") {
			for _, k := range b.keys {
				if k == "account-"+created.ID {
					return true
				}
			}
		}
		return false
	})
}

// receiveFailures receives and deletes every message on the queue at url, each an OnFailure
// record.
func receiveFailures(t *testing.T, url string) []runner.FailureRecord {
	t.Helper()
	api := localaws.SQS(os.Getenv(localaws.EnvKMSEndpoint))
	var out []runner.FailureRecord
	for {
		msgs, err := api.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs.Messages) == 0 {
			return out
		}
		for _, m := range msgs.Messages {
			var f runner.FailureRecord
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &f); err != nil {
				t.Fatalf("OnFailure message %q: %v", aws.ToString(m.Body), err)
			}
			out = append(out, f)
			if _, err := api.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func testLog(t *testing.T) *slog.Logger {
	if os.Getenv("RUNNER_DEBUG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}
