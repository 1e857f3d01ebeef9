package metrics_test

import (
	"bytes"
	"encoding/json"
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
