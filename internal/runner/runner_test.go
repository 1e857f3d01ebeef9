package runner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/ddbstream"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/runner"
	"github.com/eventfold/eventfold/internal/store"
)

func TestMain(m *testing.M) { awstest.Main(m) }

var stackSeq int

func mustStart(t testing.TB, tmpl string, params map[string]string, maxInstances int) *runner.Runner {
	t.Helper()
	return startWith(t, runner.Config{Template: tmpl, Params: params, MaxInstances: maxInstances})
}

// startWith starts a runner on the local stack with cfg, whose unset fields get the tests'
// defaults (the repository root, a fresh stack name, the stack's endpoints, any free port, no
// output), and closes it when the test ends.
func startWith(t testing.TB, cfg runner.Config) *runner.Runner {
	t.Helper()
	root, err := awstest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	stackSeq++
	if cfg.Root == "" {
		cfg.Root = root
	}
	if cfg.Stack == "" {
		cfg.Stack = "rt" + time.Now().Format("150405") + strings.Repeat("x", stackSeq)
	}
	cfg.DynamoDBEndpoint, cfg.KMSEndpoint, cfg.Addr = awstest.DynamoDBEndpoint(t), awstest.KMSEndpoint(t), "127.0.0.1:0"
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Output == nil {
		cfg.Output = io.Discard
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := runner.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("close the runner: %v", err)
		}
	})
	return r
}

func call(t testing.TB, method, url, contentType string, body []byte, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

// caller is who sends a request through the runner: it returns the headers that authenticate
// a request of that method, URL and body.
type caller func(t testing.TB, method, url string, body []byte) []string

// userOf is the user name of the runner's user pool (template.yaml's UserPool and
// UserPoolClient, on moto): signed up and in once, their access token on every request.
func userOf(t testing.TB, r *runner.Runner, name string) caller {
	t.Helper()
	token, _ := awstest.SignIn(t, r.Env().Refs["UserPool"], r.Env().Refs["UserPoolClient"], name)
	return func(testing.TB, string, string, []byte) []string { return []string{"Authorization", "Bearer " + token} }
}

// operator signs each request with SigV4 for execute-api, as the AWS_IAM routes require.
func operator(t testing.TB, method, url string, body []byte) []string {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	awstest.SignV4(t, req, body, awstest.OperatorCredentials)
	return []string{"Authorization", req.Header.Get("Authorization"), "X-Amz-Date", req.Header.Get("X-Amz-Date")}
}

// callAs is call by who.
func callAs(t testing.TB, who caller, method, url, contentType string, body []byte, headers ...string) (*http.Response, []byte) {
	t.Helper()
	return call(t, method, url, contentType, body, append(who(t, method, url, body), headers...)...)
}

func TestHTTPAPIPayloadV2(t *testing.T) {
	r := mustStart(t, "testdata/template.yaml", nil, 2)
	resp, body := call(t, "POST", r.URL()+"/echo/42?x=1&x=2&y=z", "application/json", []byte(`{"a":1}`), "Cookie", "s=1; t=2", "X-Multi", "a", "X-Multi", "b")
	if resp.StatusCode != 201 || resp.Header.Get("X-Test") != "yes" || len(resp.Cookies()) != 2 {
		t.Fatalf("echo: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	var got struct {
		Event        events.APIGatewayV2HTTPRequest
		RequestID    string
		DeadlineInMs int64
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	e := got.Event
	switch {
	case e.Version != "2.0" || e.RouteKey != "POST /echo/{id}" || e.RequestContext.RouteKey != e.RouteKey:
		t.Errorf("route: %q %q", e.Version, e.RouteKey)
	case e.PathParameters["id"] != "42" || e.RawPath != "/echo/42" || e.RawQueryString != "x=1&x=2&y=z":
		t.Errorf("path: %v %q %q", e.PathParameters, e.RawPath, e.RawQueryString)
	case e.QueryStringParameters["x"] != "1,2" || e.QueryStringParameters["y"] != "z":
		t.Errorf("query: %v", e.QueryStringParameters)
	case strings.Join(e.Cookies, ";") != "s=1;t=2" || e.Headers["cookie"] != "":
		t.Errorf("cookies: %v", e.Cookies)
	case e.Headers["x-multi"] != "a,b" || e.Headers["content-type"] != "application/json":
		t.Errorf("headers: %v", e.Headers)
	case e.Body != `{"a":1}` || e.IsBase64Encoded:
		t.Errorf("body: %q base64 %v", e.Body, e.IsBase64Encoded)
	case e.RequestContext.RequestID == "" || e.RequestContext.RequestID != got.RequestID || e.RequestContext.TimeEpoch == 0 || e.RequestContext.Time == "":
		t.Errorf("request context: %+v (function saw request ID %q)", e.RequestContext, got.RequestID)
	case e.RequestContext.HTTP.Method != "POST" || e.RequestContext.HTTP.SourceIP != "127.0.0.1":
		t.Errorf("http: %+v", e.RequestContext.HTTP)
	case got.DeadlineInMs <= 0 || got.DeadlineInMs > 2000:
		t.Errorf("deadline %d ms away, want within the 2 s Timeout", got.DeadlineInMs)
	}
	// A binary body arrives base64-encoded; a greedy path parameter takes the rest of the path.
	_, body = call(t, "PUT", r.URL()+"/echo/a/b/c", "application/octet-stream", []byte{0, 1, 2})
	if err := json.Unmarshal(body, &got); err != nil || !got.Event.IsBase64Encoded || got.Event.Body != "AAEC" || got.Event.PathParameters["proxy"] != "a/b/c" || got.Event.RouteKey != "ANY /echo/{proxy+}" {
		t.Fatalf("binary body: %+v (%v)", got.Event, err)
	}
}

func TestHTTPAPIResponsesAndFailures(t *testing.T) {
	r := mustStart(t, "testdata/template.yaml", nil, 2)
	tests := []struct {
		path   string
		status int
		body   string
	}{
		{"/plain", 200, `{"hello":"world"}`},
		{"/binary", 200, "\x00\x01\x02\xff"},
		{"/error", 500, `{"message":"Internal Server Error"}`},
		{"/crash", 500, `{"message":"Internal Server Error"}`},
		{"/sleep", 500, `{"message":"Internal Server Error"}`}, // the function's own Timeout, 2 s
		{"/plain", 200, `{"hello":"world"}`},                   // new instances replace the crashed and timed-out ones
		{"/nowhere/at/all", 404, `{"message":"Not Found"}`},
	}
	for _, tt := range tests {
		resp, body := call(t, "GET", r.URL()+tt.path, "", nil)
		if resp.StatusCode != tt.status || strings.TrimSpace(string(body)) != tt.body {
			t.Errorf("GET %s = %d %q, want %d %q", tt.path, resp.StatusCode, body, tt.status, tt.body)
		}
	}
}

// TestCloseReturnsWhatItCouldNotStop holds a request open past the HTTP API's graceful shutdown:
// Close must say so (it stops everything else all the same).
func TestCloseReturnsWhatItCouldNotStop(t *testing.T) {
	r := mustStart(t, "testdata/template.yaml", nil, 1)
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The gateway reads the whole body before it invokes: a body that never ends keeps the
	// request running.
	if _, err := io.WriteString(conn, "POST /echo/1 HTTP/1.1\r\nHost: local\r\nContent-Length: 100\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := r.Close(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with a request still running = %v, want the shutdown's %v", err, context.DeadlineExceeded)
	}
	if _, err := r.Invoke(context.Background(), "TestFunction", []byte(`{}`)); err == nil {
		t.Fatal("the function still answers after Close")
	}
}

func TestEnvironmentFromTemplate(t *testing.T) {
	r := mustStart(t, "testdata/template.yaml", nil, 1)
	_, body := call(t, "GET", r.URL()+"/env", "", nil)
	env := r.Env()
	want := env.Refs["Things"] + "|from-globals|TestFunction|" + env.Attrs["Key.Arn"] + "|" + env.Refs["KeyAlias"]
	if string(body) != want || !strings.HasPrefix(env.Attrs["Key.Arn"], "arn:aws:kms:") {
		t.Fatalf("function environment = %q, want %q", body, want)
	}
	// The key and its alias exist on the KMS emulator.
	out, err := localaws.KMS(os.Getenv(localaws.EnvKMSEndpoint)).DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String(env.Refs["KeyAlias"])})
	if err != nil || aws.ToString(out.KeyMetadata.Arn) != env.Attrs["Key.Arn"] {
		t.Fatalf("DescribeKey(%s) = %+v, %v", env.Refs["KeyAlias"], out, err)
	}
}

func TestInstancesScaleToTheBound(t *testing.T) {
	r := mustStart(t, "testdata/template.yaml", nil, 3)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		pids = map[int]bool{}
	)
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := call(t, "GET", r.URL()+"/pid", "", nil)
			var p struct{ PID int }
			if resp.StatusCode != 200 || json.Unmarshal(body, &p) != nil {
				t.Errorf("GET /pid = %d %s", resp.StatusCode, body)
				return
			}
			mu.Lock()
			pids[p.PID] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(pids) < 2 || len(pids) > 3 {
		t.Fatalf("12 concurrent requests ran on %d instances, want 2 or 3 (bound 3)", len(pids))
	}
}

// e2eBodies are the request bodies TestEndToEnd sends, in one place.
var e2eBodies = struct{ user, account []byte }{
	user:    []byte(`{"email":"e2e@example.com","name":"E2E"}`),
	account: []byte(`{"currency":"EUR"}`),
}

// TestEndToEnd runs the real template: an HTTP request through the runner reaches the commands
// Lambda, which appends an event to DynamoDB Local.
func TestEndToEnd(t *testing.T) {
	root, _ := awstest.RepoRoot()
	r := mustStart(t, filepath.Join(root, "template.yaml"), nil, 2)
	// The saga's deadline wiring resolves to the local stack: its function's ARN (what the saga
	// sees as its invoked ARN, and targets its schedules at), the role's IAM ARN, the schedule
	// group and dead-letter queue on moto's server.
	env, stack := r.Env(), r.Env().Refs["AWS::StackName"]
	if got, want := env.Attrs["SagaFunction.Arn"], "arn:aws:lambda:"+localaws.Region+":"+localaws.Account+":function:"+stack+"-saga"; got != want {
		t.Errorf("SagaFunction.Arn = %q, want %q", got, want)
	}
	if got, want := env.Attrs["SchedulerRole.Arn"], "arn:aws:iam::"+localaws.Account+":role/"+stack+"-SchedulerRole"; got != want {
		t.Errorf("SchedulerRole.Arn = %q, want %q", got, want)
	}
	if _, err := localaws.Scheduler(awstest.KMSEndpoint(t)).GetScheduleGroup(context.Background(), &scheduler.GetScheduleGroupInput{Name: aws.String(env.Refs["FulfilmentSchedules"])}); err != nil {
		t.Errorf("schedule group %q: %v", env.Refs["FulfilmentSchedules"], err)
	}
	if dlq := env.Attrs["DeadlineDeadLetterQueue.Arn"]; !strings.HasPrefix(dlq, "arn:aws:sqs:") || !strings.HasSuffix(dlq, ":"+stack+"-DeadlineDeadLetterQueue") {
		t.Errorf("DeadlineDeadLetterQueue.Arn = %q", dlq)
	}
	user := userOf(t, r, "e2e")
	// Every route needs a caller: a user's token on the user routes, a SigV4 signature on the
	// operator routes; a token is no signature.
	if resp, body := call(t, "POST", r.URL()+"/accounts", "application/json", e2eBodies.account); resp.StatusCode != 401 {
		t.Errorf("POST /accounts without a token = %d %s, want 401", resp.StatusCode, body)
	}
	if resp, body := callAs(t, user, "GET", r.URL()+"/users", "", nil); resp.StatusCode != 403 {
		t.Errorf("GET /users with a user's token = %d %s, want 403", resp.StatusCode, body)
	}
	if resp, body := callAs(t, operator, "GET", r.URL()+"/users?status=active", "", nil); resp.StatusCode != 200 {
		t.Errorf("GET /users?status=active signed by the operator = %d %s, want 200", resp.StatusCode, body)
	}
	resp, body := callAs(t, user, "POST", r.URL()+"/users", "application/json", e2eBodies.user, "X-Correlation-Id", "e2e-1")
	if resp.StatusCode != 201 || resp.Header.Get("X-Correlation-Id") != "e2e-1" {
		t.Fatalf("POST /users = %d %s", resp.StatusCode, body)
	}
	var created struct{ ID string }
	json.Unmarshal(body, &created)
	reg, _ := command.Registry()
	st, err := store.New(awstest.DynamoDB(t), store.Config{EventsTable: r.Env().Refs["EventsTable"], SnapshotsTable: r.Env().Refs["SnapshotsTable"], Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	events, err := st.Load(context.Background(), "user-"+created.ID, store.Span{})
	if err != nil || len(events) != 1 || events[0].CorrelationID != "e2e-1" {
		t.Fatalf("stored events %+v, %v", events, err)
	}
	// The projector, on the events table's stream, keeps the account's read model.
	resp, body = callAs(t, user, "POST", r.URL()+"/accounts", "application/json", e2eBodies.account)
	if resp.StatusCode != 201 {
		t.Fatalf("POST /accounts = %d %s", resp.StatusCode, body)
	}
	json.Unmarshal(body, &created)
	for _, amount := range []string{"100", "250", "5"} {
		if resp, body := callAs(t, user, "POST", r.URL()+"/accounts/"+created.ID+"/deposits", "application/json", []byte(`{"amount":`+amount+`}`)); resp.StatusCode != 200 {
			t.Fatalf("deposit = %d %s", resp.StatusCode, body)
		}
	}
	// Read your writes: the last deposit's version, asked for, is waited for.
	resp, body = callAs(t, user, "POST", r.URL()+"/accounts/"+created.ID+"/deposits", "application/json", []byte(`{"amount":1}`))
	if resp.StatusCode != 200 {
		t.Fatalf("deposit = %d %s", resp.StatusCode, body)
	}
	var dep struct{ Version int64 }
	json.Unmarshal(body, &dep)
	resp, body = callAs(t, user, "GET", fmt.Sprintf("%s/accounts/%s?minVersion=%d", r.URL(), created.ID, dep.Version), "", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"balance":356`) {
		t.Fatalf("GET /accounts/%s?minVersion=%d = %d %s", created.ID, dep.Version, resp.StatusCode, body)
	}
	client := awstest.DynamoDB(t)
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(r.Env().Refs["ReadModelsTable"]),
			Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "account-" + created.ID}}})
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := out.Item["balance"].(*ddbtypes.AttributeValueMemberN); ok && v.Value == "356" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read model of the account after 15 s: %v", out.Item)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestProjectorLambdaUnderInjectedDeliveries invokes the real projector Lambda, through the
// runner's Runtime API, with batches that repeat, reorder and replay the event store's records
// (as Lambda's retries, bisection and replays do), while its own stream trigger delivers them
// too: every read model ends equal to the fold of its stream.
func TestProjectorLambdaUnderInjectedDeliveries(t *testing.T) {
	root, _ := awstest.RepoRoot()
	r := mustStart(t, filepath.Join(root, "template.yaml"), nil, 2)
	reg, _ := command.Registry()
	st, err := store.New(awstest.DynamoDB(t), store.Config{EventsTable: r.Env().Refs["EventsTable"], SnapshotsTable: r.Env().Refs["SnapshotsTable"], Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ids := store.NewIDs(nil)
	rng := rand.New(rand.NewPCG(1, 2))
	var records []events.DynamoDBEventRecord
	want := map[string]int64{}
	for a := 0; a < 3; a++ {
		acct := ids.New()
		stream := "account-" + acct
		history := []domain.Event{domain.AccountOpened{AccountID: acct, OwnerID: "o", Currency: "EUR"}}
		for i := 0; i < 8; i++ {
			history = append(history, domain.MoneyDeposited{AccountID: acct, Amount: int64(i + 1)})
			want[stream] += int64(i + 1)
		}
		for i, e := range history {
			data, _ := json.Marshal(e)
			res, err := st.Append(ctx, stream, int64(i), store.Event{ID: ids.New(), Type: e.EventType(), Data: data})
			if err != nil {
				t.Fatal(err)
			}
			rec, err := ddbstream.Record(res.Events[0], fmt.Sprintf("%021d", len(records)+1))
			if err != nil {
				t.Fatal(err)
			}
			records = append(records, rec)
		}
	}
	for round := 0; round < 5; round++ {
		batch := append([]events.DynamoDBEventRecord(nil), records...)
		batch = append(batch, records[rng.IntN(len(records))], records[rng.IntN(len(records))]) // duplicates
		rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		payload, _ := json.Marshal(events.DynamoDBEvent{Records: batch[:1+rng.IntN(len(batch))]})
		out, err := r.Invoke(ctx, "ProjectorFunction", payload)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		var resp events.DynamoDBEventResponse
		if err := json.Unmarshal(out, &resp); err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("round %d: response %s (%v)", round, out, err)
		}
	}
	client := awstest.DynamoDB(t)
	deadline := time.Now().Add(15 * time.Second)
	for stream, balance := range want {
		for {
			out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(r.Env().Refs["ReadModelsTable"]), ConsistentRead: aws.Bool(true),
				Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: stream}}})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := out.Item["balance"].(*ddbtypes.AttributeValueMemberN)
			v, _ := out.Item["v"].(*ddbtypes.AttributeValueMemberN)
			if b != nil && v != nil && v.Value == "9" {
				if b.Value != strconv.FormatInt(balance, 10) {
					t.Fatalf("%s: balance %s at version 9, want %d", stream, b.Value, balance)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: read model %v after 15 s", stream, out.Item)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
