package main

import (
	"fmt"
	"slices"
	"testing"

	"github.com/eventfold/eventfold/internal/localaws/awstest"
)

// TestOpsCommandsCanOpenPersonalData: the commands that open sealed events (projections
// rebuild, parked replay, projections and sagas repair, restore apply: every command taking
// -keys-table, whose keyring unwraps with kms:Decrypt) run with an operator's credentials
// against a deployed stack ("Operating a deployed stack"; the restore runbook ends with a
// rebuild), not under a function's role. KMS lets an IAM policy allow a key's use only when the
// key policy allows that action to the account (or names the principal): so DataKey's policy
// must allow kms:Decrypt to some principal besides the functions' roles, else every such
// command fails with AccessDeniedException on the first person's data.
func TestOpsCommandsCanOpenPersonalData(t *testing.T) {
	tmpl := awstest.MustTemplate(t)
	functionRoles := map[string]bool{}
	for _, fn := range tmpl.OfType("AWS::Serverless::Function") {
		functionRoles[fn+"Role"] = true // SAM's generated role of a function without Role
	}
	key, ok := tmpl.Resources["DataKey"]
	if !ok {
		t.Fatal("template.yaml has no DataKey")
	}
	policy, _ := key.Properties["KeyPolicy"].(map[string]any)
	stmts, _ := policy["Statement"].([]any)
	var others []string
	for _, sv := range stmts {
		s, _ := sv.(map[string]any)
		if s["Effect"] != "Allow" || !allowsAction(s["Action"], "kms:Decrypt") {
			continue
		}
		principal, _ := s["Principal"].(map[string]any)
		for _, p := range list(principal["AWS"]) {
			if isFunctionRole(p, functionRoles) {
				continue
			}
			others = append(others, fmt.Sprint(p))
		}
	}
	if len(others) == 0 {
		t.Errorf("DataKey's key policy allows kms:Decrypt to the functions' roles only: no operator can run projections rebuild, " +
			"parked replay or restore apply against a deployed stack (an IAM policy cannot allow what the key policy does not delegate)")
	}
}

// allowsAction reports whether a statement's Action (a string or a list) names action or kms:*.
func allowsAction(v any, action string) bool {
	return slices.ContainsFunc(list(v), func(a any) bool { return a == action || a == "kms:*" || a == "*" })
}

// list is v as a list: a list as it is, anything else as a list of one.
func list(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

// isFunctionRole reports whether p is Fn::GetAtt <a function's role>.Arn.
func isFunctionRole(p any, roles map[string]bool) bool {
	m, ok := p.(map[string]any)
	if !ok {
		return false
	}
	a, _ := m["Fn::GetAtt"].([]any)
	return len(a) == 2 && roles[fmt.Sprint(a[0])] && a[1] == "Arn"
}
