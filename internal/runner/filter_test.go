package runner

import (
	"encoding/json"
	"testing"
)

func TestFilterPatterns(t *testing.T) {
	doc := map[string]any{}
	json.Unmarshal([]byte(`{"eventName":"INSERT","dynamodb":{"NewImage":{"kind":{"S":"also-yes"},"n":{"N":"5"}},"Keys":{"pk":{"S":"a"}}},"num":7}`), &doc)
	for _, tc := range []struct {
		pattern string
		want    bool
	}{
		{`{"eventName":["INSERT"]}`, true},
		{`{"eventName":["MODIFY","REMOVE"]}`, false},
		{`{"dynamodb":{"NewImage":{"kind":{"S":[{"prefix":"also-"}]}}}}`, true},
		{`{"dynamodb":{"NewImage":{"kind":{"S":[{"suffix":"yes"}]}}}}`, true},
		{`{"dynamodb":{"NewImage":{"kind":{"S":[{"anything-but":["also-yes"]}]}}}}`, false},
		{`{"dynamodb":{"NewImage":{"missing":[{"exists":false}]}}}`, true},
		{`{"dynamodb":{"NewImage":{"kind":[{"exists":true}]}}}`, true},
		{`{"num":[{"numeric":[">",5,"<=",7]}]}`, true},
		{`{"num":[{"numeric":[">",7]}]}`, false},
		{`{"eventName":"INSERT"}`, false}, // a leaf must be a list
		{`{"dynamodb":{"OldImage":{"kind":{"S":["x"]}}}}`, false},
	} {
		var p map[string]any
		if err := json.Unmarshal([]byte(tc.pattern), &p); err != nil {
			t.Fatal(err)
		}
		if got := matchPattern(p, doc); got != tc.want {
			t.Errorf("pattern %s = %v, want %v", tc.pattern, got, tc.want)
		}
	}
}
