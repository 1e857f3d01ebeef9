package runner_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/httpapi"
	"github.com/eventfold/eventfold/internal/idempotency"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/runner"
	"github.com/eventfold/eventfold/internal/store"
)

const localKey = "bG9jYWwtb25seTogZXZlbnRmb2xkIGRldiBlbWFpbCBoYXNoIGtleQ=="

// BenchmarkHTTPThroughRunner interleaves a deposit sent over HTTP through the runner (API Gateway
// emulation, Runtime API, the commands Lambda process) and the same deposit given to the same
// handler code in process, on the same DynamoDB Local and tables, and reports the ratio
// (in-process time / runner time) and the runner's overhead per request.
func BenchmarkHTTPThroughRunner(b *testing.B) {
	root, _ := awstest.RepoRoot()
	r := mustStart(b, filepath.Join(root, "template.yaml"), map[string]string{"EmailHashKey": localKey}, 1)
	h := inProcess(b, r.Env().Refs)
	ctx := context.Background()
	open := func() string {
		resp, err := http.Post(r.URL()+"/accounts", "application/json", strings.NewReader(`{"ownerId":"o","currency":"EUR"}`))
		if err != nil || resp.StatusCode != 201 {
			b.Fatalf("open account: %v %v", resp, err)
		}
		defer resp.Body.Close()
		return strings.TrimPrefix(resp.Header.Get("Location"), "/accounts/")
	}
	viaRunner, inProc := open(), open()
	client := &http.Client{}
	var tRunner, tProc time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		resp, err := client.Post(r.URL()+"/accounts/"+viaRunner+"/deposits", "application/json", strings.NewReader(`{"amount":1}`))
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("deposit through the runner: %v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t1 := time.Now()
		out, err := h.Handle(ctx, events.APIGatewayV2HTTPRequest{
			RouteKey: "POST /accounts/{id}/deposits", RawPath: "/accounts/" + inProc + "/deposits",
			Headers: map[string]string{"content-type": "application/json"}, PathParameters: map[string]string{"id": inProc},
			Body: `{"amount":1}`,
		})
		if err != nil || out.StatusCode != 200 {
			b.Fatalf("deposit in process: %+v %v", out, err)
		}
		tProc += time.Since(t1)
		tRunner += t1.Sub(t0)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(tRunner.Nanoseconds())/n, "runner-ns/req")
	b.ReportMetric(float64(tProc.Nanoseconds())/n, "inproc-ns/req")
	b.ReportMetric(float64(tRunner-tProc)/n/1e3, "overhead-µs/req")
	b.ReportMetric(float64(tProc)/float64(tRunner), "inproc/runner")
}

// BenchmarkStreamLatency writes items one at a time to a table whose stream feeds a function
// (batching window 0), each at a random moment, and measures the time from the write's return to the invocation's start:
// Lambda polls a shard about four times a second, so the figure is dominated by that interval.
func BenchmarkStreamLatency(b *testing.B) {
	r := mustStart(b, "testdata/streams.yaml", nil, 1)
	client := awstest.DynamoDB(b)
	table := r.Env().Refs["FilterTable"]
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < 40; j++ {
			key := fmt.Sprintf("lat-%d-%d", i, j)
			// Write at a random point of the poll cycle, not right after the last invocation.
			time.Sleep(rand.N(300 * time.Millisecond))
			put(b, client, table, key, "ok", "keep")
			wrote := time.Now()
			deadline := wrote.Add(10 * time.Second)
			for {
				if at, ok := invokedAt(r, "FilterFunction", key); ok {
					lat = append(lat, at.Sub(wrote))
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("%s was not delivered within 10s", key)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms")
}

// invokedAt is when the first invocation of fn carrying key started.
func invokedAt(r *runner.Runner, fn, key string) (time.Time, bool) {
	invs := r.Invocations()
	for i, b := range batches(r, fn) {
		for _, k := range b.keys {
			if k == key {
				return invs[indexOf(invs, fn, i)].At, true
			}
		}
	}
	return time.Time{}, false
}

// indexOf maps the i-th invocation of fn to its index among all invocations.
func indexOf(invs []runner.Invocation, fn string, i int) int {
	for j, inv := range invs {
		if inv.Function == fn {
			if i == 0 {
				return j
			}
			i--
		}
	}
	return -1
}

// inProcess wires the commands handler in this process as functions/commands does, on the
// tables named by refs.
func inProcess(b *testing.B, refs map[string]string) *httpapi.Handler {
	client := awstest.DynamoDB(b)
	reg, err := command.Registry()
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.New(client, store.Config{EventsTable: refs["EventsTable"], SnapshotsTable: refs["SnapshotsTable"], ClaimsTable: refs["ClaimsTable"], Registry: reg})
	if err != nil {
		b.Fatal(err)
	}
	key, _ := base64.StdEncoding.DecodeString(localKey)
	cmds, err := command.New(command.Config{Store: st, EmailKey: key})
	if err != nil {
		b.Fatal(err)
	}
	idem, err := idempotency.New(idempotency.Config{API: client, Table: refs["IdempotencyTable"]})
	if err != nil {
		b.Fatal(err)
	}
	h, err := httpapi.New(httpapi.Config{Commands: cmds, Idempotency: idem,
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), HashKey: key})
	if err != nil {
		b.Fatal(err)
	}
	return h
}
