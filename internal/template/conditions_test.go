package template_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/eventfold/eventfold/internal/template"
)

const conditionsTemplate = `
Parameters:
  Issuer:
    Type: String
    Default: ""
  Audience:
    Type: CommaDelimitedList
    Default: "a, b,c"
  Empty:
    Type: CommaDelimitedList
    Default: ""
Conditions:
  NoIssuer: !Equals [!Ref Issuer, ""]
  HasIssuer: !Not [!Condition NoIssuer]
  Both: !And [!Condition NoIssuer, !Equals [x, x]]
  Either: !Or [!Condition HasIssuer, !Equals [x, y]]
Resources:
  Pool:
    Type: AWS::Cognito::UserPool
    Condition: NoIssuer
  Other:
    Type: AWS::SNS::Topic
    Condition: HasIssuer
  Always:
    Type: AWS::SNS::Topic
    Properties:
      Issuer: !If [NoIssuer, !Sub "https://idp/${Pool}", !Ref Issuer]
      Audience: !If [NoIssuer, [!Ref Pool], !Ref Audience]
      Empty: !Ref Empty
`

func TestConditions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		issuer   string
		want     map[string]bool
		kept     []string
		issuerV  any
		audience any
	}{
		{"defaults", "", map[string]bool{"NoIssuer": true, "HasIssuer": false, "Both": true, "Either": false},
			[]string{"Always", "Pool"}, "https://idp/pool-1", []any{"pool-1"}},
		{"own issuer", "https://mine", map[string]bool{"NoIssuer": false, "HasIssuer": true, "Both": false, "Either": true},
			[]string{"Always", "Other"}, "https://mine", []any{"a", "b", "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, err := template.Parse(strings.NewReader(conditionsTemplate))
			if err != nil {
				t.Fatal(err)
			}
			env, err := tmpl.LocalEnv("s", "us-east-1", "000000000000")
			if err != nil {
				t.Fatal(err)
			}
			env.Refs["Issuer"] = tc.issuer
			conds, err := tmpl.EvalConditions(env)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(conds, tc.want) {
				t.Fatalf("conditions = %v, want %v", conds, tc.want)
			}
			if err := tmpl.Prune(conds); err != nil {
				t.Fatal(err)
			}
			var kept []string
			for _, typ := range []string{"AWS::Cognito::UserPool", "AWS::SNS::Topic"} {
				kept = append(kept, tmpl.OfType(typ)...)
			}
			if strings.Join(slices.Sorted(slices.Values(kept)), ",") != strings.Join(tc.kept, ",") {
				t.Errorf("resources kept = %v, want %v", kept, tc.kept)
			}
			env.Conditions = conds
			if tc.issuer == "" {
				env.Refs["Pool"] = "pool-1"
			}
			got, err := env.Resolve(tmpl.Resources["Always"].Properties)
			if err != nil {
				t.Fatal(err)
			}
			props := got.(map[string]any)
			if props["Issuer"] != tc.issuerV || !reflect.DeepEqual(props["Audience"], tc.audience) ||
				!reflect.DeepEqual(props["Empty"], []any{}) {
				t.Errorf("resolved = %#v", props)
			}
		})
	}
}

func TestConditionErrors(t *testing.T) {
	for _, tc := range []struct{ name, conds string }{
		{"cycle", "A: !Not [!Condition B]\n  B: !Not [!Condition A]"},
		{"unknown condition", "A: !Not [!Condition Nope]"},
		{"not a condition", "A: !Sub x"},
		{"equals arity", "A: !Equals [x]"},
		{"and arity", "A: !And [!Equals [x, x]]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, err := template.Parse(strings.NewReader("Conditions:\n  " + tc.conds + "\nResources:\n  R:\n    Type: X\n"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = tmpl.EvalConditions(template.Env{Refs: map[string]string{}})
			if !errors.Is(err, template.ErrInvalid) && !errors.Is(err, template.ErrUnresolved) {
				t.Fatalf("EvalConditions = %v, want ErrInvalid or ErrUnresolved", err)
			}
		})
	}
	// Fn::If on a condition nobody evaluated, and a resource under an unknown condition.
	env := template.Env{Refs: map[string]string{}}
	if _, err := env.Resolve(map[string]any{"Fn::If": []any{"Nope", "a", "b"}}); !errors.Is(err, template.ErrUnresolved) {
		t.Errorf("Fn::If on an unknown condition = %v", err)
	}
	tmpl, _ := template.Parse(strings.NewReader("Resources:\n  R:\n    Type: X\n    Condition: Nope\n"))
	if err := tmpl.Prune(map[string]bool{}); !errors.Is(err, template.ErrInvalid) {
		t.Errorf("Prune with an unknown condition = %v", err)
	}
}
