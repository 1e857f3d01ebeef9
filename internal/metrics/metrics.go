// Package metrics writes CloudWatch Embedded Metric Format (EMF) lines: JSON log lines that
// CloudWatch Logs turns into metrics, with no API call and no agent in Lambda.
package metrics

import (
	"encoding/json"
	"io"
	"sort"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of eventfold's metrics.
const Namespace = "eventfold"

// Units used by eventfold's metrics.
const (
	Count        = "Count"
	Milliseconds = "Milliseconds"
)

// Value is one metric's value and unit.
type Value struct {
	Value float64
	Unit  string
}

// Emitter writes EMF lines to w, one per Emit, whole lines even when used concurrently.
type Emitter struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// New returns an emitter writing to w (stdout in a Lambda function).
func New(w io.Writer) *Emitter { return &Emitter{w: w, now: time.Now} }

// Emit writes one EMF line: the values, under the given dimensions (name -> value).
func (e *Emitter) Emit(dims map[string]string, values map[string]Value) error {
	names := make([]string, 0, len(dims))
	for k := range dims {
		names = append(names, k)
	}
	sort.Strings(names)
	type metric struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	var defs []metric
	line := map[string]any{}
	for k, v := range dims {
		line[k] = v
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		defs = append(defs, metric{Name: k, Unit: values[k].Unit})
		line[k] = values[k].Value
	}
	line["_aws"] = map[string]any{
		"Timestamp": e.now().UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace":  Namespace,
			"Dimensions": [][]string{names},
			"Metrics":    defs,
		}},
	}
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err = e.w.Write(append(b, '\n'))
	return err
}
