package tools_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/consumer"
	"github.com/eventfold/eventfold/internal/metrics"
	"github.com/eventfold/eventfold/internal/saga"
	"github.com/eventfold/eventfold/internal/template"
)

// consumers names the consumer (the Consumer dimension of its metrics) of each function with a
// DynamoDB stream trigger. A new stream consumer must be named here, and so get its alarms.
var consumers = map[string]string{"ProjectorFunction": "projector", "SagaFunction": saga.Consumer}

// TestAlarmsCoverTheTemplate holds template.yaml's alarms and dashboard to what the template
// declares and the code emits, so that they do not drift when a function, queue, table or index
// is added, or a metric renamed. Each mutation of the template below must be caught.
func TestAlarmsCoverTheTemplate(t *testing.T) {
	parse := func(t *testing.T) *template.Template {
		t.Helper()
		tmpl, err := template.ParseFile("../template.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return tmpl
	}
	if p := alarmProblems(parse(t)); len(p) > 0 {
		t.Fatalf("template.yaml:\n%s", strings.Join(p, "\n"))
	}
	for _, tt := range []struct {
		name   string
		mutate func(*template.Template)
		want   string
	}{
		{"a function's errors alarm removed", func(tm *template.Template) { delete(tm.Resources, "QueriesFunctionErrorsAlarm") },
			"QueriesFunction has no AWS/Lambda Errors alarm"},
		{"a stream consumer's iterator age alarm removed", func(tm *template.Template) { delete(tm.Resources, "SagaFunctionIteratorAgeAlarm") },
			"SagaFunction has no AWS/Lambda IteratorAge alarm"},
		{"a queue's depth alarm removed", func(tm *template.Template) { delete(tm.Resources, "DeadlineDeadLetterQueueDepthAlarm") },
			"DeadlineDeadLetterQueue has no depth alarm"},
		{"a queue's depth alarm taking missing data as good", func(tm *template.Template) {
			tm.Resources["SagaStreamFailuresDepthAlarm"].Properties["TreatMissingData"] = "notBreaching"
		}, "SagaStreamFailuresDepthAlarm: TreatMissingData notBreaching, want ignore"},
		{"an index's throttle alarm removed", func(tm *template.Template) { delete(tm.Resources, "ReadModelsTableRunsByDeadlineThrottlesAlarm") },
			"ReadModelsTable index RunsByDeadline has no throttle alarm"},
		{"a table added without alarms", func(tm *template.Template) {
			tm.Resources["NewTable"] = template.Resource{Type: template.TableType, Properties: map[string]any{}}
		}, "NewTable has no throttle alarm"},
		{"a consumer's parked alarm removed", func(tm *template.Template) { delete(tm.Resources, "ProjectorFunctionParkedAlarm") },
			"projector has no eventfold Parked alarm"},
		{"an alarm without OKActions", func(tm *template.Template) { delete(tm.Resources["HttpApi5xxAlarm"].Properties, "OKActions") },
			"HttpApi5xxAlarm: OKActions"},
		{"a metric the code does not emit", func(tm *template.Template) {
			tm.Resources["SagaFunctionStuckAlarm"].Properties["MetricName"] = "RunsStuck"
		},
			"SagaFunctionStuckAlarm: eventfold RunsStuck[Consumer Stack] is not a metric the code emits"},
		{"an eventfold metric without its Stack", func(tm *template.Template) {
			p := tm.Resources["ProjectorFunctionLagAlarm"].Properties
			p["Dimensions"] = p["Dimensions"].([]any)[1:]
		}, "ProjectorFunctionLagAlarm: eventfold LagMs[Consumer] is not a metric the code emits"},
		{"a duration alarm past the timeout", func(tm *template.Template) {
			tm.Resources["CommandsFunctionDurationAlarm"].Properties["Threshold"] = 10000
		},
			"CommandsFunctionDurationAlarm: Maximum > 10000, want Maximum > 8000"},
		{"the functions' Stack dimension not the stack's name", func(tm *template.Template) {
			tm.Globals["Function"].(map[string]any)["Environment"].(map[string]any)["Variables"].(map[string]any)["METRICS_STACK"] = "eventfold"
		}, "METRICS_STACK is eventfold, want Ref:AWS::StackName"},
		{"a function's own METRICS_STACK", func(tm *template.Template) {
			tm.Resources["SagaFunction"].Properties["Environment"].(map[string]any)["Variables"].(map[string]any)["METRICS_STACK"] = "saga"
		}, "SagaFunction: METRICS_STACK is saga, want Ref:AWS::StackName"},
		{"an alarm that fires when all is well", func(tm *template.Template) {
			tm.Resources["ProjectorFunctionParkedAlarm"].Properties["ComparisonOperator"] = "LessThanThreshold"
		}, "ProjectorFunctionParkedAlarm: ComparisonOperator LessThanThreshold"},
		{"a dashboard metric the code does not emit", func(tm *template.Template) {
			p := tm.Resources["Dashboard"].Properties
			p["DashboardBody"] = map[string]any{"Fn::Sub": strings.Replace(p["DashboardBody"].(map[string]any)["Fn::Sub"].(string), `"FulfilmentsCancelled"`, `"RunsCancelled"`, 1)}
		}, "Dashboard: eventfold RunsCancelled[Consumer Stack] is not a metric the code emits"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := parse(t)
			tt.mutate(tmpl)
			p := alarmProblems(tmpl)
			if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, tt.want) }) {
				t.Errorf("problems %q, want one with %q", p, tt.want)
			}
		})
	}
}

// watched is a metric an alarm or a dashboard names: its namespace, name and dimensions (name
// -> value, an intrinsic written as "Ref:X" or "GetAtt:X.Y").
type watched struct {
	by, namespace, name, stat string
	dims                      map[string]string
}

func (w watched) metric() metrics.Metric {
	return metrics.Metric{Name: w.name, Dimensions: slices.Sorted(maps.Keys(w.dims))}
}

// alarmProblems returns what is missing or wrong in tmpl's alarms and dashboard.
func alarmProblems(tmpl *template.Template) []string {
	var problems []string
	bad := func(f string, a ...any) { problems = append(problems, fmt.Sprintf(f, a...)) }
	declared := map[string]bool{}
	for _, m := range slices.Concat(consumer.Metrics(), saga.Metrics(), command.Metrics()) {
		declared[m.Key()] = true
	}
	var all []watched
	for _, id := range tmpl.OfType("AWS::CloudWatch::Alarm") {
		p := tmpl.Resources[id].Properties
		for _, k := range []string{"AlarmActions", "OKActions"} {
			if acts, _ := p[k].([]any); !slices.ContainsFunc(acts, func(a any) bool { return value(a) == "Ref:AlarmTopic" }) {
				bad("%s: %s does not name AlarmTopic", id, k)
			}
		}
		if p["TreatMissingData"] == nil {
			bad("%s: no TreatMissingData", id)
		}
		// Every alarm watches something bad growing (errors, throttles, age, depth, latency):
		// another operator would sit in ALARM while all is well, and never tell of a fault.
		if op := value(p["ComparisonOperator"]); op != "GreaterThanThreshold" && op != "GreaterThanOrEqualToThreshold" {
			bad("%s: ComparisonOperator %s, want GreaterThanThreshold", id, op)
		}
		ws := alarmMetrics(id, p)
		if len(ws) == 0 {
			bad("%s: names no metric", id)
		}
		all = append(all, ws...)
	}
	if ids := tmpl.OfType("AWS::CloudWatch::Dashboard"); len(ids) == 0 {
		bad("no dashboard")
	} else {
		for _, id := range ids {
			ws, err := dashboardMetrics(id, tmpl.Resources[id].Properties)
			if err != nil {
				bad("%s: %v", id, err)
			}
			all = append(all, ws...)
		}
	}
	for _, w := range all {
		if w.namespace != metrics.Namespace {
			continue
		}
		if !declared[w.metric().Key()] {
			bad("%s: eventfold %s is not a metric the code emits", w.by, w.metric().Key())
		} else if s := w.dims[metrics.DimStack]; s != "Ref:AWS::StackName" && s != "${AWS::StackName}" {
			bad("%s: eventfold %s of stack %q, want this stack's", w.by, w.name, s)
		}
	}
	alarms := func(ns, name string, dims map[string]string) []watched {
		var out []watched
		for _, w := range all {
			if !strings.HasSuffix(w.by, "Alarm") || w.namespace != ns || w.name != name || !maps.Equal(w.dims, dims) {
				continue
			}
			out = append(out, w)
		}
		return out
	}
	need := func(what, ns, name string, dims map[string]string) []watched {
		ws := alarms(ns, name, dims)
		if len(ws) == 0 {
			bad("%s has no %s %s alarm (dimensions %v)", what, ns, name, dims)
		}
		return ws
	}
	// The Stack dimension the functions emit (METRICS_STACK) is the one the alarms name: the
	// Globals' and any function's own, which SAM merges over it.
	stackVar := func(props map[string]any) (string, bool) {
		e, _ := props["Environment"].(map[string]any)
		v, _ := e["Variables"].(map[string]any)
		s, ok := v["METRICS_STACK"]
		return value(s), ok
	}
	global, _ := tmpl.Globals["Function"].(map[string]any)
	if s, _ := stackVar(global); s != "Ref:AWS::StackName" {
		bad("Globals: METRICS_STACK is %s, want Ref:AWS::StackName", s)
	}
	for _, fn := range tmpl.OfType("AWS::Serverless::Function") {
		if s, ok := stackVar(tmpl.Resources[fn].Properties); ok && s != "Ref:AWS::StackName" {
			bad("%s: METRICS_STACK is %s, want Ref:AWS::StackName", fn, s)
		}
	}
	timeout := 3.0 // Lambda's default
	if g, ok := tmpl.Globals["Function"].(map[string]any); ok && g["Timeout"] != nil {
		timeout = number(g["Timeout"])
	}
	for _, fn := range tmpl.OfType("AWS::Serverless::Function") {
		dims := map[string]string{"FunctionName": "Ref:" + fn}
		need(fn, "AWS/Lambda", "Errors", dims)
		need(fn, "AWS/Lambda", "Throttles", dims)
		limit := timeout
		if v, ok := tmpl.Resources[fn].Properties["Timeout"]; ok {
			limit = number(v)
		}
		for _, w := range need(fn, "AWS/Lambda", "Duration", dims) {
			p := tmpl.Resources[w.by].Properties
			if got, want := number(p["Threshold"]), 0.8*limit*1000; w.stat != "Maximum" || got != want {
				bad("%s: %s > %v, want Maximum > %v (80%% of the %v s timeout)", w.by, w.stat, got, want, limit)
			}
		}
		if len(tmpl.Events(fn, "DynamoDB")) == 0 {
			continue
		}
		need(fn, "AWS/Lambda", "IteratorAge", dims)
		name, ok := consumers[fn]
		if !ok {
			bad("%s reads a stream: name its consumer in tools/alarms_test.go", fn)
			continue
		}
		cdims := map[string]string{metrics.DimStack: "Ref:AWS::StackName", consumer.DimConsumer: name}
		for _, m := range []string{consumer.MetricParked, consumer.MetricFailures, consumer.MetricLagMs} {
			need(name, metrics.Namespace, m, cdims)
		}
	}
	need("saga", metrics.Namespace, saga.MetricFulfilmentsStuck, map[string]string{metrics.DimStack: "Ref:AWS::StackName", consumer.DimConsumer: saga.Consumer})
	for _, q := range tmpl.OfType("AWS::SQS::Queue") {
		ws := alarms("AWS/SQS", "ApproximateNumberOfMessagesVisible", map[string]string{"QueueName": "GetAtt:" + q + ".QueueName"})
		if len(ws) == 0 {
			bad("%s has no depth alarm", q)
		}
		// SQS stops publishing an inactive queue's metrics, messages or not: a depth alarm
		// that took missing data as good would turn OK over messages still waiting.
		for _, w := range ws {
			if m := tmpl.Resources[w.by].Properties["TreatMissingData"]; m != "ignore" && m != "breaching" {
				bad("%s: TreatMissingData %v, want ignore (SQS stops publishing an inactive queue's depth)", w.by, m)
			}
		}
	}
	for _, api := range tmpl.OfType("AWS::Serverless::HttpApi") {
		dims := map[string]string{"ApiId": "Ref:" + api, "Stage": "$default"}
		need(api, "AWS/ApiGateway", "5xx", dims)
		need(api, "AWS/ApiGateway", "Latency", dims)
	}
	throttled := func(what string, dims map[string]string) {
		r, w := alarms("AWS/DynamoDB", "ReadThrottleEvents", dims), alarms("AWS/DynamoDB", "WriteThrottleEvents", dims)
		if len(r) == 0 || len(w) == 0 {
			bad("%s has no throttle alarm (ReadThrottleEvents and WriteThrottleEvents, dimensions %v)", what, dims)
		}
	}
	for _, table := range tmpl.OfType(template.TableType) {
		throttled(table, map[string]string{"TableName": "Ref:" + table})
		gsis, _ := tmpl.Resources[table].Properties["GlobalSecondaryIndexes"].([]any)
		for _, g := range gsis {
			name := value(g.(map[string]any)["IndexName"])
			throttled(table+" index "+name, map[string]string{"TableName": "Ref:" + table, "GlobalSecondaryIndexName": name})
		}
	}
	sort.Strings(problems)
	return problems
}

// alarmMetrics returns the metrics alarm id watches: its one metric, or those of its metric math.
func alarmMetrics(id string, p map[string]any) []watched {
	stat := value(p["Statistic"]) + value(p["ExtendedStatistic"])
	if p["MetricName"] != nil {
		return []watched{{by: id, namespace: value(p["Namespace"]), name: value(p["MetricName"]), stat: stat, dims: dimensions(p["Dimensions"])}}
	}
	var out []watched
	ms, _ := p["Metrics"].([]any)
	for _, m := range ms {
		ms, _ := m.(map[string]any)["MetricStat"].(map[string]any)
		if ms == nil {
			continue
		}
		mm, _ := ms["Metric"].(map[string]any)
		out = append(out, watched{by: id, namespace: value(mm["Namespace"]), name: value(mm["MetricName"]), stat: value(ms["Stat"]), dims: dimensions(mm["Dimensions"])})
	}
	return out
}

func dimensions(v any) map[string]string {
	out := map[string]string{}
	ds, _ := v.([]any)
	for _, d := range ds {
		dm, _ := d.(map[string]any)
		out[value(dm["Name"])] = value(dm["Value"])
	}
	return out
}

// dashboardMetrics returns the metrics of a dashboard's widgets: each an array of namespace,
// name, then dimension names and values, and perhaps a map of options last.
func dashboardMetrics(id string, p map[string]any) ([]watched, error) {
	sub, _ := p["DashboardBody"].(map[string]any)
	text, ok := sub["Fn::Sub"].(string)
	if !ok {
		return nil, fmt.Errorf("DashboardBody is not a !Sub of a JSON text")
	}
	var body struct {
		Widgets []struct {
			Properties struct{ Metrics [][]any }
		}
	}
	if err := json.Unmarshal([]byte(text), &body); err != nil {
		return nil, fmt.Errorf("DashboardBody: %w", err)
	}
	var out []watched
	for _, w := range body.Widgets {
		for _, m := range w.Properties.Metrics {
			if len(m) > 0 {
				if _, opts := m[len(m)-1].(map[string]any); opts {
					m = m[:len(m)-1]
				}
			}
			if len(m) < 2 || len(m)%2 != 0 || slices.Contains(m, any("...")) {
				return nil, fmt.Errorf("metric %v: want namespace, name, then dimension names and values, in full", m)
			}
			x := watched{by: id, namespace: value(m[0]), name: value(m[1]), dims: map[string]string{}}
			for i := 2; i < len(m); i += 2 {
				x.dims[value(m[i])] = value(m[i+1])
			}
			out = append(out, x)
		}
	}
	return out, nil
}

// value is a scalar, or an intrinsic as "Ref:X" or "GetAtt:X.Y".
func value(v any) string {
	switch v := v.(type) {
	case map[string]any:
		if r, ok := v["Ref"]; ok {
			return "Ref:" + value(r)
		}
		if g, ok := v["Fn::GetAtt"].([]any); ok && len(g) == 2 {
			return "GetAtt:" + value(g[0]) + "." + value(g[1])
		}
		return fmt.Sprint(v)
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

func number(v any) float64 {
	var f float64
	fmt.Sscan(value(v), &f)
	return f
}
