package metrics_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/eventfold/eventfold/internal/metrics"
)

func TestEmitWritesOneEMFLine(t *testing.T) {
	var buf bytes.Buffer
	e := metrics.New(&buf)
	if err := e.Emit(map[string]string{"Consumer": "projector"}, map[string]metrics.Value{
		"EventsProjected": {3, metrics.Count}, "LagMs": {120, metrics.Milliseconds},
	}); err != nil {
		t.Fatal(err)
	}
	var line struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Consumer        string
		EventsProjected float64
		LagMs           float64
	}
	if err := json.Unmarshal(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), &line); err != nil {
		t.Fatalf("%s: %v", buf.String(), err)
	}
	m := line.AWS.CloudWatchMetrics
	if line.AWS.Timestamp == 0 || len(m) != 1 || m[0].Namespace != "eventfold" || m[0].Dimensions[0][0] != "Consumer" ||
		len(m[0].Metrics) != 2 || m[0].Metrics[0].Name != "EventsProjected" || m[0].Metrics[1].Unit != "Milliseconds" ||
		line.Consumer != "projector" || line.EventsProjected != 3 || line.LagMs != 120 {
		t.Fatalf("EMF line %s", buf.String())
	}
	if bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("want exactly one line: %q", buf.String())
	}
}

func TestWithAddsTheStackToEveryLine(t *testing.T) {
	var buf bytes.Buffer
	e := metrics.New(&buf).With(metrics.DimStack, "prod")
	if err := e.Emit(map[string]string{"Consumer": "projector"}, map[string]metrics.Value{"Parked": {1, metrics.Count}}); err != nil {
		t.Fatal(err)
	}
	if err := e.Emit(nil, map[string]metrics.Value{"EventsAppended": {2, metrics.Count}}); err != nil {
		t.Fatal(err)
	}
	points, err := metrics.Decode(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Parked[Consumer Stack]", "EventsAppended[Stack]"}
	if len(points) != len(want) {
		t.Fatalf("points %+v, want %v", points, want)
	}
	for i, p := range points {
		if p.Metric.Key() != want[i] || p.Dims[metrics.DimStack] != "prod" || p.Namespace != metrics.Namespace {
			t.Errorf("point %d: %+v, want %s in stack prod", i, p, want[i])
		}
	}
	if err := metrics.Check(points, []metrics.Metric{{Name: "Parked", Dimensions: []string{"Stack", "Consumer"}}}); !errors.Is(err, metrics.ErrUndeclared) ||
		!strings.Contains(err.Error(), "EventsAppended[Stack]") || strings.Contains(err.Error(), "Parked") {
		t.Errorf("Check = %v, want only EventsAppended[Stack] undeclared", err)
	}
}

func TestDecodeRefusesMalformedEMF(t *testing.T) {
	for name, line := range map[string]string{
		"a metric without its value":    `{"_aws":{"CloudWatchMetrics":[{"Namespace":"eventfold","Dimensions":[["Stack"]],"Metrics":[{"Name":"Parked"}]}]},"Stack":"s"}`,
		"a dimension without its value": `{"_aws":{"CloudWatchMetrics":[{"Namespace":"eventfold","Dimensions":[["Stack"]],"Metrics":[{"Name":"Parked"}]}]},"Parked":1}`,
	} {
		if _, err := metrics.Decode([]byte(line + "\n")); err == nil {
			t.Errorf("%s: Decode accepted %s", name, line)
		}
	}
	if p, err := metrics.Decode([]byte(`{"level":"INFO","msg":"batch"}` + "\n")); err != nil || len(p) != 0 {
		t.Errorf("a log line: %v, %v; want skipped", p, err)
	}
}
