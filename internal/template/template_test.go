package template_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/template"
)

func mustParse(t *testing.T, path string) *template.Template {
	t.Helper()
	tmpl, err := template.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func TestTables(t *testing.T) {
	tmpl := mustParse(t, "testdata/tables.yaml")
	env, err := tmpl.LocalEnv("local", "us-east-1", "000000000000")
	if err != nil {
		t.Fatal(err)
	}
	tables, err := tmpl.Tables(env)
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != 2 || tables[0].LogicalID != "Named" || tables[1].LogicalID != "Plain" {
		t.Fatalf("tables = %+v, want Named and Plain", tables)
	}
	named, plain := tables[0], tables[1]
	if got := aws.ToString(named.Create.TableName); got != "local-named-dev" {
		t.Errorf("Named table name = %q, want TableName resolved to local-named-dev", got)
	}
	if got := aws.ToString(plain.Create.TableName); got != "local-Plain" {
		t.Errorf("Plain table name = %q, want stack-LogicalID", got)
	}
	c := named.Create
	if len(c.KeySchema) != 2 || c.KeySchema[1].KeyType != types.KeyTypeRange || len(c.AttributeDefinitions) != 3 ||
		c.AttributeDefinitions[1].AttributeType != types.ScalarAttributeTypeN {
		t.Errorf("keys = %+v, attributes = %+v", c.KeySchema, c.AttributeDefinitions)
	}
	if len(c.GlobalSecondaryIndexes) != 1 || aws.ToString(c.GlobalSecondaryIndexes[0].IndexName) != "byStatus" ||
		c.GlobalSecondaryIndexes[0].Projection.ProjectionType != types.ProjectionTypeInclude ||
		c.GlobalSecondaryIndexes[0].Projection.NonKeyAttributes[0] != "name" {
		t.Errorf("GSIs = %+v", c.GlobalSecondaryIndexes)
	}
	if len(c.LocalSecondaryIndexes) != 1 || c.LocalSecondaryIndexes[0].Projection.ProjectionType != types.ProjectionTypeKeysOnly {
		t.Errorf("LSIs = %+v", c.LocalSecondaryIndexes)
	}
	if c.StreamSpecification == nil || c.StreamSpecification.StreamViewType != types.StreamViewTypeNewAndOldImages {
		t.Errorf("stream = %+v", c.StreamSpecification)
	}
	if named.TTL == nil || aws.ToString(named.TTL.AttributeName) != "expiresAt" || plain.TTL != nil {
		t.Errorf("TTL = %+v / %+v", named.TTL, plain.TTL)
	}
	if c.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("billing = %v", c.BillingMode)
	}
}

func TestResolveIntrinsics(t *testing.T) {
	tmpl := mustParse(t, "testdata/tables.yaml")
	env, err := tmpl.LocalEnv("local", "eu-west-1", "123456789012")
	if err != nil {
		t.Fatal(err)
	}
	got, err := env.Resolve(tmpl.Resources["Fn"].Properties)
	if err != nil {
		t.Fatal(err)
	}
	vars := got.(map[string]any)["Environment"].(map[string]any)["Variables"].(map[string]any)
	want := map[string]string{
		"NAMED":   "local-named-dev",
		"ARN":     "arn:aws:dynamodb:eu-west-1:123456789012:table/local-named-dev",
		"JOINED":  "dev:b",
		"LITERAL": "${NotAVar}-dev",
		"LONG":    "dev-local-Plain",
	}
	for k, w := range want {
		if vars[k] != w {
			t.Errorf("%s = %v, want %q", k, vars[k], w)
		}
	}
}

func TestUnresolvedReferenceIsAnError(t *testing.T) {
	env := template.Env{Refs: map[string]string{"A": "a"}}
	for _, v := range []any{
		map[string]any{"Ref": "Missing"},
		map[string]any{"Fn::Sub": "${A}-${Missing}"},
		map[string]any{"Fn::GetAtt": []any{"X", "Arn"}},
		map[string]any{"Fn::ImportValue": "x"},
	} {
		if _, err := env.Resolve(v); !errors.Is(err, template.ErrUnresolved) {
			t.Errorf("Resolve(%v) = %v, want ErrUnresolved", v, err)
		}
	}
}

func TestParseRejectsBrokenTemplates(t *testing.T) {
	for name, src := range map[string]string{
		"not YAML":           "Resources: [",
		"no resources":       "AWSTemplateFormatVersion: '2010-09-09'\n",
		"resource not map":   "Resources:\n  A: 3\n",
		"resource no type":   "Resources:\n  A:\n    Properties: {}\n",
		"top level is list":  "- a\n",
		"GetAtt without dot": "Resources:\n  A:\n    Type: X\n    Properties:\n      B: !GetAtt Nodot\n",
		"alias bomb":         aliasBomb(),
	} {
		if _, err := template.Parse(strings.NewReader(src)); !errors.Is(err, template.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
}

// aliasBomb is a few hundred bytes of YAML that expands to 9^8 values through nested aliases.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("a: &a [x,x,x,x,x,x,x,x,x]\n")
	for prev, c := 'a', 'b'; c <= 'h'; prev, c = c, c+1 {
		fmt.Fprintf(&b, "%c: &%c [%s]\n", c, c, strings.TrimSuffix(strings.Repeat("*"+string(prev)+",", 9), ","))
	}
	b.WriteString("Resources: {}\n")
	return b.String()
}

func TestTableNeedsKeys(t *testing.T) {
	tmpl, err := template.Parse(strings.NewReader("Resources:\n  T:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      BillingMode: PAY_PER_REQUEST\n"))
	if err != nil {
		t.Fatal(err)
	}
	env, _ := tmpl.LocalEnv("s", "r", "a")
	if _, err := tmpl.Tables(env); !errors.Is(err, template.ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid", err)
	}
}

func TestProjectTemplateParses(t *testing.T) {
	tmpl := mustParse(t, "../../template.yaml")
	env, err := tmpl.LocalEnv("eventfold", "us-east-1", "000000000000")
	if err != nil {
		t.Fatal(err)
	}
	tables, err := tmpl.Tables(env)
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) < 2 {
		t.Fatalf("template.yaml declares %d tables, want the events and snapshots tables at least", len(tables))
	}
}

func FuzzParse(f *testing.F) {
	f.Add("Resources:\n  A:\n    Type: X\n    Properties:\n      B: !Sub '${A}'\n")
	f.Add("Resources: {A: {Type: AWS::DynamoDB::Table, Properties: {KeySchema: [{AttributeName: a}]}}}")
	f.Fuzz(func(t *testing.T, src string) {
		tmpl, err := template.Parse(strings.NewReader(src))
		if err != nil {
			return
		}
		env, err := tmpl.LocalEnv("s", "r", "a")
		if err != nil {
			return
		}
		tmpl.Tables(env) // must not panic
		for _, r := range tmpl.Resources {
			env.Resolve(r.Properties)
		}
	})
}
