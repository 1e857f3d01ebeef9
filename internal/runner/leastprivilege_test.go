package runner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/awscall"
	"github.com/eventfold/eventfold/internal/iam"
	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/runner"
	"github.com/eventfold/eventfold/internal/template"
)

// transformed runs the SAM transform on the template at path, offline, as `make lint` does
// (tools/samtransform.py with the pinned translator), and returns the CloudFormation template
// CloudFormation would deploy: the functions' roles with their policies expanded.
func transformed(t *testing.T, root, path string) []byte {
	t.Helper()
	py := filepath.Join(root, "localstack", ".venv", "bin", "python")
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("%v: install the pinned tools with localstack/stack.sh install (make lint does)", err)
	}
	out := filepath.Join(t.TempDir(), "transformed.json")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "tools/samtransform.py", "--output", out, path)
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("samtransform: %v\n%s", err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// platform are the permissions of template.yaml's roles that AWS itself uses, under the role,
// and no code path of ours: the check accepts them for the reason given, and fails when one of
// them is no longer in the template (so the list cannot outlive what it excuses).
func platform(env template.Env) []iam.Platform {
	return []iam.Platform{
		{ManagedPolicy: "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
			Reason: "Lambda writes the function's stdout to CloudWatch Logs under its role (SAM adds it to every function's role); the code calls no Logs API."},
		{ManagedPolicy: "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
			Reason: "Tracing: Active: Lambda sends each invocation's trace segments to X-Ray under the role; the code has no X-Ray SDK."},
		{ManagedPolicy: "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole",
			Reason: "the DynamoDB event source mapping reads the event store's stream (DescribeStream, GetShardIterator, GetRecords, ListStreams) under the function's role."},
		{Role: "ProjectorFunctionRole", Action: "sqs:SendMessage", Resource: env.Attrs["ProjectorStreamFailures.Arn"],
			Reason: "Lambda sends a stream batch it gave up on to the mapping's OnFailure destination under the function's role (the runner records it, by lambda, when it happens; no scenario here exhausts 10 retries)."},
		{Role: "SagaFunctionRole", Action: "sqs:SendMessage", Resource: env.Attrs["SagaStreamFailures.Arn"],
			Reason: "as the projector's: the saga's stream trigger's OnFailure destination, sent to by Lambda."},
		{Role: "SagaFunctionRole", Action: "sqs:SendMessage", Resource: env.Attrs["DeadlineDeadLetterQueue.Arn"],
			Reason: "Lambda sends an asynchronous invocation (a deadline) the saga failed on after Lambda's retries to the function's DeadLetterQueue under its role (SAM's statement)."},
		{Role: "SchedulerRole", Action: "sqs:SendMessage", Resource: env.Attrs["DeadlineDeadLetterQueue.Arn"],
			Reason: "EventBridge Scheduler sends a deadline it could not hand to Lambda to the schedule's DLQ as this role; the runner records it (by scheduler) when it happens, which TestSchedulesFire drives on a test template, not here."},
	}
}

// undriven are permissions a code path of ours needs that the scenario cannot reach through the
// HTTP API and the streams in a test's time, each with the path that needs it. Keep it short: an
// entry here is a permission the test does not prove.
func undriven(env template.Env) []iam.Platform {
	events := env.Attrs["EventsTable.Arn"]
	const why = "not driven: store.DynamoDB's transaction (claims, several events or streams) checks that the expected version exists " +
		"when this instance has not read the stream to that version (a state from a snapshot with no tail, or more streams than it keeps heads of)"
	return []iam.Platform{
		{Role: "CommandsFunctionRole", Action: "dynamodb:ConditionCheckItem", Resource: events, Reason: why},
		{Role: "SagaFunctionRole", Action: "dynamodb:ConditionCheckItem", Resource: events, Reason: why},
	}
}

// TestLeastPrivilege runs template.yaml with every AWS call recorded (the functions' SDK calls,
// and what the runner does as Lambda and EventBridge Scheduler under the template's roles),
// drives every code path that calls AWS, and holds the roles of the transformed template to
// what was recorded: a call no statement of its role allows fails the test, and so does a
// permission (a statement's action on one of its resources) that nothing used, unless AWS itself
// uses it (platform, each with its reason).
func TestLeastPrivilege(t *testing.T) {
	root, err := awstest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tmplPath := filepath.Join(root, "template.yaml")
	doc := transformed(t, root, "template.yaml")
	calls := t.TempDir()
	r := startWith(t, runner.Config{
		Template: tmplPath, MaxInstances: 2, CallLog: calls, RetryDelay: 50 * time.Millisecond,
		Params: map[string]string{"FulfilmentTimeout": "3s"},
	})
	drive(t, r)

	env := r.Env()
	env.Attrs = maps.Clone(env.Attrs)
	// DynamoDB Local gives its tables ARNs in a region of its own ("ddblocal"); the recorder and
	// AWS name them in the stack's region.
	for _, id := range awstest.MustTemplate(t).OfType("AWS::DynamoDB::Table") {
		env.Attrs[id+".Arn"] = fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", localaws.Region, localaws.Account, env.Refs[id])
	}
	roles, functions, err := iam.Roles(doc, env)
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string][]awscall.Call{}
	files, err := filepath.Glob(filepath.Join(calls, "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		cs, err := awscall.Read(f)
		if err != nil {
			t.Fatal(err)
		}
		principal := strings.TrimSuffix(filepath.Base(f), ".jsonl")
		if role, ok := functions[principal]; ok {
			principal = role
		}
		recorded[principal] = append(recorded[principal], cs...)
	}
	for fn, role := range functions {
		if len(recorded[role]) == 0 {
			t.Errorf("no call of %s (role %s) was recorded", fn, role)
		}
	}
	if rep := iam.Check(roles, recorded, append(platform(env), undriven(env)...)); rep.Failed() {
		t.Errorf("template.yaml's roles do not match what the code does:\n%s", rep)
	}
}

// drive sends every request that makes the functions call AWS: users registered (once
// replayed by Idempotency-Key), their email changed, one erased; accounts opened, paid into and
// from; stock added; orders confirmed and cancelled (out of stock, insufficient funds, and by
// their deadline); every query, with minVersion and asOf; the audit trail; a poison event parked.
func drive(t *testing.T, r *runner.Runner) {
	t.Helper()
	s := newShop(t, r)
	leaver := userOf(t, r, "leaver")
	do := func(who caller, method, path, body string, want int, headers ...string) []byte {
		t.Helper()
		ct := ""
		if body != "" {
			ct = "application/json"
		}
		resp, out := callAs(t, who, method, r.URL()+path, ct, []byte(body), headers...)
		if resp.StatusCode != want {
			t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, out, want)
		}
		return out
	}
	key := "lp-" + fmt.Sprint(time.Now().UnixNano())
	first := do(s.user, "POST", "/users", `{"email":"shopper@example.com","name":"Sho Pper"}`, 201, "Idempotency-Key", key)
	if again := do(s.user, "POST", "/users", `{"email":"shopper@example.com","name":"Sho Pper"}`, 201, "Idempotency-Key", key); !bytes.Equal(first, again) {
		t.Errorf("the replay answered %s, the first %s", again, first)
	}
	id := jsonField(t, first, "id")
	do(s.user, "PUT", "/users/"+id+"/email", `{"email":"shopper2@example.com"}`, 200)
	gone := jsonField(t, do(leaver, "POST", "/users", `{"email":"leaver@example.com","name":"Lea Ver"}`, 201), "id")
	do(leaver, "POST", "/users/"+gone+"/deactivate", "", 200)

	// A key taken from the keys table and opened with KMS by an instance that did not make it:
	// two changes at once keep one instance busy while the other, started cold, serves the
	// second (the runner starts instances on demand), until a Decrypt was recorded.
	for i := 0; !recordedAction(t, r, "CommandsFunction", "kms:Decrypt"); i++ {
		if i == 10 {
			t.Fatal("no commands instance ever opened a key another made")
		}
		var wg sync.WaitGroup
		for _, u := range []struct {
			who caller
			id  string
		}{{s.user, id}, {leaver, gone}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				callAs(t, u.who, "PUT", r.URL()+"/users/"+u.id+"/email", "application/json", []byte(fmt.Sprintf(`{"email":"%s-%d@example.com"}`, u.id, i)))
			}()
		}
		wg.Wait()
	}
	// If-Match: * on what does not exist is 412, and frees its Idempotency-Key (a delete).
	do(s.user, "POST", "/accounts/nobody/deposits", `{"amount":1}`, 412, "If-Match", "*", "Idempotency-Key", key+"-412")

	// Long streams: the commands function snapshots an account past 100 events, and the saga
	// an inventory item whose 100th event is its reservation.
	sku := fmt.Sprintf("LP-%d", time.Now().UnixNano())
	for range 99 {
		s.stock(sku, 1)
	}
	rich, poor := s.account(10_000), s.account(50)
	for range 100 {
		s.post("/accounts/"+rich+"/deposits", `{"amount":1}`, 200)
	}
	s.post("/accounts/"+rich+"/withdrawals", `{"amount":100}`, 200)
	confirmed := s.order(rich, line(sku, 1, 1000))
	tooMany := s.order(rich, line(sku, 1000, 1))
	broke := s.order(poor, line(sku, 1, 1000))
	stuck := s.account(10_000)
	poison(t, r, "account-"+stuck)
	waiting := s.order(stuck, line(sku, 1, 1000))
	for id, want := range map[string]string{confirmed: "confirmed", tooMany: "cancelled", broke: "cancelled", waiting: "cancelled"} {
		if o := s.await(id, 30*time.Second); o["status"] != want {
			t.Errorf("order %s: %v, want %s", id, o, want)
		}
	}

	now := url.QueryEscape(time.Now().UTC().Format(time.RFC3339))
	for _, path := range []string{
		"/users/" + id, "/users/" + id + "?minVersion=2", "/users/" + id + "?asOf=" + now,
		"/accounts/" + rich, "/accounts/" + rich + "?minVersion=102", "/accounts/" + rich + "?asOf=" + now,
		"/inventory/" + sku, "/orders/" + confirmed, "/orders/" + confirmed + "?asOf=" + now,
		"/orders/" + confirmed + "/fulfilment", "/customers/" + id + "/orders",
	} {
		do(s.user, "GET", path, "", 200)
	}
	for _, path := range []string{
		"/users?status=active", "/ops/users/" + id, "/ops/accounts/" + rich, "/ops/orders/" + confirmed,
		"/ops/orders/" + confirmed + "/fulfilment", "/ops/customers/" + id + "/orders",
		"/streams/account-" + rich + "/events",
	} {
		do(operator, "GET", path, "", 200)
	}
	do(operator, "DELETE", "/users/"+gone, "", 200)
	do(operator, "GET", "/ops/users/"+gone+"?minVersion=3", "", 200)
}

// jsonField is the string field of a JSON object.
func jsonField(t *testing.T, b []byte, field string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	v, ok := m[field].(string)
	if !ok {
		t.Fatalf("%s has no string %s", b, field)
	}
	return v
}

// recordedAction reports whether the runner recorded action of the function (see
// runner.Config.CallLog; the test's log directory is the runner's).
func recordedAction(t *testing.T, r *runner.Runner, function, action string) bool {
	t.Helper()
	calls, err := awscall.Read(filepath.Join(r.CallLog(), function+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		if c.Action == action {
			return true
		}
	}
	return false
}
