package template

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Env gives values to the names intrinsic functions refer to: parameters and pseudo parameters
// (AWS::StackName, AWS::Region, ...) and the physical names and attributes of resources.
type Env struct {
	// Refs maps a name to what Ref returns for it: parameter values, pseudo parameters and
	// resources' physical IDs.
	Refs map[string]string
	// Attrs maps "LogicalID.Attribute" to what Fn::GetAtt returns.
	Attrs map[string]string
	// Lists maps the CommaDelimitedList parameters to their values: Ref gives a list for them.
	Lists map[string][]string
	// Conditions maps a condition's name to its value (see Template.EvalConditions), for Fn::If.
	Conditions map[string]bool

	conditionDefs map[string]any // while EvalConditions runs
}

// SplitList is the value a CommaDelimitedList parameter's text stands for: its items, split at
// commas and trimmed of spaces, as CloudFormation splits it; none for an empty text.
func SplitList(s string) []string {
	if strings.TrimSpace(s) == "" {
		return []string{}
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return parts
}

// ErrUnresolved is returned, wrapped, when a value refers to a name Env does not know or uses an
// intrinsic function Resolve does not support.
var ErrUnresolved = errors.New("unresolved intrinsic")

var subVar = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

// Resolve returns v with every intrinsic function (Ref, Fn::Sub, Fn::GetAtt, Fn::Join,
// Fn::Select, Fn::If and the condition functions Fn::Equals, Fn::Not, Fn::And, Fn::Or) replaced
// by its value. Fn::If resolves only the branch its condition picks. Ref AWS::NoValue removes
// the property or list item it is (as a whole value: nil). It fails on the first reference it
// cannot resolve.
func (e Env) Resolve(v any) (any, error) {
	r, err := e.resolve(v)
	if _, ok := r.(noValue); ok {
		return nil, err
	}
	return r, err
}

// noValue is what Ref AWS::NoValue resolves to until the map or list holding it drops it.
type noValue struct{}

func (e Env) resolve(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 1 {
			for k, arg := range v {
				if k == "Ref" && arg == "AWS::NoValue" {
					return noValue{}, nil
				}
				if k == "Ref" || strings.HasPrefix(k, "Fn::") {
					return e.call(k, arg)
				}
			}
		}
		out := make(map[string]any, len(v))
		for k, val := range v {
			r, err := e.resolve(val)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if _, ok := r.(noValue); !ok {
				out[k] = r
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(v))
		for _, val := range v {
			r, err := e.resolve(val)
			if err != nil {
				return nil, err
			}
			if _, ok := r.(noValue); !ok {
				out = append(out, r)
			}
		}
		return out, nil
	default:
		return v, nil
	}
}

// String resolves v and requires a string result.
func (e Env) String(v any) (string, error) {
	r, err := e.Resolve(v)
	if err != nil {
		return "", err
	}
	switch r := r.(type) {
	case string:
		return r, nil
	case int, int64, float64, bool:
		return fmt.Sprint(r), nil
	default:
		return "", fmt.Errorf("%w: expected a string, got %T", ErrInvalid, r)
	}
}

func (e Env) call(fn string, arg any) (any, error) {
	switch fn {
	case "Ref":
		name, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("%w: Ref takes a name", ErrInvalid)
		}
		if list, ok := e.Lists[name]; ok {
			out := make([]any, len(list))
			for i, s := range list {
				out[i] = s
			}
			return out, nil
		}
		if val, ok := e.Refs[name]; ok {
			return val, nil
		}
		return nil, fmt.Errorf("%w: Ref %s", ErrUnresolved, name)
	case "Fn::If":
		parts, ok := arg.([]any)
		if !ok || len(parts) != 3 {
			return nil, fmt.Errorf("%w: Fn::If takes [condition, value if true, value if false]", ErrInvalid)
		}
		name, _ := parts[0].(string)
		v, err := e.condition(name, map[string]bool{})
		if err != nil {
			return nil, err
		}
		if v {
			return e.resolve(parts[1])
		}
		return e.resolve(parts[2])
	case "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or":
		return e.evalCondition(map[string]any{fn: arg}, map[string]bool{})
	case "Fn::GetAtt":
		parts, ok := arg.([]any)
		if !ok || len(parts) != 2 {
			return nil, fmt.Errorf("%w: Fn::GetAtt takes [Resource, Attribute]", ErrInvalid)
		}
		key := fmt.Sprintf("%v.%v", parts[0], parts[1])
		if val, ok := e.Attrs[key]; ok {
			return val, nil
		}
		return nil, fmt.Errorf("%w: Fn::GetAtt %s", ErrUnresolved, key)
	case "Fn::Sub":
		return e.sub(arg)
	case "Fn::Join":
		parts, ok := arg.([]any)
		if !ok || len(parts) != 2 {
			return nil, fmt.Errorf("%w: Fn::Join takes [delimiter, [values]]", ErrInvalid)
		}
		sep, _ := parts[0].(string)
		list, err := e.Resolve(parts[1])
		if err != nil {
			return nil, err
		}
		items, ok := list.([]any)
		if !ok {
			return nil, fmt.Errorf("%w: Fn::Join values are not a list", ErrInvalid)
		}
		ss := make([]string, len(items))
		for i, it := range items {
			ss[i] = fmt.Sprint(it)
		}
		return strings.Join(ss, sep), nil
	case "Fn::Select":
		parts, ok := arg.([]any)
		if !ok || len(parts) != 2 {
			return nil, fmt.Errorf("%w: Fn::Select takes [index, [values]]", ErrInvalid)
		}
		list, err := e.Resolve(parts[1])
		if err != nil {
			return nil, err
		}
		items, _ := list.([]any)
		var i int
		if _, err := fmt.Sscan(fmt.Sprint(parts[0]), &i); err != nil || i < 0 || i >= len(items) {
			return nil, fmt.Errorf("%w: Fn::Select index %v out of range", ErrInvalid, parts[0])
		}
		return items[i], nil
	}
	return nil, fmt.Errorf("%w: %s is not supported", ErrUnresolved, fn)
}

func (e Env) sub(arg any) (any, error) {
	var (
		format string
		local  = map[string]string{}
	)
	switch a := arg.(type) {
	case string:
		format = a
	case []any:
		if len(a) != 2 {
			return nil, fmt.Errorf("%w: Fn::Sub takes a string or [string, {variables}]", ErrInvalid)
		}
		format, _ = a[0].(string)
		vars, _ := a[1].(map[string]any)
		for k, v := range vars {
			s, err := e.String(v)
			if err != nil {
				return nil, fmt.Errorf("Fn::Sub variable %s: %w", k, err)
			}
			local[k] = s
		}
	default:
		return nil, fmt.Errorf("%w: Fn::Sub takes a string or [string, {variables}]", ErrInvalid)
	}
	var firstErr error
	out := subVar.ReplaceAllStringFunc(format, func(m string) string {
		name := m[2 : len(m)-1]
		if v, ok := local[name]; ok {
			return v
		}
		if v, ok := e.Refs[name]; ok {
			return v
		}
		if v, ok := e.Attrs[name]; ok {
			return v
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("%w: ${%s} in Fn::Sub", ErrUnresolved, name)
		}
		return m
	})
	if firstErr != nil {
		return nil, firstErr
	}
	// ${!Literal} stands for the literal ${Literal}.
	return strings.ReplaceAll(out, "${!", "${"), nil
}

// condition returns the value of the named condition: from Conditions, or evaluated from its
// definition while EvalConditions runs. visiting holds the conditions being evaluated, to refuse
// a cycle.
func (e Env) condition(name string, visiting map[string]bool) (bool, error) {
	if v, ok := e.Conditions[name]; ok {
		return v, nil
	}
	def, ok := e.conditionDefs[name]
	if !ok {
		return false, fmt.Errorf("%w: condition %q", ErrUnresolved, name)
	}
	if visiting[name] {
		return false, fmt.Errorf("%w: condition %s refers to itself", ErrInvalid, name)
	}
	visiting[name] = true
	v, err := e.evalCondition(def, visiting)
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	delete(visiting, name)
	if e.Conditions != nil {
		e.Conditions[name] = v
	}
	return v, nil
}

// evalCondition evaluates a condition function, or {"Condition": name}.
func (e Env) evalCondition(v any, visiting map[string]bool) (bool, error) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return false, fmt.Errorf("%w: a condition must be Fn::Equals, Fn::Not, Fn::And, Fn::Or or Condition", ErrInvalid)
	}
	for fn, arg := range m {
		if fn == "Condition" {
			name, _ := arg.(string)
			return e.condition(name, visiting)
		}
		args, _ := arg.([]any)
		switch fn {
		case "Fn::Equals":
			if len(args) != 2 {
				return false, fmt.Errorf("%w: Fn::Equals takes [value, value]", ErrInvalid)
			}
			a, err := e.Resolve(args[0])
			if err != nil {
				return false, err
			}
			b, err := e.Resolve(args[1])
			if err != nil {
				return false, err
			}
			return fmt.Sprint(a) == fmt.Sprint(b), nil
		case "Fn::Not":
			if len(args) != 1 {
				return false, fmt.Errorf("%w: Fn::Not takes [condition]", ErrInvalid)
			}
			c, err := e.evalCondition(args[0], visiting)
			return !c, err
		case "Fn::And", "Fn::Or":
			if len(args) < 2 || len(args) > 10 {
				return false, fmt.Errorf("%w: %s takes 2 to 10 conditions", ErrInvalid, fn)
			}
			and := fn == "Fn::And"
			for _, a := range args {
				c, err := e.evalCondition(a, visiting)
				if err != nil {
					return false, err
				}
				if c != and {
					return c, nil
				}
			}
			return and, nil
		}
		return false, fmt.Errorf("%w: %s is not a condition function", ErrInvalid, fn)
	}
	return false, nil
}
