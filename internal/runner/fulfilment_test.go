package runner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/runner"
	"github.com/eventfold/eventfold/internal/store"
)

// startFulfilment runs template.yaml as `make run` does, with a short fulfilment timeout.
func startFulfilment(t testing.TB, timeout string) *runner.Runner {
	t.Helper()
	root, _ := awstest.RepoRoot()
	return mustStart(t, filepath.Join(root, "template.yaml"), map[string]string{
		"FulfilmentTimeout": timeout,
	}, 2)
}

// shop is a runner with stock and an account, driven over HTTP by one signed-in user (and the
// operator, who stocks the inventory).
type shop struct {
	t    testing.TB
	r    *runner.Runner
	user caller
}

func newShop(t testing.TB, r *runner.Runner) shop { return shop{t, r, userOf(t, r, "shopper")} }

func (s shop) post(path, body string, want int) map[string]any {
	s.t.Helper()
	return s.postAs(s.user, path, body, want)
}

// stock puts quantity of sku in stock, as an operator.
func (s shop) stock(sku string, quantity int) {
	s.t.Helper()
	s.postAs(operator, "/inventory/"+sku+"/stock", fmt.Sprintf(`{"quantity":%d}`, quantity), 200)
}

func (s shop) postAs(who caller, path, body string, want int) map[string]any {
	s.t.Helper()
	resp, out := callAs(s.t, who, "POST", s.r.URL()+path, "application/json", []byte(body))
	if resp.StatusCode != want {
		s.t.Fatalf("POST %s = %d %s", path, resp.StatusCode, out)
	}
	var m map[string]any
	json.Unmarshal(out, &m)
	return m
}

func (s shop) account(balance int) string {
	id := s.post("/accounts", `{"currency":"EUR"}`, 201)["id"].(string)
	s.post("/accounts/"+id+"/deposits", fmt.Sprintf(`{"amount":%d}`, balance), 200)
	return id
}

func (s shop) order(account string, lines ...string) string {
	body := `{"paymentAccountId":"` + account + `","currency":"EUR","lines":[` + strings.Join(lines, ",") +
		`],"shippingAddress":{"name":"Bo Berg","line1":"Hauptstraße 1","city":"Berlin","postalCode":"10115","country":"DE"}}`
	return s.post("/orders", body, 202)["id"].(string)
}

func line(sku string, quantity, price int) string {
	return fmt.Sprintf(`{"sku":%q,"quantity":%d,"unitPrice":%d}`, sku, quantity, price)
}

// await polls GET /orders/{id} until the order is no longer placed, and returns it.
func (s shop) await(id string, within time.Duration) map[string]any {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, out := callAs(s.t, s.user, "GET", s.r.URL()+"/orders/"+id, "", nil)
		var m map[string]any
		json.Unmarshal(out, &m)
		if resp.StatusCode == 200 && m["status"] != "placed" {
			return m
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("order %s after %v: %d %s", id, within, resp.StatusCode, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s shop) get(path string) map[string]any {
	s.t.Helper()
	resp, out := callAs(s.t, s.user, "GET", s.r.URL()+path, "", nil)
	if resp.StatusCode != 200 {
		s.t.Fatalf("GET %s = %d %s", path, resp.StatusCode, out)
	}
	var m map[string]any
	json.Unmarshal(out, &m)
	return m
}

// TestFulfilmentEndToEnd places orders over HTTP through the runner that `make run` starts,
// with the real functions on their stream triggers, and watches them confirm and cancel; one
// run waits on a charge that cannot be made, and its deadline, fired by the runner as the
// scheduler fires it, cancels it.
func TestFulfilmentEndToEnd(t *testing.T) {
	r := startFulfilment(t, "3s")
	s := newShop(t, r)
	sku := fmt.Sprintf("E2E-%d", time.Now().UnixNano())
	s.stock(sku, 3)
	rich, poor := s.account(10_000), s.account(50)

	confirmed := s.order(rich, line(sku, 2, 1000))
	tooMany := s.order(rich, line(sku, 5, 1000))
	broke := s.order(poor, line(sku, 1, 1000))
	for id, want := range map[string][2]string{
		confirmed: {"confirmed", ""}, tooMany: {"cancelled", "out-of-stock"}, broke: {"cancelled", "insufficient-funds"},
	} {
		o := s.await(id, 30*time.Second)
		if o["status"] != want[0] || fmt.Sprint(o["cancelReason"]) != want[1] && want[1] != "" {
			t.Errorf("order %s: %v, want %v", id, o, want)
		}
	}
	// The read models catch up with what the saga did: stock committed, money charged once.
	awaitField(t, s, "/accounts/"+rich+"?minVersion=3", "balance", 8000.0)
	awaitField(t, s, "/inventory/"+sku, "onHand", 1.0)
	awaitField(t, s, "/inventory/"+sku, "reserved", 0.0)
	run := s.get("/orders/" + confirmed + "/fulfilment")
	if run["step"] != "confirmed" || run["finished"] != true {
		t.Errorf("run of %s: %v", confirmed, run)
	}

	// A paying account whose stream cannot be read: the run waits in charging until its
	// deadline fires, then releases the stock and cancels.
	stuck := s.account(10_000)
	poison(t, r, "account-"+stuck)
	waiting := s.order(stuck, line(sku, 1, 1000))
	o := s.await(waiting, 30*time.Second)
	if o["status"] != "cancelled" || o["cancelReason"] != "timeout" {
		t.Fatalf("order %s: %v, want cancelled (timeout)", waiting, o)
	}
	awaitField(t, s, "/inventory/"+sku, "reserved", 0.0)
	fired := 0
	for _, inv := range r.Invocations() {
		if inv.Function == "SagaFunction" && inv.Trigger == "schedule" {
			fired++
		}
	}
	if fired == 0 {
		t.Errorf("the saga was never invoked by a schedule (%d invocations)", len(r.Invocations()))
	}
}

// poison appends an event of a type no program knows to stream, as a corrupted write would.
func poison(t *testing.T, r *runner.Runner, stream string) {
	t.Helper()
	client := awstest.DynamoDB(t)
	table := r.Env().Refs["EventsTable"]
	out, err := client.Query(context.Background(), &dynamodb.QueryInput{TableName: aws.String(table),
		KeyConditionExpression: aws.String("pk = :s"), ExpressionAttributeValues: map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: stream}}})
	if err != nil {
		t.Fatal(err)
	}
	item, err := store.EncodeItem(store.Event{ID: store.NewIDs(nil).New(), StreamID: stream, Version: int64(len(out.Items) + 1),
		Type: "NoSuchType", SchemaVersion: 1, RecordedAt: time.Now(), Data: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}
}

func awaitField(t *testing.T, s shop, path, field string, want float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, out := callAs(t, s.user, "GET", s.r.URL()+path, "", nil)
		var m map[string]any
		json.Unmarshal(out, &m)
		if resp.StatusCode == 200 && m[field] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %s is not %v after 20 s: %d %s", path, field, want, resp.StatusCode, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
