// Package metrics writes CloudWatch Embedded Metric Format (EMF) lines: JSON log lines that
// CloudWatch Logs turns into metrics, with no API call and no agent in Lambda.
//
// Every metric of a deployed function carries the dimension DimStack, the CloudFormation stack
// that emitted it (METRICS_STACK, which template.yaml sets to AWS::StackName): two stacks in one
// account (staging and production) then never mix in one alarm. A CloudWatch alarm names a
// metric by namespace, name and its exact set of dimensions, so the packages that emit metrics
// declare what they emit ([Metric]) and tests hold the emitted lines and template.yaml's alarms
// to those declarations.
package metrics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of eventfold's metrics.
const Namespace = "eventfold"

// DimStack is the dimension every eventfold metric of a deployed function carries: the name of
// the stack that emitted it.
const DimStack = "Stack"

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

// Metric is a metric as CloudWatch knows it: a name under Namespace and the names of its
// dimensions, sorted. An alarm must name exactly these dimensions to see its values.
type Metric struct {
	Name       string
	Dimensions []string
}

// Key is m as one comparable string: "Name{Dim1,Dim2}".
func (m Metric) Key() string {
	d := slices.Clone(m.Dimensions)
	sort.Strings(d)
	return fmt.Sprintf("%s%v", m.Name, d)
}

// Emitter writes EMF lines to w, one per Emit, whole lines even when used concurrently.
type Emitter struct {
	mu   *sync.Mutex
	w    io.Writer
	now  func() time.Time
	dims map[string]string
}

// New returns an emitter writing to w (stdout in a Lambda function).
func New(w io.Writer) *Emitter { return &Emitter{mu: new(sync.Mutex), w: w, now: time.Now} }

// With returns an emitter that writes to e's writer, adding the dimension name=value to every
// line (a dimension Emit is given wins). Lines of e and of the emitter With returns never
// interleave.
func (e *Emitter) With(name, value string) *Emitter {
	dims := maps.Clone(e.dims)
	if dims == nil {
		dims = map[string]string{}
	}
	dims[name] = value
	return &Emitter{mu: e.mu, w: e.w, now: e.now, dims: dims}
}

// Emit writes one EMF line: the values, under the given dimensions (name -> value) and those of
// With.
func (e *Emitter) Emit(dims map[string]string, values map[string]Value) error {
	all := maps.Clone(e.dims)
	if all == nil {
		all = map[string]string{}
	}
	maps.Copy(all, dims)
	names := slices.Sorted(maps.Keys(all))
	type metric struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	var defs []metric
	line := map[string]any{}
	for k, v := range all {
		line[k] = v
	}
	for _, k := range slices.Sorted(maps.Keys(values)) {
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

// Point is one value of a metric read back from an EMF line by Decode.
type Point struct {
	Namespace string
	Metric    Metric
	// Dims holds the dimensions' values.
	Dims  map[string]string
	Value float64
	Unit  string
}

// Decode reads the EMF lines of b (lines that are not EMF, such as slog's, are skipped) and
// returns their values, one Point per metric and dimension set. It returns an error for a line
// that claims to be EMF and is not well formed: a metric without its value, a dimension
// without its value.
func Decode(b []byte) ([]Point, error) {
	var out []Point
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		var line map[string]json.RawMessage
		if json.Unmarshal(sc.Bytes(), &line) != nil || line["_aws"] == nil {
			continue
		}
		var aws struct {
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		}
		if err := json.Unmarshal(line["_aws"], &aws); err != nil {
			return nil, fmt.Errorf("line %d: _aws: %w", n, err)
		}
		for _, d := range aws.CloudWatchMetrics {
			for _, set := range d.Dimensions {
				vals := map[string]string{}
				for _, name := range set {
					var v string
					if json.Unmarshal(line[name], &v) != nil {
						return nil, fmt.Errorf("line %d: dimension %s has no string value", n, name)
					}
					vals[name] = v
				}
				for _, m := range d.Metrics {
					var v float64
					if json.Unmarshal(line[m.Name], &v) != nil {
						return nil, fmt.Errorf("line %d: metric %s has no number", n, m.Name)
					}
					dims := slices.Clone(set)
					sort.Strings(dims)
					out = append(out, Point{Namespace: d.Namespace, Metric: Metric{Name: m.Name, Dimensions: dims}, Dims: vals, Value: v, Unit: m.Unit})
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// ErrUndeclared is returned, wrapped, by Check for a point whose metric is not declared.
var ErrUndeclared = errors.New("metric not declared")

// Check returns an error wrapping ErrUndeclared for every point not in eventfold's Namespace
// or whose name and dimension set are not among declared.
func Check(points []Point, declared []Metric) error {
	known := map[string]bool{}
	for _, m := range declared {
		known[m.Key()] = true
	}
	var errs []error
	for _, p := range points {
		if p.Namespace != Namespace || !known[p.Metric.Key()] {
			errs = append(errs, fmt.Errorf("%w: %s %s", ErrUndeclared, p.Namespace, p.Metric.Key()))
		}
	}
	return errors.Join(errs...)
}
