package iam

import (
	"encoding/json"
	"testing"

	"github.com/eventfold/eventfold/internal/awscall"
	"github.com/eventfold/eventfold/internal/template"
)

// TestKeyPolicyGovernsIdentityPolicies holds Evaluate to how KMS authorizes a call on a key of
// the template: a role's identity policy counts only where the key policy lets the account's
// IAM policies allow the action (a statement naming the account root), and a Deny of the key
// policy, to "*" as to the role, wins over any Allow.
func TestKeyPolicyGovernsIdentityPolicies(t *testing.T) {
	const keyARN = "arn:aws:kms:r:1:key/k"
	role := func(sid string, actions ...string) map[string]any {
		return map[string]any{"Type": "AWS::IAM::Role", "Properties": map[string]any{
			"Policies": []any{map[string]any{"PolicyName": "p", "PolicyDocument": map[string]any{
				"Statement": []any{map[string]any{"Sid": sid, "Effect": "Allow", "Action": toAny(actions), "Resource": keyARN}}}}}}}
	}
	root := map[string]any{"AWS": "arn:aws:iam::1:root"}
	stmt := func(effect string, principal any, actions ...string) map[string]any {
		return map[string]any{"Effect": effect, "Principal": principal, "Action": toAny(actions), "Resource": "*"}
	}
	key := func(stmts ...any) map[string]any {
		return map[string]any{"Type": "AWS::KMS::Key", "Properties": map[string]any{
			"KeyPolicy": map[string]any{"Version": "2012-10-17", "Statement": stmts}}}
	}
	decrypt := awscall.Call{Action: "kms:Decrypt", Resource: keyARN}
	tests := []struct {
		name string
		key  map[string]any
		want bool
	}{
		{"the key policy enables IAM for the action", key(stmt("Allow", root, "kms:*")), true},
		{"the key policy enables IAM for other actions only: an admin-only key", key(stmt("Allow", root, "kms:DescribeKey", "kms:PutKeyPolicy")), false},
		{"the key policy names another role only", key(stmt("Allow", root, "kms:DescribeKey"), stmt("Allow", map[string]any{"AWS": "arn:aws:iam::1:role/other"}, "kms:Decrypt")), false},
		{"a Deny to everyone in the key policy", key(stmt("Allow", root, "kms:*"), stmt("Deny", map[string]any{"AWS": "*"}, "kms:Decrypt")), false},
		{"a Deny to everyone, Principal \"*\"", key(stmt("Allow", root, "kms:*"), stmt("Deny", "*", "kms:Decrypt")), false},
		{"the bare account ID enables IAM", key(stmt("Allow", map[string]any{"AWS": "1"}, "kms:Decrypt")), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := mustJSON(t, map[string]any{"Resources": map[string]any{"R": role("Open", "kms:Decrypt"), "K": tt.key}})
			env := template.Env{Refs: map[string]string{"AWS::AccountId": "1", "AWS::StackName": "s"},
				Attrs: map[string]string{"K.Arn": keyARN, "R.Arn": "arn:aws:iam::1:role/s-R"}}
			roles, _, err := Roles(doc, env)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := roles["R"].Evaluate(decrypt)
			if err != nil || got != tt.want {
				t.Errorf("Evaluate(kms:Decrypt) = %v, %v; want %v", got, err, tt.want)
			}
			// What AWS denies is no use of the identity statement either.
			rep := Check(roles, map[string][]awscall.Call{"R": {decrypt}}, nil)
			if rep.Failed() == tt.want {
				t.Errorf("Check: failed %v, want %v:\n%s", rep.Failed(), !tt.want, rep)
			}
		})
	}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
