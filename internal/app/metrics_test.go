package app_test

import (
	"bytes"
	"testing"

	"github.com/eventfold/eventfold/internal/app"
	"github.com/eventfold/eventfold/internal/metrics"
)

func TestMetricsFromEnv(t *testing.T) {
	if _, err := app.MetricsFromEnv(func(string) string { return "" }, &bytes.Buffer{}); err == nil {
		t.Fatal("no METRICS_STACK: no error; the stack's alarms would see none of the function's metrics")
	}
	var buf bytes.Buffer
	m, err := app.MetricsFromEnv(func(k string) string { return map[string]string{"METRICS_STACK": "prod"}[k] }, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Emit(nil, map[string]metrics.Value{"X": {Value: 1, Unit: metrics.Count}}); err != nil {
		t.Fatal(err)
	}
	if p, err := metrics.Decode(buf.Bytes()); err != nil || len(p) != 1 || p[0].Dims[metrics.DimStack] != "prod" {
		t.Fatalf("points %+v, %v; want one in stack prod", p, err)
	}
}
