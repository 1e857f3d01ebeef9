package main

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/smithy-go"

	"github.com/eventfold/eventfold/internal/auth"
	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/consumer"
	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/projection"
	"github.com/eventfold/eventfold/internal/store"
	"github.com/eventfold/eventfold/internal/template"
)

// motoStackTypes are the resource types of template.yaml that moto's CloudFormation holds (it
// skips the others with a warning: the functions, which are SAM's, the schedule group, the log
// groups, Cognito), with the properties moto needs to create one: it names every resource as
// CloudFormation does, "<stack>-<LogicalID>-<12 random upper-case letters and digits>", and its
// KMS keys and aliases and SQS queues are real on its server.
var motoStackTypes = map[string]func(props map[string]any) map[string]any{
	template.TableType: func(p map[string]any) map[string]any {
		return map[string]any{"KeySchema": p["KeySchema"], "AttributeDefinitions": p["AttributeDefinitions"], "BillingMode": "PAY_PER_REQUEST"}
	},
	// The key policy as a JSON text: moto keeps an object as it is and then fails (500) every
	// DescribeKey of the key.
	"AWS::KMS::Key": func(map[string]any) map[string]any {
		return map[string]any{"Description": "eventfold test", "KeyPolicy": map[string]any{"Fn::Sub": `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", ` +
			`"Principal": {"AWS": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}, "Action": "kms:*", "Resource": "*"}]}`}}
	},
	"AWS::KMS::Alias":  func(p map[string]any) map[string]any { return p },
	localaws.QueueType: func(map[string]any) map[string]any { return map[string]any{} },
	"AWS::IAM::Role": func(map[string]any) map[string]any {
		return map[string]any{"AssumeRolePolicyDocument": map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
			"Effect": "Allow", "Principal": map[string]any{"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole"}}}}
	},
}

// createMotoStack creates on moto's CloudFormation the stack name of template.yaml's resources
// of logical IDs ids (all that moto holds when ids is empty), and returns the physical ID of each
// resource, by logical ID, as ListStackResources gives them.
func createMotoStack(t *testing.T, name string, ids ...string) map[string]string {
	t.Helper()
	ctx := context.Background()
	tmpl := awstest.MustTemplate(t)
	resources := map[string]any{}
	for id, r := range tmpl.Resources {
		props, ok := motoStackTypes[r.Type]
		if ok && (len(ids) == 0 || slices.Contains(ids, id)) {
			resources[id] = map[string]any{"Type": r.Type, "Properties": props(r.Properties)}
		}
	}
	body, err := json.Marshal(map[string]any{"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources})
	if err != nil {
		t.Fatal(err)
	}
	cfn := localaws.CloudFormation(awstest.KMSEndpoint(t))
	if _, err := cfn.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(name), TemplateBody: aws.String(string(body)),
		Capabilities: []cfntypes.Capability{cfntypes.CapabilityCapabilityIam}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cfn.DeleteStack(context.Background(), &cloudformation.DeleteStackInput{StackName: aws.String(name)})
	})
	out, err := cfn.ListStackResources(ctx, &cloudformation.ListStackResourcesInput{StackName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	physical := map[string]string{}
	for _, r := range out.StackResourceSummaries {
		physical[aws.ToString(r.LogicalResourceId)] = aws.ToString(r.PhysicalResourceId)
	}
	if len(physical) != len(resources) {
		t.Fatalf("moto's stack holds %v, want the %d resources %v", physical, len(resources), resources)
	}
	return physical
}

// newDeployedStack is a cliStack whose resources are named as CloudFormation names a deployed
// stack's: a stack on moto's CloudFormation (see createMotoStack), and on DynamoDB Local the
// template's tables under the names that stack gives them. Its flags name only the stack, the
// local endpoints and the CloudFormation endpoint: no table, key or queue.
func newDeployedStack(t *testing.T) cliStack {
	t.Helper()
	ctx := context.Background()
	name := "dp" + strconv.FormatInt(time.Now().UnixNano(), 36)
	physical := createMotoStack(t, name)
	tmpl := awstest.MustTemplate(t)
	env, err := tmpl.LocalEnv(name, localaws.Region, localaws.Account)
	if err != nil {
		t.Fatal(err)
	}
	suffixed := regexp.MustCompile(`^` + name + `-[A-Za-z]+-[0-9A-Z]{12}$`)
	for _, id := range tmpl.OfType(template.TableType) {
		if !suffixed.MatchString(physical[id]) {
			t.Fatalf("moto named table %s %q, not as CloudFormation does (<stack>-<LogicalID>-<suffix>)", id, physical[id])
		}
		env.Refs[id] = physical[id]
	}
	tables, err := tmpl.Tables(env)
	if err != nil {
		t.Fatal(err)
	}
	client := awstest.DynamoDB(t)
	if _, err := localaws.CreateTables(ctx, client, tables); err != nil {
		t.Fatal(err)
	}
	awstest.MustKeys(t, env) // finds the stack's key through its alias, and names it in env
	if env.Refs["DataKeyAlias"] != physical["DataKeyAlias"] {
		t.Fatalf("data key alias %q, the stack's is %q", env.Refs["DataKeyAlias"], physical["DataKeyAlias"])
	}
	reg, _ := command.Registry()
	raw, err := store.New(client, store.Config{EventsTable: env.Refs["EventsTable"], SnapshotsTable: env.Refs["SnapshotsTable"],
		ClaimsTable: env.Refs["ClaimsTable"], Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	return cliStack{name: name, env: env, client: client, raw: raw, common: []string{"-template", "../../template.yaml", "-stack", name,
		"-endpoint", awstest.DynamoDBEndpoint(t), "-kms-endpoint", awstest.KMSEndpoint(t), "-cloudformation-endpoint", awstest.KMSEndpoint(t)}}
}

// commonWithout returns the flags of s but flag (and its value): the commands that read no keys
// take no -kms-endpoint.
func commonWithout(s cliStack, flag string) []string {
	var out []string
	for i := 0; i < len(s.common); i += 2 {
		if s.common[i] != flag {
			out = append(out, s.common[i], s.common[i+1])
		}
	}
	return out
}

// TestCommandsAgainstADeployedStack: with -stack naming a stack that CloudFormation (moto's)
// holds and no table, key or queue flag, erasure audit, projections rebuild, parked list, sagas
// list and sagas repair (which builds the saga from the template's SagaFunction environment) use
// the tables, the key alias and the queues as the stack names them, suffixes and all: they find
// the data written there.
func TestCommandsAgainstADeployedStack(t *testing.T) {
	ctx := context.Background()
	s := newDeployedStack(t)
	readModels := s.env.Refs["ReadModelsTable"]
	noKeys := commonWithout(s, "-kms-endpoint")

	// projections rebuild: three accounts in the events table, two of them in the read models.
	ids := store.NewIDs(nil)
	proj := projection.New(s.client, readModels, s.raw)
	for i := range 3 {
		acct := ids.New()
		data, _ := json.Marshal(domain.AccountOpened{AccountID: acct, OwnerID: "o", Currency: "EUR"})
		res, err := s.raw.Append(ctx, "account-"+acct, 0, store.Event{ID: ids.New(), Type: domain.TypeAccountOpened, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			if err := proj.Apply(ctx, res.Events[0]); err != nil {
				t.Fatal(err)
			}
		}
	}
	out := eventfold(t, append([]string{"projections", "rebuild"}, s.common...)...)
	if !strings.Contains(out, "rebuilt "+readModels+"-rebuild-") || !strings.Contains(out, "verify against "+readModels+": 2 equal, 1 live behind, 0 live ahead") {
		t.Fatalf("projections rebuild against the stack:\n%s", out)
	}

	// erasure audit: a user registered under the stack's key, then erased.
	keys := crypto.NewKeyring(awstest.MustKeys(t, s.env), s.client, crypto.KeyringConfig{Table: s.env.Refs["KeysTable"], KeyID: s.env.Refs["DataKeyAlias"],
		MaxKeys: 10, TTL: time.Minute})
	svc, err := command.New(command.Config{Store: crypto.NewSealingStore(s.raw, keys, domain.PersonalFields),
		EmailKey: []byte("0123456789abcdef0123456789abcdef"), Eraser: keys})
	if err != nil {
		t.Fatal(err)
	}
	user := ids.New()
	if _, err := svc.RegisterUser(ctx, withCaller(command.Meta{CommandID: ids.New()}, auth.User(user)), domain.RegisterUser{UserID: user, Email: "ann@example.com", Name: "Ann Example"}); err != nil {
		t.Fatal(err)
	}
	if err, out, _ := runOut(t, append([]string{"erasure", "audit", "-subject", user}, s.common...)...); err == nil {
		t.Fatalf("erasure audit of a user not erased passed:\n%s", out)
	}
	if _, err := svc.EraseUser(ctx, withCaller(command.Meta{CommandID: ids.New()}, auth.Operator("arn:aws:iam::123456789012:user/ops")), user); err != nil {
		t.Fatal(err)
	}
	out = eventfold(t, append([]string{"erasure", "audit", "-subject", user}, s.common...)...)
	if !strings.Contains(out, "in "+s.env.Refs["EventsTable"]+", "+s.env.Refs["SnapshotsTable"]+", "+readModels+", ") || !strings.Contains(out, "key erased") {
		t.Fatalf("erasure audit against the stack:\n%s", out)
	}

	// parked list: an event parked in the stack's parking table.
	if err := consumer.NewParkingTable(s.client, s.env.Refs["ParkingTable"]).Park(ctx, consumer.Parked{Consumer: "projector", StreamID: "user-" + user,
		Version: 1, Sequence: "1", Record: []byte("{}"), Error: "simulated", ParkedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if out := eventfold(t, append([]string{"parked", "list"}, noKeys...)...); !strings.Contains(out, "user-"+user+"\t1\t") || !strings.Contains(out, "1 parked") {
		t.Fatalf("parked list against the stack:\n%s", out)
	}

	// sagas list: a run stuck in charging, in the stack's read-model table; sagas repair: an
	// order without a run gets one, in the stack's events table. moto's CloudFormation holds no
	// schedule group, so the saga's is named by its flag (its absence is the next test's).
	ss := sagaStackOf(t, s)
	stuck, _ := ss.stuckInCharging(t, time.Now().Add(-time.Hour))
	if out := eventfold(t, append([]string{"sagas", "list"}, noKeys...)...); !strings.Contains(out, stuck.OrderID+"\tcharging\t") || !strings.Contains(out, "1 unfinished") {
		t.Fatalf("sagas list against the stack:\n%s", out)
	}
	fresh := ss.order(t)
	out = eventfold(t, append([]string{"sagas", "repair", "-schedule-group", s.name + "-test"}, s.common...)...)
	if !strings.Contains(out, "started: "+fresh.OrderID) {
		t.Fatalf("sagas repair against the stack:\n%s", out)
	}
	if f, version, _, err := ss.side.Saga.Load(ctx, fresh.OrderID); err != nil || version == 0 {
		t.Fatalf("the repaired order's run in %s: version %d, %v (%+v)", s.env.Refs["EventsTable"], version, err, f)
	}
}

// TestStackErrors: a stack CloudFormation does not know, and one without a resource the command
// uses, are errors naming the stack and the logical ID, and nothing is read or written.
func TestStackErrors(t *testing.T) {
	s := newDeployedStack(t)
	partial := "pt" + strconv.FormatInt(time.Now().UnixNano(), 36)
	createMotoStack(t, partial, "EventsTable", "ReadModelsTable")
	flags := func(stack string) []string {
		return []string{"-template", "../../template.yaml", "-stack", stack, "-endpoint", awstest.DynamoDBEndpoint(t),
			"-kms-endpoint", awstest.KMSEndpoint(t), "-cloudformation-endpoint", awstest.KMSEndpoint(t)}
	}
	for _, tc := range []struct {
		name string
		args []string
		is   error
		want []string
	}{
		{"unknown stack", append([]string{"parked", "list"}, commonWithout(cliStack{common: flags("nosuch" + partial)}, "-kms-endpoint")...),
			errNoStack, []string{"stack nosuch" + partial}},
		{"a table the command reads", append([]string{"parked", "list"}, commonWithout(cliStack{common: flags(partial)}, "-kms-endpoint")...),
			errNoResource, []string{"stack " + partial + " has no resource ParkingTable, which -parking-table needs"}},
		{"every table and the key the command reads", append([]string{"erasure", "audit", "-subject", "x"}, flags(partial)...),
			errNoResource, []string{"no resource SnapshotsTable, which -snapshots-table", "no resource KeysTable", "no resource DataKeyAlias, which -data-key"}},
		{"a resource of the saga's environment", append([]string{"sagas", "check"}, s.common...),
			errNoResource, []string{"stack " + s.name + " has no resource FulfilmentSchedules, which the template's SagaFunction environment variable SCHEDULE_GROUP needs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err, out, errOut := runOut(t, tc.args...)
			if !errors.Is(err, tc.is) {
				t.Fatalf("err %v, want %v\n%s%s", err, tc.is, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if out != "" {
				t.Errorf("printed %q", out)
			}
		})
	}
	// A flag naming the table the stack lacks is enough.
	if out := eventfold(t, append([]string{"parked", "list", "-parking-table", s.env.Refs["ParkingTable"]}, commonWithout(cliStack{common: flags(partial)}, "-kms-endpoint")...)...); !strings.Contains(out, "0 parked") {
		t.Fatalf("parked list with -parking-table against a stack without one:\n%s", out)
	}
}

// fakeStacks is a CloudFormation holding one stack, whose resources ListStackResources returns
// a page at a time, pageSize a page.
type fakeStacks struct {
	stack     cfntypes.Stack
	resources []cfntypes.StackResourceSummary
	pageSize  int
}

func (f *fakeStacks) DescribeStacks(_ context.Context, in *cloudformation.DescribeStacksInput, _ ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error) {
	if aws.ToString(in.StackName) != aws.ToString(f.stack.StackName) {
		return nil, &smithy.GenericAPIError{Code: "ValidationError", Message: "Stack with id " + aws.ToString(in.StackName) + " does not exist"}
	}
	return &cloudformation.DescribeStacksOutput{Stacks: []cfntypes.Stack{f.stack}}, nil
}

func (f *fakeStacks) ListStackResources(_ context.Context, in *cloudformation.ListStackResourcesInput, _ ...func(*cloudformation.Options)) (*cloudformation.ListStackResourcesOutput, error) {
	start := 0
	if in.NextToken != nil {
		start, _ = strconv.Atoi(*in.NextToken)
	}
	end := min(start+f.pageSize, len(f.resources))
	out := &cloudformation.ListStackResourcesOutput{StackResourceSummaries: f.resources[start:end]}
	if end < len(f.resources) {
		out.NextToken = aws.String(strconv.Itoa(end))
	}
	return out, nil
}

// TestDeployedEnv: the names a deployed stack gives, as deployedEnv reads them: every page of
// resources, their ARNs in the stack's partition, region and account, the stack's parameter
// values (not the mask of a NoEcho one), and the saga's environment resolved with them; a stack
// in a status whose resources are not all in place is refused.
func TestDeployedEnv(t *testing.T) {
	ctx := context.Background()
	tmpl := awstest.MustTemplate(t)
	const (
		stackID = "arn:aws-cn:cloudformation:cn-north-1:111122223333:stack/prod/5b1e2a30-0000-11ef-0000-0a1b2c3d4e5f"
		queue   = "https://sqs.cn-north-1.amazonaws.com.cn/111122223333/prod-DeadlineDeadLetterQueue-1A2B3C4D5E6F"
	)
	res := func(id, typ, physical string) cfntypes.StackResourceSummary {
		return cfntypes.StackResourceSummary{LogicalResourceId: aws.String(id), ResourceType: aws.String(typ), PhysicalResourceId: aws.String(physical),
			ResourceStatus: cfntypes.ResourceStatusCreateComplete}
	}
	f := &fakeStacks{pageSize: 2, stack: cfntypes.Stack{StackName: aws.String("prod"), StackId: aws.String(stackID),
		StackStatus: cfntypes.StackStatusUpdateRollbackComplete, Parameters: []cfntypes.Parameter{
			{ParameterKey: aws.String("FulfilmentTimeout"), ParameterValue: aws.String("45m")},
			{ParameterKey: aws.String("JwtAudience"), ParameterValue: aws.String("a, b")},
			{ParameterKey: aws.String("EmailHashKey"), ParameterValue: aws.String(noEchoMask)},
		}}, resources: []cfntypes.StackResourceSummary{
		res("EventsTable", template.TableType, "prod-EventsTable-AAAA1111BBBB"),
		res("SnapshotsTable", template.TableType, "prod-SnapshotsTable-CCCC2222DDDD"),
		res("ParkingTable", template.TableType, "prod-ParkingTable-EEEE3333FFFF"),
		res("KeysTable", template.TableType, "prod-KeysTable-GGGG4444HHHH"),
		res("DataKey", "AWS::KMS::Key", "1234abcd-12ab-34cd-56ef-1234567890ab"),
		res("DataKeyAlias", "AWS::KMS::Alias", "alias/prod-data"),
		res("FulfilmentSchedules", localaws.ScheduleGroupType, "FulfilmentSchedules-XYZ123"),
		res("SchedulerRole", "AWS::IAM::Role", "prod-SchedulerRole-9Z8Y7X6W5V4U"),
		res("DeadlineDeadLetterQueue", localaws.QueueType, queue),
		{LogicalResourceId: aws.String("ClaimsTable"), ResourceType: aws.String(template.TableType), ResourceStatus: cfntypes.ResourceStatusCreateFailed},
	}}
	env, err := deployedEnv(ctx, f, tmpl, "prod")
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"AWS::Region": "cn-north-1", "AWS::AccountId": "111122223333", "AWS::Partition": "aws-cn", "AWS::URLSuffix": "amazonaws.com.cn",
		"EventsTable": "prod-EventsTable-AAAA1111BBBB", "DeadlineDeadLetterQueue": queue, "FulfilmentTimeout": "45m",
		"LogRetentionInDays": tmpl.Parameters["LogRetentionInDays"].Default, // the template's default: the stack does not list it
	} {
		if env.Refs[k] != want {
			t.Errorf("Ref %s = %q, want %q", k, env.Refs[k], want)
		}
	}
	for _, k := range []string{"EmailHashKey", "ClaimsTable"} {
		if v, ok := env.Refs[k]; ok {
			t.Errorf("Ref %s = %q, want none", k, v)
		}
	}
	if got := env.Lists["JwtAudience"]; !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("JwtAudience %q", got)
	}
	for k, want := range map[string]string{
		"EventsTable.Arn":             "arn:aws-cn:dynamodb:cn-north-1:111122223333:table/prod-EventsTable-AAAA1111BBBB",
		"DataKey.Arn":                 "arn:aws-cn:kms:cn-north-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"DeadlineDeadLetterQueue.Arn": "arn:aws-cn:sqs:cn-north-1:111122223333:prod-DeadlineDeadLetterQueue-1A2B3C4D5E6F",
		"SchedulerRole.Arn":           "arn:aws-cn:iam::111122223333:role/prod-SchedulerRole-9Z8Y7X6W5V4U",
		"FulfilmentSchedules.Arn":     "arn:aws-cn:scheduler:cn-north-1:111122223333:schedule-group/FulfilmentSchedules-XYZ123",
	} {
		if env.Attrs[k] != want {
			t.Errorf("GetAtt %s = %q, want %q", k, env.Attrs[k], want)
		}
	}
	d := &deployment{tmpl: tmpl, env: env, stack: "prod"}
	for _, t := range []table{eventsTable, snapshotsTable, parkingTable, keysTable} {
		_, id, _ := t.spec()
		d.tables[t] = env.Refs[id]
	}
	d.dataKey = env.Refs["DataKeyAlias"]
	vars, err := d.sagaEnv()
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"EVENTS_TABLE": "prod-EventsTable-AAAA1111BBBB", "DATA_KEY": "alias/prod-data",
		"SCHEDULE_GROUP": "FulfilmentSchedules-XYZ123", "SCHEDULER_ROLE_ARN": env.Attrs["SchedulerRole.Arn"],
		"DEADLINE_DLQ_ARN": env.Attrs["DeadlineDeadLetterQueue.Arn"], "FULFILMENT_TIMEOUT": "45m"} {
		if vars[k] != want {
			t.Errorf("saga %s = %q, want %q", k, vars[k], want)
		}
	}
	d.scheduleGroup = "mine"
	if vars, err := d.sagaEnv(); err != nil || vars["SCHEDULE_GROUP"] != "mine" {
		t.Errorf("with -schedule-group: SCHEDULE_GROUP %q, %v", vars["SCHEDULE_GROUP"], err)
	}

	for _, status := range []cfntypes.StackStatus{cfntypes.StackStatusCreateInProgress, cfntypes.StackStatusRollbackComplete,
		cfntypes.StackStatusUpdateInProgress, cfntypes.StackStatusDeleteInProgress, cfntypes.StackStatusDeleteFailed} {
		f.stack.StackStatus = status
		if _, err := deployedEnv(ctx, f, tmpl, "prod"); !errors.Is(err, errStackNotUsable) || !strings.Contains(err.Error(), "stack prod is "+string(status)) {
			t.Errorf("stack %s: %v, want %v naming it", status, err, errStackNotUsable)
		}
	}
	if _, err := deployedEnv(ctx, f, tmpl, "other"); !errors.Is(err, errNoStack) || !strings.Contains(err.Error(), "stack other") {
		t.Errorf("unknown stack: %v", err)
	}
}
