package template

import (
	"reflect"
	"testing"
)

// TestResolveNoValue: Ref AWS::NoValue, directly or from the branch an Fn::If picks, removes
// the list item or property it is, as CloudFormation does.
func TestResolveNoValue(t *testing.T) {
	env := Env{Refs: map[string]string{"X": "x"}, Conditions: map[string]bool{"On": true, "Off": false}}
	in := map[string]any{
		"List": []any{"a", map[string]any{"Fn::If": []any{"Off", "b", map[string]any{"Ref": "AWS::NoValue"}}},
			map[string]any{"Fn::If": []any{"On", map[string]any{"Ref": "X"}, map[string]any{"Ref": "AWS::NoValue"}}}},
		"Gone": map[string]any{"Ref": "AWS::NoValue"},
	}
	got, err := env.Resolve(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"List": []any{"a", "x"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Resolve = %v, want %v", got, want)
	}
}
