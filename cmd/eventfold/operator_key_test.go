package main

import (
	"encoding/json"
	"testing"

	"github.com/eventfold/eventfold/internal/awscall"
	"github.com/eventfold/eventfold/internal/iam"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
)

// TestOperatorOpensPersonalData holds DataKey's key policy to what the ops commands need against
// a deployed stack (`projections rebuild`, `projections repair`, `parked replay`, `sagas
// repair`, ... with -stack): they run under the operator's credentials, not a function's role,
// and open sealed fields with kms:Decrypt on DataKey under a subject's encryption context. The
// role the stack names as its operator, whose IAM policy allows that, must be allowed; any other
// role of the account, with the same IAM policy, must not be.
func TestOperatorOpensPersonalData(t *testing.T) {
	tmpl := awstest.MustTemplate(t)
	const account = "111122223333"
	env, err := tmpl.LocalEnv("eventfold", "eu-west-1", account)
	if err != nil {
		t.Fatal(err)
	}
	keyARN := "arn:aws:kms:eu-west-1:" + account + ":key/1234abcd-12ab-34cd-56ef-1234567890ab"
	env.Attrs["DataKey.Arn"] = keyARN
	for _, fn := range []string{"CommandsFunction", "ProjectorFunction", "QueriesFunction", "SagaFunction"} {
		env.Attrs[fn+"Role.Arn"] = "arn:aws:iam::" + account + ":role/eventfold-" + fn + "Role-ABC"
	}
	operatorARN := "arn:aws:iam::" + account + ":role/ops"
	env.Refs["OperatorRoleArn"] = operatorARN
	if env.Conditions, err = tmpl.EvalConditions(env); err != nil {
		t.Fatal(err)
	}
	openKey := func() map[string]any {
		return map[string]any{"Type": "AWS::IAM::Role", "Properties": map[string]any{"Policies": []any{map[string]any{
			"PolicyName": "ops", "PolicyDocument": map[string]any{"Statement": []any{map[string]any{
				"Effect": "Allow", "Action": "kms:Decrypt", "Resource": keyARN}}}}}}}
	}
	env.Attrs["Operator.Arn"], env.Attrs["Other.Arn"] = operatorARN, "arn:aws:iam::"+account+":role/someone"
	doc, err := json.Marshal(map[string]any{"Resources": map[string]any{
		"DataKey":  map[string]any{"Type": "AWS::KMS::Key", "Properties": tmpl.Resources["DataKey"].Properties},
		"Operator": openKey(), "Other": openKey(),
	}})
	if err != nil {
		t.Fatal(err)
	}
	roles, _, err := iam.Roles(doc, env)
	if err != nil {
		t.Fatal(err)
	}
	decrypt := awscall.Call{Action: "kms:Decrypt", Resource: keyARN,
		Withheld: []string{"kms:EncryptionContext:eventfold:subject"},
		Sets:     map[string][]string{"kms:EncryptionContextKeys": {"eventfold:subject"}}}
	for role, want := range map[string]bool{"Operator": true, "Other": false} {
		got, _, err := roles[role].Evaluate(decrypt)
		if err != nil || got != want {
			t.Errorf("%s: kms:Decrypt of a subject's key = %v, %v; want %v", role, got, err, want)
		}
	}
}
