// Package template reads the project's AWS SAM template (template.yaml), the one source of truth
// for how eventfold is wired: its tables, keys, functions, routes and stream triggers.
//
// Parse turns CloudFormation YAML, short-form intrinsic tags included (!Ref, !Sub, !GetAtt, ...),
// into plain values in their long form ({"Ref": ...}, {"Fn::Sub": ...}). Env resolves intrinsics
// against the names of locally created resources. Tables converts the template's
// AWS::DynamoDB::Table resources into DynamoDB API inputs, so local tables are created from the
// template itself and never from a second copy of the schema.
package template

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Template is a parsed SAM or CloudFormation template.
type Template struct {
	Parameters map[string]Parameter
	Globals    map[string]any
	Resources  map[string]Resource
	// Conditions are the template's Conditions section, unevaluated (see Conditions).
	Conditions map[string]any
}

// Parameter is a template parameter; Default is empty when the template gives none.
type Parameter struct {
	Type    string
	Default string
}

// Resource is one entry of the template's Resources section, with intrinsics left unresolved.
type Resource struct {
	Type       string
	Properties map[string]any
	Metadata   map[string]any
	// Condition names the condition the resource is created under; empty when it always is.
	Condition string
}

// ErrInvalid is returned, wrapped, when a template cannot be read or a resource in it does not
// have the shape its type requires.
var ErrInvalid = errors.New("invalid template")

// ParseFile reads and parses the template at path.
func ParseFile(path string) (*Template, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse reads a template in YAML (or JSON, which is YAML).
func Parse(r io.Reader) (*Template, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(r).Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	budget := maxNodes
	v, err := plain(&doc, &budget)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	root, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: top level is not a mapping", ErrInvalid)
	}
	t := &Template{Parameters: map[string]Parameter{}, Resources: map[string]Resource{}}
	if g, ok := root["Globals"].(map[string]any); ok {
		t.Globals = g
	}
	params, _ := root["Parameters"].(map[string]any)
	for name, p := range params {
		pm, ok := p.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: parameter %s is not a mapping", ErrInvalid, name)
		}
		t.Parameters[name] = Parameter{Type: str(pm["Type"]), Default: str(pm["Default"])}
	}
	if c, ok := root["Conditions"].(map[string]any); ok {
		t.Conditions = c
	}
	res, ok := root["Resources"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: no Resources section", ErrInvalid)
	}
	for id, r := range res {
		rm, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: resource %s is not a mapping", ErrInvalid, id)
		}
		typ, _ := rm["Type"].(string)
		if typ == "" {
			return nil, fmt.Errorf("%w: resource %s has no Type", ErrInvalid, id)
		}
		props, _ := rm["Properties"].(map[string]any)
		meta, _ := rm["Metadata"].(map[string]any)
		cond, _ := rm["Condition"].(string)
		t.Resources[id] = Resource{Type: typ, Properties: props, Metadata: meta, Condition: cond}
	}
	return t, nil
}

// EvalConditions evaluates the template's Conditions against env (parameters resolved): each
// condition's value, by name. A condition may use Fn::Equals, Fn::Not, Fn::And, Fn::Or and refer
// to another with {"Condition": name}. It returns ErrInvalid, wrapped, for a condition that is
// not one of those, refers to itself, or names one that does not exist.
func (t *Template) EvalConditions(env Env) (map[string]bool, error) {
	e := env
	e.Conditions = map[string]bool{}
	e.conditionDefs = t.Conditions
	for name := range t.Conditions {
		if _, err := e.condition(name, map[string]bool{}); err != nil {
			return nil, err
		}
	}
	return e.Conditions, nil
}

// Prune removes the resources whose Condition is false in conds, as CloudFormation does not
// create them. A resource under a condition conds does not know is an error (ErrInvalid).
func (t *Template) Prune(conds map[string]bool) error {
	for id, r := range t.Resources {
		if r.Condition == "" {
			continue
		}
		v, ok := conds[r.Condition]
		if !ok {
			return fmt.Errorf("%w: resource %s has unknown Condition %s", ErrInvalid, id, r.Condition)
		}
		if !v {
			delete(t.Resources, id)
		}
	}
	return nil
}

// OfType returns the logical IDs of the resources of the given type, sorted.
func (t *Template) OfType(typ string) []string {
	var ids []string
	for id, r := range t.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// Event is one entry of a serverless function's Events, with intrinsics left unresolved.
type Event struct {
	Name       string
	Properties map[string]any
}

// Events returns the events of the given Type ("HttpApi", "DynamoDB", ...) of resource id, in
// name order.
func (t *Template) Events(id, typ string) []Event {
	evs, _ := t.Resources[id].Properties["Events"].(map[string]any)
	var out []Event
	for name, e := range evs {
		em, _ := e.(map[string]any)
		if em["Type"] != typ {
			continue
		}
		props, _ := em["Properties"].(map[string]any)
		out = append(out, Event{Name: name, Properties: props})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func str(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// maxNodes bounds the values a template may expand to, aliases included, so that a small file of
// nested aliases cannot take minutes and gigabytes to read.
const maxNodes = 1_000_000

// plain converts a YAML node into maps, slices and scalars, turning CloudFormation short-form tags
// into their long form. Each node visited spends one unit of budget.
func plain(n *yaml.Node, budget *int) (any, error) {
	if *budget--; *budget < 0 {
		return nil, fmt.Errorf("more than %d values (nested aliases?)", maxNodes)
	}
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return plain(n.Content[0], budget)
	case yaml.AliasNode:
		return plain(n.Alias, budget)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			val, err := plain(n.Content[i+1], budget)
			if err != nil {
				return nil, err
			}
			m[k] = val
		}
		v = m
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			val, err := plain(c, budget)
			if err != nil {
				return nil, err
			}
			s = append(s, val)
		}
		v = s
	case yaml.ScalarNode:
		if strings.HasPrefix(n.Tag, "!!") || n.Tag == "" {
			if err := n.Decode(&v); err != nil {
				return nil, err
			}
			return v, nil
		}
		v = n.Value
	default:
		return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
	}
	if !strings.HasPrefix(n.Tag, "!") || strings.HasPrefix(n.Tag, "!!") {
		return v, nil
	}
	// A short-form intrinsic: !Ref X, !Sub "...", !GetAtt A.B, !Join [...], ...
	fn := strings.TrimPrefix(n.Tag, "!")
	switch fn {
	case "Ref", "Condition":
		return map[string]any{fn: v}, nil
	case "GetAtt":
		if s, ok := v.(string); ok {
			res, attr, found := strings.Cut(s, ".")
			if !found {
				return nil, fmt.Errorf("line %d: !GetAtt %q is not Resource.Attribute", n.Line, s)
			}
			v = []any{res, attr}
		}
	}
	return map[string]any{"Fn::" + fn: v}, nil
}
