// Package awscall records the AWS calls a process makes as IAM authorizes them: per call, the IAM
// action (dynamodb:PutItem, kms:Decrypt, ...), the ARN of the resource it acts on, and the IAM
// condition keys the request carries; a call that implies a second authorization (a schedule
// handed a role implies iam:PassRole on that role) records that too. The local runner turns it
// on for the functions it runs (EnvLog), so that a test can hold the template's policies to what
// the code does (internal/iam). It records no payload, key or personal data: the values of
// encryption context keys (a subject ID is a user ID) are withheld, only their presence is kept.
//
// In AWS the variables are never set and nothing is recorded.
package awscall

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/smithy-go/middleware"
)

// Environment variables that turn recording on. Only the local runner sets them.
const (
	// EnvLog names the file (JSON lines, appended) the process's calls are recorded in.
	EnvLog = "EVENTFOLD_AWS_CALL_LOG"
	// EnvAccount is the account ID the recorded ARNs name (the local stack's), required with
	// EnvLog: a request names its table or queue, not the account it is in.
	EnvAccount = "EVENTFOLD_AWS_CALL_ACCOUNT"
)

// Call is one authorization a request needs.
type Call struct {
	// Action is the IAM action, "service:Operation".
	Action string `json:"action"`
	// Resource is the ARN the action acts on; "" when the recorder does not know the operation's
	// resource (a check must treat that as a failure, not a pass).
	Resource string `json:"resource"`
	// Conditions are the condition keys the request carries, with their values.
	Conditions map[string]string `json:"conditions,omitempty"`
	// Withheld are condition keys the request carries whose values are not recorded (they may
	// be personal data): a policy may test their presence, not their value.
	Withheld []string `json:"withheld,omitempty"`
	// Sets are the multivalued condition keys with their values (kms:EncryptionContextKeys: the
	// names of the encryption context's keys, never their values).
	Sets map[string][]string `json:"sets,omitempty"`
	// By is "" for a call of the code, else the service that made it under the principal's
	// role, as the local runner emulates it ("lambda" sending to an OnFailure destination,
	// "scheduler" invoking a schedule's target).
	By string `json:"by,omitempty"`
}

// Log is a file of recorded calls, one JSON object a line, appended. Several processes may
// append to one file: each line is written with one write(2) on a file opened O_APPEND. It is
// safe for concurrent use.
type Log struct {
	mu sync.Mutex
	f  *os.File
}

// Open opens (creating) the log at path for appending.
func Open(path string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("awscall: open the call log: %w", err)
	}
	return &Log{f: f}, nil
}

// Write appends the calls.
func (l *Log) Write(calls ...Call) error {
	var b []byte
	for _, c := range calls {
		line, err := json.Marshal(c)
		if err != nil {
			return err
		}
		b = append(append(b, line...), '\n')
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.Write(b); err != nil {
		return fmt.Errorf("awscall: write the call log: %w", err)
	}
	return nil
}

// Close closes the file.
func (l *Log) Close() error { return l.f.Close() }

// Read returns the calls recorded in the log at path; none when it does not exist.
func Read(path string) ([]Call, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var calls []Call
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		var c Call
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			return nil, fmt.Errorf("awscall: %s line %d: %w", path, n, err)
		}
		calls = append(calls, c)
	}
	return calls, sc.Err()
}

// Recorder records every call of the clients it is added to (Middleware) in its log.
type Recorder struct {
	log     *Log
	account string
}

// FromEnv returns the recorder the environment asks for through getenv (os.Getenv): nil when
// EnvLog is not set, which is the case in AWS; an error when EnvLog is set without EnvAccount or
// its file cannot be opened.
func FromEnv(getenv func(string) string) (*Recorder, error) {
	path := getenv(EnvLog)
	if path == "" {
		return nil, nil
	}
	account := getenv(EnvAccount)
	if account == "" {
		return nil, errors.New("awscall: " + EnvLog + " is set without " + EnvAccount)
	}
	l, err := Open(path)
	if err != nil {
		return nil, err
	}
	return &Recorder{log: l, account: account}, nil
}

// Middleware is the API option (aws.Config.APIOptions) that records each operation once, after
// it ended, whether it succeeded or not (IAM authorizes a request before it can fail
// otherwise); retries are not recorded again. A call that cannot be recorded fails with the
// log's error: a silent gap would let the check pass on less than the code did.
func (r *Recorder) Middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("eventfold.RecordAWSCall",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleInitialize(ctx, in)
			calls := Calls(awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx),
				awsmiddleware.GetRegion(ctx), r.account, in.Parameters, out.Result)
			if werr := r.log.Write(calls...); werr != nil {
				err = errors.Join(err, werr)
			}
			return out, md, err
		}), middleware.After)
}

// prefixes are the IAM service prefixes of the SDK's service IDs where lower-casing the ID
// without spaces does not give them.
var prefixes = map[string]string{
	"Scheduler": "scheduler",
}

// Prefix is the IAM service prefix of an SDK service ID ("DynamoDB" -> "dynamodb", "Secrets
// Manager" -> "secretsmanager").
func Prefix(serviceID string) string {
	if p, ok := prefixes[serviceID]; ok {
		return p
	}
	return strings.ToLower(strings.ReplaceAll(serviceID, " ", ""))
}

// Calls returns the authorizations an operation of a service (SDK service ID and operation name)
// needs, in region and account, given its input and its output (nil when it failed).
// DynamoDB's TransactWriteItems needs one per item (dynamodb:PutItem, UpdateItem, DeleteItem,
// ConditionCheckItem on the item's table: IAM has no TransactWriteItems action), a Query or Scan
// of an index acts on the index's ARN, a KMS call acts on the key the response names (a request
// may name it by alias; IAM authorizes the key), and CreateSchedule or UpdateSchedule with a
// target role needs iam:PassRole on that role.
func Calls(serviceID, operation, region, account string, in, out any) []Call {
	prefix := Prefix(serviceID)
	c := Call{Action: prefix + ":" + operation}
	arn := func(service, resource string) string {
		return "arn:aws:" + service + ":" + region + ":" + account + ":" + resource
	}
	table := func(name *string, index *string) string {
		n := deref(name)
		if n == "" {
			return ""
		}
		if !strings.HasPrefix(n, "arn:") {
			n = arn("dynamodb", "table/"+n)
		}
		if i := deref(index); i != "" {
			n += "/index/" + i
		}
		return n
	}
	switch prefix {
	case "dynamodb":
		switch in := in.(type) {
		case *dynamodb.TransactWriteItemsInput:
			var calls []Call
			for _, it := range in.TransactItems {
				switch {
				case it.Put != nil:
					calls = append(calls, Call{Action: "dynamodb:PutItem", Resource: table(it.Put.TableName, nil)})
				case it.Update != nil:
					calls = append(calls, Call{Action: "dynamodb:UpdateItem", Resource: table(it.Update.TableName, nil)})
				case it.Delete != nil:
					calls = append(calls, Call{Action: "dynamodb:DeleteItem", Resource: table(it.Delete.TableName, nil)})
				case it.ConditionCheck != nil:
					calls = append(calls, Call{Action: "dynamodb:ConditionCheckItem", Resource: table(it.ConditionCheck.TableName, nil)})
				}
			}
			return calls
		case *dynamodb.TransactGetItemsInput:
			var calls []Call
			for _, it := range in.TransactItems {
				if it.Get != nil {
					calls = append(calls, Call{Action: "dynamodb:GetItem", Resource: table(it.Get.TableName, nil)})
				}
			}
			return calls
		case *dynamodb.BatchWriteItemInput:
			return batch(c.Action, in.RequestItems, table)
		case *dynamodb.BatchGetItemInput:
			return batch(c.Action, in.RequestItems, table)
		case *dynamodb.QueryInput:
			c.Resource = table(in.TableName, in.IndexName)
		case *dynamodb.ScanInput:
			c.Resource = table(in.TableName, in.IndexName)
		default:
			c.Resource = table(stringField(in, "TableName"), nil)
		}
	case "kms":
		key := deref(stringField(out, "KeyId"))
		if key == "" {
			key = deref(stringField(in, "KeyId"))
		}
		switch {
		case key == "" || strings.HasPrefix(key, "arn:"):
		case strings.HasPrefix(key, "alias/"):
			key = arn("kms", key)
		default:
			key = arn("kms", "key/"+key)
		}
		c.Resource = key
		if ec, ok := field(in, "EncryptionContext").(map[string]string); ok && len(ec) > 0 {
			var names []string
			for k := range ec {
				names = append(names, k)
				c.Withheld = append(c.Withheld, "kms:EncryptionContext:"+k)
			}
			sort.Strings(c.Withheld)
			sort.Strings(names)
			c.Sets = map[string][]string{"kms:EncryptionContextKeys": names}
		}
	case "scheduler":
		group := deref(stringField(in, "GroupName"))
		if group == "" {
			group = "default"
		}
		if name := deref(stringField(in, "Name")); name != "" {
			c.Resource = arn("scheduler", "schedule/"+group+"/"+name)
		}
		var role string
		switch in := in.(type) {
		case *scheduler.CreateScheduleInput:
			if in.Target != nil {
				role = deref(in.Target.RoleArn)
			}
		case *scheduler.UpdateScheduleInput:
			if in.Target != nil {
				role = deref(in.Target.RoleArn)
			}
		}
		if role != "" {
			return []Call{c, {Action: "iam:PassRole", Resource: role,
				Conditions: map[string]string{"iam:PassedToService": "scheduler.amazonaws.com"}}}
		}
	case "sqs":
		// A queue URL is https://<endpoint>/<account>/<name>.
		if u := deref(stringField(in, "QueueUrl")); u != "" {
			parts := strings.Split(strings.TrimRight(u, "/"), "/")
			if len(parts) >= 2 {
				c.Resource = "arn:aws:sqs:" + region + ":" + parts[len(parts)-2] + ":" + parts[len(parts)-1]
			}
		}
	case "secretsmanager":
		id := deref(stringField(out, "ARN"))
		if id == "" {
			id = deref(stringField(in, "SecretId"))
		}
		if id != "" && !strings.HasPrefix(id, "arn:") {
			id = arn("secretsmanager", "secret:"+id)
		}
		c.Resource = id
	}
	return []Call{c}
}

// batch is a BatchWriteItem's or BatchGetItem's authorization: the action on each table.
func batch[V any](action string, items map[string]V, table func(*string, *string) string) []Call {
	names := make([]string, 0, len(items))
	for n := range items {
		names = append(names, n)
	}
	sort.Strings(names)
	calls := make([]Call, 0, len(names))
	for _, n := range names {
		calls = append(calls, Call{Action: action, Resource: table(&n, nil)})
	}
	return calls
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// field is the exported field name of the struct v points to, or nil.
func field(v any, name string) any {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return nil
	}
	f := rv.Elem().FieldByName(name)
	if !f.IsValid() || !f.CanInterface() {
		return nil
	}
	return f.Interface()
}

// stringField is field's value when it is a *string (or a string).
func stringField(v any, name string) *string {
	switch f := field(v, name).(type) {
	case *string:
		return f
	case string:
		return &f
	}
	return nil
}
