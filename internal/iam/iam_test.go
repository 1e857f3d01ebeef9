package iam

import (
	"errors"
	"testing"

	"github.com/eventfold/eventfold/internal/awscall"
)

func TestStatementMatches(t *testing.T) {
	const table = "arn:aws:dynamodb:us-east-1:1:table/t"
	subject := awscall.Call{Action: "kms:Decrypt", Resource: "arn:aws:kms:us-east-1:1:key/k",
		Withheld: []string{"kms:EncryptionContext:eventfold:subject"},
		Sets:     map[string][]string{"kms:EncryptionContextKeys": {"eventfold:subject"}}}
	tests := []struct {
		name    string
		s       Statement
		c       awscall.Call
		want    bool
		wantErr error
	}{
		{"action and resource", Statement{Actions: []string{"dynamodb:GetItem"}, Resources: []string{table}}, awscall.Call{Action: "dynamodb:GetItem", Resource: table}, true, nil},
		{"actions fold case", Statement{Actions: []string{"DynamoDB:getitem"}, Resources: []string{table}}, awscall.Call{Action: "dynamodb:GetItem", Resource: table}, true, nil},
		{"another action", Statement{Actions: []string{"dynamodb:GetItem"}, Resources: []string{table}}, awscall.Call{Action: "dynamodb:PutItem", Resource: table}, false, nil},
		{"a wildcard spans slashes", Statement{Actions: []string{"dynamodb:Query"}, Resources: []string{table + "/*"}}, awscall.Call{Action: "dynamodb:Query", Resource: table + "/index/i"}, true, nil},
		{"the table is not its index", Statement{Actions: []string{"dynamodb:Query"}, Resources: []string{table + "/index/*"}}, awscall.Call{Action: "dynamodb:Query", Resource: table}, false, nil},
		{"resources are case-sensitive", Statement{Actions: []string{"*"}, Resources: []string{table}}, awscall.Call{Action: "dynamodb:GetItem", Resource: table + "T"}, false, nil},
		{"an unknown resource matches nothing", Statement{Actions: []string{"*"}, Resources: []string{"*"}}, awscall.Call{Action: "x:Y"}, false, nil},
		{"Null false: a withheld key is present", Statement{Actions: []string{"kms:*"}, Resources: []string{"*"},
			Conditions: []Condition{{"Null", "kms:EncryptionContext:eventfold:subject", []string{"false"}}}}, subject, true, nil},
		{"Null false: an absent key", Statement{Actions: []string{"kms:*"}, Resources: []string{"*"},
			Conditions: []Condition{{"Null", "kms:EncryptionContext:eventfold:subject", []string{"false"}}}}, awscall.Call{Action: "kms:Decrypt", Resource: "k"}, false, nil},
		{"ForAllValues over the context's keys", Statement{Actions: []string{"kms:*"}, Resources: []string{"*"},
			Conditions: []Condition{{"ForAllValues:StringEquals", "kms:EncryptionContextKeys", []string{"eventfold:subject"}}}}, subject, true, nil},
		{"ForAllValues with a key more", Statement{Actions: []string{"kms:*"}, Resources: []string{"*"},
			Conditions: []Condition{{"ForAllValues:StringEquals", "kms:EncryptionContextKeys", []string{"other"}}}}, subject, false, nil},
		{"StringEquals", Statement{Actions: []string{"iam:PassRole"}, Resources: []string{"r"},
			Conditions: []Condition{{"StringEquals", "iam:PassedToService", []string{"scheduler.amazonaws.com"}}}},
			awscall.Call{Action: "iam:PassRole", Resource: "r", Conditions: map[string]string{"iam:PassedToService": "scheduler.amazonaws.com"}}, true, nil},
		{"StringEquals of another service", Statement{Actions: []string{"iam:PassRole"}, Resources: []string{"r"},
			Conditions: []Condition{{"StringEquals", "iam:PassedToService", []string{"lambda.amazonaws.com"}}}},
			awscall.Call{Action: "iam:PassRole", Resource: "r", Conditions: map[string]string{"iam:PassedToService": "scheduler.amazonaws.com"}}, false, nil},
		{"a withheld value cannot be compared", Statement{Actions: []string{"kms:*"}, Resources: []string{"*"},
			Conditions: []Condition{{"StringEquals", "kms:EncryptionContext:eventfold:subject", []string{"u"}}}}, subject, false, ErrUnsupported},
		{"an unknown operator fails", Statement{Actions: []string{"kms:*"}, Resources: []string{"*"},
			Conditions: []Condition{{"NumericLessThan", "kms:x", []string{"1"}}}}, subject, false, ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.s.Matches(tt.c)
			if got != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("Matches = %v, %v; want %v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	role := &Role{LogicalID: "R", ManagedPolicies: []string{"m"}, Statements: []Statement{
		{Policy: "p", Sid: "Used", Effect: "Allow", Actions: []string{"dynamodb:GetItem", "dynamodb:PutItem"}, Resources: []string{"t"}},
		{Policy: "p", Sid: "Deny", Effect: "Deny", Actions: []string{"dynamodb:DeleteItem"}, Resources: []string{"*"}},
		{Policy: "p", Sid: "Platform", Effect: "Allow", Actions: []string{"sqs:SendMessage"}, Resources: []string{"q"}},
	}}
	calls := map[string][]awscall.Call{"R": {
		{Action: "dynamodb:GetItem", Resource: "t"},
		{Action: "dynamodb:DeleteItem", Resource: "t"},
		{Action: "dynamodb:Query", Resource: "t"},
	}, "Nobody": {{Action: "x:Y", Resource: "z"}}}
	rep := Check(map[string]*Role{"R": role}, calls, []Platform{
		{Role: "R", Action: "sqs:SendMessage", Resource: "q", Reason: "Lambda"},
		{ManagedPolicy: "m", Reason: "Lambda"},
		{ManagedPolicy: "stale", Reason: "gone"},
	})
	want := Report{
		Denied:   []string{"R: dynamodb:DeleteItem on t", "R: dynamodb:Query on t"},
		Unused:   []string{"R/p/Used: dynamodb:PutItem on t"},
		Problems: []string{"calls recorded of Nobody, which is no role of the template", "platform entry {ManagedPolicy:stale Role: Action: Resource: Reason:gone} names nothing the roles allow"},
	}
	if rep.String() != want.String() {
		t.Errorf("Check:\n%s\nwant:\n%s", rep, want)
	}
}
