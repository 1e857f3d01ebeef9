package awscall_test

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/eventfold/eventfold/internal/awscall"
)

func TestCalls(t *testing.T) {
	const tbl = "arn:aws:dynamodb:r:1:table/"
	tests := []struct {
		name, service, op string
		in, out           any
		want              []awscall.Call
	}{
		{"a put", "DynamoDB", "PutItem", &dynamodb.PutItemInput{TableName: aws.String("t")}, nil,
			[]awscall.Call{{Action: "dynamodb:PutItem", Resource: tbl + "t"}}},
		{"a query of an index", "DynamoDB", "Query", &dynamodb.QueryInput{TableName: aws.String("t"), IndexName: aws.String("i")}, nil,
			[]awscall.Call{{Action: "dynamodb:Query", Resource: tbl + "t/index/i"}}},
		{"a transaction needs each item's action", "DynamoDB", "TransactWriteItems", &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{ConditionCheck: &types.ConditionCheck{TableName: aws.String("e")}}, {Put: &types.Put{TableName: aws.String("e")}}, {Delete: &types.Delete{TableName: aws.String("c")}},
		}}, nil, []awscall.Call{{Action: "dynamodb:ConditionCheckItem", Resource: tbl + "e"}, {Action: "dynamodb:PutItem", Resource: tbl + "e"}, {Action: "dynamodb:DeleteItem", Resource: tbl + "c"}}},
		{"KMS: the key the response names, the context's keys without values", "KMS", "GenerateDataKey",
			&kms.GenerateDataKeyInput{KeyId: aws.String("alias/a"), EncryptionContext: map[string]string{"eventfold:subject": "user-1"}},
			&kms.GenerateDataKeyOutput{KeyId: aws.String("arn:aws:kms:r:1:key/k")},
			[]awscall.Call{{Action: "kms:GenerateDataKey", Resource: "arn:aws:kms:r:1:key/k", Withheld: []string{"kms:EncryptionContext:eventfold:subject"},
				Sets: map[string][]string{"kms:EncryptionContextKeys": {"eventfold:subject"}}}}},
		{"KMS: a failed call names the alias", "KMS", "Decrypt", &kms.DecryptInput{KeyId: aws.String("alias/a")}, nil,
			[]awscall.Call{{Action: "kms:Decrypt", Resource: "arn:aws:kms:r:1:alias/a"}}},
		{"a schedule with a role passes it", "Scheduler", "CreateSchedule",
			&scheduler.CreateScheduleInput{Name: aws.String("n"), GroupName: aws.String("g"), Target: &schedtypes.Target{RoleArn: aws.String("arn:aws:iam::1:role/s")}}, nil,
			[]awscall.Call{{Action: "scheduler:CreateSchedule", Resource: "arn:aws:scheduler:r:1:schedule/g/n"},
				{Action: "iam:PassRole", Resource: "arn:aws:iam::1:role/s", Conditions: map[string]string{"iam:PassedToService": "scheduler.amazonaws.com"}}}},
		{"an operation the recorder does not know has no resource", "Lambda", "Invoke", &struct{}{}, nil,
			[]awscall.Call{{Action: "lambda:Invoke"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := awscall.Calls(tt.service, tt.op, "r", "1", tt.in, tt.out)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Calls = %+v\nwant    %+v", got, tt.want)
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	if r, err := awscall.FromEnv(func(string) string { return "" }); r != nil || err != nil {
		t.Fatalf("without %s: %v, %v; want nothing recorded", awscall.EnvLog, r, err)
	}
	path := filepath.Join(t.TempDir(), "calls.jsonl")
	if _, err := awscall.FromEnv(func(k string) string { return map[string]string{awscall.EnvLog: path}[k] }); err == nil {
		t.Fatal("no error without an account")
	}
	l, err := awscall.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []awscall.Call{{Action: "a:B", Resource: "r"}, {Action: "c:D", By: "lambda"}}
	if err := l.Write(want...); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if got, err := awscall.Read(path); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Read = %+v, %v; want %+v", got, err, want)
	}
}
