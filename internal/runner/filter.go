package runner

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/eventfold/eventfold/internal/ddbstream"
)

// matchPattern applies a Lambda event filter pattern (the EventBridge pattern syntax) to a
// record: every key of the pattern must match. A leaf is a list of alternatives: exact values
// (strings, numbers, booleans, null) or the operators prefix, suffix, exists, anything-but and
// numeric (=, <, <=, >, >=). Nested objects are matched recursively.
func matchPattern(pattern map[string]any, doc map[string]any) bool {
	for key, want := range pattern {
		got, present := doc[key]
		switch w := want.(type) {
		case map[string]any:
			sub, ok := got.(map[string]any)
			if !ok || !matchPattern(w, sub) {
				return false
			}
		case []any:
			if !matchAny(w, got, present) {
				return false
			}
		default:
			return false // a leaf must be a list
		}
	}
	return true
}

func matchAny(alternatives []any, got any, present bool) bool {
	for _, alt := range alternatives {
		if op, ok := alt.(map[string]any); ok {
			if matchOperator(op, got, present) {
				return true
			}
			continue
		}
		if present && equalJSON(alt, got) {
			return true
		}
	}
	return false
}

func matchOperator(op map[string]any, got any, present bool) bool {
	for name, arg := range op {
		switch name {
		case "exists":
			if b, _ := arg.(bool); b != present {
				return false
			}
		case "prefix":
			s, ok := got.(string)
			if !ok || !strings.HasPrefix(s, fmt.Sprint(arg)) {
				return false
			}
		case "suffix":
			s, ok := got.(string)
			if !ok || !strings.HasSuffix(s, fmt.Sprint(arg)) {
				return false
			}
		case "anything-but":
			if !present {
				return false
			}
			list, ok := arg.([]any)
			if !ok {
				list = []any{arg}
			}
			for _, v := range list {
				if equalJSON(v, got) {
					return false
				}
			}
		case "numeric":
			n, ok := got.(float64)
			conds, _ := arg.([]any)
			if !ok || len(conds)%2 != 0 {
				return false
			}
			for i := 0; i < len(conds); i += 2 {
				v, _ := conds[i+1].(float64)
				if !compare(fmt.Sprint(conds[i]), n, v) {
					return false
				}
			}
		default:
			return false
		}
	}
	return true
}

func compare(op string, n, v float64) bool {
	switch op {
	case "=":
		return n == v
	case "<":
		return n < v
	case "<=":
		return n <= v
	case ">":
		return n > v
	case ">=":
		return n >= v
	}
	return false
}

func equalJSON(a, b any) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case string, float64, bool:
		return a == b
	}
	return false
}

// matches applies the mapping's filters to a record: no filters, or any one matching.
func (r *Runner) matches(m mapping, rec types.Record) bool {
	if len(m.filters) == 0 {
		return true
	}
	var doc map[string]any
	json.Unmarshal(ddbstream.LambdaJSON(rec, m.streamARN), &doc)
	for _, f := range m.filters {
		if matchPattern(f, doc) {
			return true
		}
	}
	return false
}
