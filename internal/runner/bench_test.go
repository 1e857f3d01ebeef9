package runner_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/httpapi"
	"github.com/eventfold/eventfold/internal/idempotency"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/runner"
	"github.com/eventfold/eventfold/internal/store"
)

// BenchmarkHTTPThroughRunner interleaves a deposit sent over HTTP through the runner (API Gateway
// emulation, Runtime API, the commands Lambda process) and the same deposit given to the same
// handler code in process, on the same DynamoDB Local and tables, and reports the ratio
// (in-process time / runner time) and the runner's overhead per request.
func BenchmarkHTTPThroughRunner(b *testing.B) {
	root, _ := awstest.RepoRoot()
	r := mustStart(b, filepath.Join(root, "template.yaml"), nil, 1)
	h := inProcess(b, r.Env().Refs)
	ctx := context.Background()
	token, _ := awstest.SignIn(b, r.Env().Refs["UserPool"], r.Env().Refs["UserPoolClient"], "bench")
	auth := []string{"Authorization", "Bearer " + token} // the same on every request
	// In process, the handler gets what API Gateway would pass it for that token: its claims.
	var claims struct{ Sub string }
	if raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1]); err != nil || json.Unmarshal(raw, &claims) != nil {
		b.Fatalf("the token's claims: %v", err)
	}
	caller := &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{
		Claims: map[string]string{"sub": claims.Sub, "token_use": "access", "scope": "aws.cognito.signin.user.admin"},
		Scopes: []string{"aws.cognito.signin.user.admin"},
	}}
	open := func() string {
		resp, _ := call(b, "POST", r.URL()+"/accounts", "application/json", []byte(`{"currency":"EUR"}`), auth...)
		if resp.StatusCode != 201 {
			b.Fatalf("open account: %v", resp)
		}
		return strings.TrimPrefix(resp.Header.Get("Location"), "/accounts/")
	}
	viaRunner, inProc := open(), open()
	client := &http.Client{}
	deposit, _ := http.NewRequest("POST", r.URL()+"/accounts/"+viaRunner+"/deposits", nil)
	deposit.Header.Set("Content-Type", "application/json")
	deposit.Header.Set(auth[0], auth[1])
	var tRunner, tProc time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		req := deposit.Clone(ctx)
		req.Body, req.ContentLength = io.NopCloser(strings.NewReader(`{"amount":1}`)), 12
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("deposit through the runner: %v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t1 := time.Now()
		out, err := h.Handle(ctx, events.APIGatewayV2HTTPRequest{
			RouteKey: "POST /accounts/{id}/deposits", RawPath: "/accounts/" + inProc + "/deposits",
			Headers: map[string]string{"content-type": "application/json"}, PathParameters: map[string]string{"id": inProc},
			Body: `{"amount":1}`, RequestContext: events.APIGatewayV2HTTPRequestContext{Authorizer: caller},
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
	key := []byte("in-process benchmark email hash key, 32 bytes or more")
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

// BenchmarkFulfilmentThroughRunner measures an order's way from POST /orders to confirmed
// through the runner on template.yaml, as `make run` serves it: one order of one line at a
// time, each placed at a random point of the pollers' cycle, from a rich account of stock in
// hand. It reports p50 and p99 of two ends, measured from the moment the POST is sent:
//   - store: OrderConfirmed is in the event store (a Query of the order's stream through the
//     SDK, every few milliseconds);
//   - read: GET /orders/{id} shows it confirmed (the read model, one stream hop further).
//
// and, to tell the hops apart, p50 of: the POST itself; the saga's stream hop (the POST's
// answer to the saga's invocation start); the saga's run (its invocation start to
// OrderConfirmed seen in the store); the store to the read model (the projector's stream hop,
// its write, the GET); and DynamoDB Local's own latency in the same run (query: the polling
// Query), the yardstick of the rest.
//
// Which hops dominate: two stream hops, the OrderPlaced reaching the saga and the
// OrderConfirmed reaching the projector, each waiting for the next poll of its shard, every 250
// ms (pollInterval in poll.go, as Lambda polls about four times a second): 0 to 250 ms, 125 ms
// on average, plus the GetRecords. Between them the saga runs the whole flow in one
// invocation: 16 DynamoDB requests, 14 of them in sequence (the run's load and FulfilmentStarted;
// the reservation's three; the reply; the charge's three; the reply; the confirm's three, beside
// the commit's two; the last reply), plus the two scheduler calls and a KMS Decrypt on the way
// (BenchmarkFulfilmentRequests in internal/app counts them). So the saga's run is about 17
// request latencies. The projector's hop is the poll wait plus its batch: the flow's events
// (the order's, the item's, the account's, the run's), applied in order, one conditional write
// each, OrderConfirmed among the last. On an idle DynamoDB Local (a few ms a request) the two
// polls dominate; on a loaded one (tens of ms a request, query-p50-ms says) the saga's run and
// the projector's batch do. With 20 iterations, p99 is the slowest order.
func BenchmarkFulfilmentThroughRunner(b *testing.B) {
	r := startFulfilment(b, "15m")
	s := newShop(b, r)
	sku := fmt.Sprintf("BENCH-%d", time.Now().UnixNano())
	s.stock(sku, 1000000)
	rich := s.account(1_000_000_000)
	client := awstest.DynamoDB(b)
	table := r.Env().Refs["EventsTable"]
	ctx := context.Background()
	var queries []time.Duration // DynamoDB Local's latency, in the same run: the yardstick
	confirmedInStore := func(id string) bool {
		t0 := time.Now()
		out, err := client.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(table),
			KeyConditionExpression:    aws.String("#pk = :s"),
			ExpressionAttributeNames:  map[string]string{"#pk": store.AttrStream},
			ExpressionAttributeValues: map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: "order-" + id}}})
		if err != nil {
			b.Fatal(err)
		}
		queries = append(queries, time.Since(t0))
		for _, item := range out.Items {
			if e, err := store.DecodeItem(item); err == nil && e.Type == domain.TypeOrderConfirmed {
				return true
			}
		}
		return false
	}
	confirmedInReadModel := func(id string) bool {
		resp, out := callAs(b, s.user, "GET", r.URL()+"/orders/"+id, "", nil)
		var m map[string]any
		json.Unmarshal(out, &m)
		return resp.StatusCode == 200 && m["status"] == "confirmed"
	}
	await := func(id, what string, since time.Time, cond func(string) bool) time.Duration {
		deadline := since.Add(30 * time.Second)
		for !cond(id) {
			if time.Now().After(deadline) {
				b.Fatalf("order %s: not confirmed in the %s within 30 s", id, what)
			}
			time.Sleep(2 * time.Millisecond)
		}
		return time.Since(since)
	}
	var inStore, inRead, posted []time.Duration
	type placed struct {
		id       string
		answered time.Time
	}
	var orders []placed
	b.ResetTimer()
	for range b.N {
		// Place at a random point of the poll cycle, not right after the last invocation.
		time.Sleep(rand.N(300 * time.Millisecond))
		sent := time.Now()
		id := s.order(rich, line(sku, 1, 100))
		answered := time.Now()
		posted = append(posted, answered.Sub(sent))
		orders = append(orders, placed{id, answered})
		inStore = append(inStore, await(id, "event store", sent, confirmedInStore))
		inRead = append(inRead, await(id, "read model", sent, confirmedInReadModel))
	}
	b.StopTimer()
	var sagaHop, sagaRun, readHop []time.Duration
	for i, o := range orders {
		if at, ok := invokedAt(r, "SagaFunction", "order-"+o.id); ok {
			sagaHop = append(sagaHop, at.Sub(o.answered))
			sagaRun = append(sagaRun, inStore[i]-posted[i]-at.Sub(o.answered))
		}
		readHop = append(readHop, inRead[i]-inStore[i])
	}
	ms := func(d []time.Duration, q int) float64 {
		if len(d) == 0 {
			return 0
		}
		d = slices.Clone(d)
		slices.Sort(d)
		return float64(d[len(d)*q/100].Microseconds()) / 1e3
	}
	b.ReportMetric(ms(inStore, 50), "store-p50-ms")
	b.ReportMetric(ms(inStore, 99), "store-p99-ms")
	b.ReportMetric(ms(inRead, 50), "read-p50-ms")
	b.ReportMetric(ms(inRead, 99), "read-p99-ms")
	b.ReportMetric(ms(posted, 50), "post-p50-ms")
	b.ReportMetric(ms(sagaHop, 50), "saga-hop-p50-ms")
	b.ReportMetric(ms(sagaRun, 50), "saga-run-p50-ms")
	b.ReportMetric(ms(readHop, 50), "store-to-read-p50-ms")
	b.ReportMetric(ms(queries, 50), "query-p50-ms")
}
