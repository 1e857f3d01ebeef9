package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/eventfold/eventfold/internal/app"
	"github.com/eventfold/eventfold/internal/auth"
	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/crypto"
	"github.com/eventfold/eventfold/internal/ddbstream"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/schedule"
	"github.com/eventfold/eventfold/internal/store"
	"github.com/eventfold/eventfold/internal/template"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// calls counts the calls of a wrapped AWS client by operation. It is safe for concurrent use.
type calls struct {
	mu  sync.Mutex
	ops []string
}

func (c *calls) add(op string) {
	c.mu.Lock()
	c.ops = append(c.ops, op)
	c.mu.Unlock()
}

func (c *calls) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := c.ops
	c.ops = nil
	return ops
}

// countingKMS is the KMS emulator's client, its calls counted.
type countingKMS struct {
	crypto.KMS
	calls
}

func (k *countingKMS) GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, o ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	k.add("GenerateDataKey")
	return k.KMS.GenerateDataKey(ctx, in, o...)
}

func (k *countingKMS) Decrypt(ctx context.Context, in *kms.DecryptInput, o ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	k.add("Decrypt")
	return k.KMS.Decrypt(ctx, in, o...)
}

// countingScheduler is moto's EventBridge Scheduler client, its calls counted.
type countingScheduler struct {
	schedule.API
	calls
}

func (s *countingScheduler) CreateSchedule(ctx context.Context, in *scheduler.CreateScheduleInput, o ...func(*scheduler.Options)) (*scheduler.CreateScheduleOutput, error) {
	s.add("CreateSchedule")
	return s.API.CreateSchedule(ctx, in, o...)
}

func (s *countingScheduler) DeleteSchedule(ctx context.Context, in *scheduler.DeleteScheduleInput, o ...func(*scheduler.Options)) (*scheduler.DeleteScheduleOutput, error) {
	s.add("DeleteSchedule")
	return s.API.DeleteSchedule(ctx, in, o...)
}

// fulfilment is the saga wired by app.Saga as the saga function wires it, on fresh tables of
// template.yaml in DynamoDB Local, the KMS emulator and moto's scheduler, with every DynamoDB
// request, KMS call and scheduler call it makes counted. Orders are placed through a command
// side of their own (another process, as the commands function is), whose requests are not
// counted and whose keyring the saga's does not share.
type fulfilment struct {
	tb    testing.TB
	env   template.Env
	raw   *dynamodb.Client // uncounted: setup, and reading what the stream would carry
	place *command.Service
	saga  *app.SagaSide
	ids   *store.IDs
	seq   int

	reqs  *awstest.Requests
	kms   *countingKMS
	sched *countingScheduler
}

func newFulfilment(tb testing.TB) *fulfilment {
	tb.Helper()
	ctx := context.Background()
	raw := awstest.DynamoDB(tb)
	env := awstest.MustTables(tb, raw)
	kmsClient := awstest.MustKeys(tb, env)
	schedClient := localaws.Scheduler(awstest.KMSEndpoint(tb))
	groups, err := localaws.CreateScheduleGroups(ctx, schedClient, awstest.MustTemplate(tb), env)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		for _, g := range groups {
			schedClient.DeleteScheduleGroup(context.Background(), &scheduler.DeleteScheduleGroupInput{Name: aws.String(g)})
		}
	})
	keys := app.KeysConfig{KeysTable: env.Refs["KeysTable"], DataKey: env.Refs["DataKeyAlias"]}
	place, err := app.Commands(app.CommandsConfig{EventsTable: env.Refs["EventsTable"], SnapshotsTable: env.Refs["SnapshotsTable"],
		ClaimsTable: env.Refs["ClaimsTable"], IdempotencyTable: env.Refs["IdempotencyTable"], KeysConfig: keys,
		EmailHashKey: []byte(strings.Repeat("k", 32))}, app.Clients{DynamoDB: raw, KMS: kmsClient}, discard, nil)
	if err != nil {
		tb.Fatal(err)
	}
	f := &fulfilment{tb: tb, env: env, raw: raw, place: place.Service, ids: store.NewIDs(nil), reqs: &awstest.Requests{},
		kms: &countingKMS{KMS: kmsClient}, sched: &countingScheduler{API: schedClient}}
	stack := env.Refs["AWS::StackName"]
	f.saga, err = app.Saga(app.SagaConfig{EventsTable: env.Refs["EventsTable"], SnapshotsTable: env.Refs["SnapshotsTable"],
		ParkingTable: env.Refs["ParkingTable"], KeysConfig: keys,
		Schedules: schedule.Config{Group: env.Refs["FulfilmentSchedules"],
			RoleARN:       "arn:aws:iam::" + localaws.Account + ":role/" + stack + "-SchedulerRole",
			DeadLetterARN: "arn:aws:sqs:" + localaws.Region + ":" + localaws.Account + ":" + stack + "-DeadlineDeadLetterQueue"}},
		app.Clients{DynamoDB: f.reqs.Client(tb), KMS: f.kms, Scheduler: f.sched}, discard, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

func (f *fulfilment) must(_ command.Result, err error) {
	f.tb.Helper()
	if err != nil {
		f.tb.Fatal(err)
	}
}

// placed is an order placed, with what it touches: its paying account and items.
type placed struct {
	id, account string
	skus        []string
}

// order sets up a new customer with a rich account of theirs and lines new items in stock, and
// places an order of one unit of each; none of it is counted.
func (f *fulfilment) order(lines int) placed {
	f.tb.Helper()
	ctx := context.Background()
	customer := f.ids.New()
	o := placed{id: f.ids.New(), account: f.ids.New()}
	f.must(f.place.OpenAccount(ctx, command.Meta{Caller: auth.User(customer)}, domain.OpenAccount{AccountID: o.account, OwnerID: customer, Currency: "EUR"}))
	f.must(f.place.Deposit(ctx, command.Meta{Caller: auth.User(customer)}, o.account, domain.Deposit{Amount: 1_000_000}))
	var ls []domain.OrderLine
	for i := range lines {
		sku := fmt.Sprintf("SKU-%s-%d", o.id, i)
		f.must(f.place.AddStock(ctx, command.Meta{Caller: auth.Operator("arn:aws:iam::123456789012:user/ops")}, domain.AddStock{SKU: sku, Quantity: 10}))
		ls = append(ls, domain.OrderLine{SKU: sku, Quantity: 1, UnitPrice: 100})
		o.skus = append(o.skus, sku)
	}
	f.must(f.place.PlaceOrder(ctx, command.Meta{CorrelationID: "corr-" + o.id, Caller: auth.User(customer)}, domain.PlaceOrder{OrderID: o.id, CustomerID: customer,
		PaymentAccountID: o.account, Currency: "EUR", Lines: ls,
		ShippingAddress: domain.Address{Name: "Bo Berg", Line1: "Hauptstraße 1", City: "Berlin", PostalCode: "10115", Country: "DE"}}))
	return o
}

// records returns, as DynamoDB Streams delivers them to the saga function (INSERT, NEW_IMAGE,
// past its FilterCriteria), the stored events of the given streams whose type is one of types
// and that concern the order, in the order they were appended.
func (f *fulfilment) records(order string, streams []string, types_ ...string) []events.DynamoDBEventRecord {
	f.tb.Helper()
	type stored struct {
		e    store.Event
		item map[string]types.AttributeValue
	}
	var found []stored
	for _, s := range streams {
		out, err := f.raw.Query(context.Background(), &dynamodb.QueryInput{TableName: aws.String(f.env.Refs["EventsTable"]),
			KeyConditionExpression:    aws.String("#pk = :s"),
			ExpressionAttributeNames:  map[string]string{"#pk": store.AttrStream},
			ExpressionAttributeValues: map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: s}}})
		if err != nil {
			f.tb.Fatal(err)
		}
		for _, item := range out.Items {
			e, err := store.DecodeItem(item)
			if err != nil {
				f.tb.Fatal(err)
			}
			var of struct {
				OrderID string `json:"orderId"`
			}
			json.Unmarshal(e.Data, &of)
			if slices.Contains(types_, e.Type) && of.OrderID == order {
				found = append(found, stored{e, item})
			}
		}
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].e.ID < found[j].e.ID }) // IDs sort by time
	recs := make([]events.DynamoDBEventRecord, len(found))
	for i, s := range found {
		img, err := ddbstream.Image(s.item)
		if err != nil {
			f.tb.Fatal(err)
		}
		f.seq++
		recs[i] = events.DynamoDBEventRecord{
			EventID: fmt.Sprint(f.seq), EventName: string(events.DynamoDBOperationTypeInsert), EventSource: "aws:dynamodb", EventVersion: "1.1",
			AWSRegion: localaws.Region,
			Change: events.DynamoDBStreamRecord{Keys: map[string]events.DynamoDBAttributeValue{store.AttrStream: img[store.AttrStream], store.AttrVersion: img[store.AttrVersion]},
				NewImage: img, SequenceNumber: fmt.Sprintf("%021d", f.seq), StreamViewType: string(events.DynamoDBStreamViewTypeNewImage)},
		}
	}
	return recs
}

// deliver invokes the saga function with a stream batch, as the event source mapping does,
// inside a Lambda context (the deadline's target is the function's own ARN).
func (f *fulfilment) deliver(recs []events.DynamoDBEventRecord) {
	f.tb.Helper()
	payload, err := json.Marshal(events.DynamoDBEvent{Records: recs})
	if err != nil {
		f.tb.Fatal(err)
	}
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{
		InvokedFunctionArn: "arn:aws:lambda:" + localaws.Region + ":" + localaws.Account + ":function:" + f.env.Refs["AWS::StackName"] + "-saga"})
	out, err := f.saga.Function.Handle(ctx, payload)
	if err != nil {
		f.tb.Fatal(err)
	}
	var resp events.DynamoDBEventResponse
	if err := json.Unmarshal(out, &resp); err != nil || len(resp.BatchItemFailures) > 0 {
		f.tb.Fatalf("the saga failed records: %s %v", out, err)
	}
}

// spent is what the saga spent on a delivery: DynamoDB requests by operation, in the order
// made, the write units DynamoDB reported, KMS calls and scheduler calls.
type spent struct {
	DynamoDB       []string
	WCU            float64
	KMS, Scheduler []string
}

func (f *fulfilment) take() spent {
	ops, wcu := f.reqs.Take()
	return spent{DynamoDB: ops, WCU: wcu, KMS: f.kms.take(), Scheduler: f.sched.take()}
}

// fulfil places an order of lines lines (not counted) and gives the saga function what its
// stream trigger would, and returns what the saga spent on each: the OrderPlaced record, one
// batch (the whole flow: the saga issues every command and records every answer in that
// invocation); then the StockReserved and AccountCharged records its commands caused, the next
// batch, in the order they were appended.
func (f *fulfilment) fulfil(lines int) (placed, [2]spent) {
	f.tb.Helper()
	o := f.order(lines)
	f.take()
	return f.fulfilPlaced(o)
}

func (f *fulfilment) fulfilPlaced(o placed) (placed, [2]spent) {
	f.tb.Helper()
	lines := len(o.skus)
	var s [2]spent
	f.deliver(f.records(o.id, []string{"order-" + o.id}, domain.TypeOrderPlaced))
	s[0] = f.take()
	var effects []string
	for _, sku := range o.skus {
		effects = append(effects, "inventory-"+sku)
	}
	replies := f.records(o.id, append(effects, "account-"+o.account), domain.TypeStockReserved, domain.TypeAccountCharged)
	if len(replies) != lines+1 {
		f.tb.Fatalf("%d StockReserved and AccountCharged of the order, want %d", len(replies), lines+1)
	}
	f.deliver(replies)
	s[1] = f.take()
	return o, s
}

// run is the order's run, read past the counters.
func (f *fulfilment) run(order string) domain.Fulfilment {
	f.tb.Helper()
	r, _, _, err := f.saga.Saga.Load(context.Background(), order)
	f.take()
	if err != nil {
		f.tb.Fatal(err)
	}
	return r
}

// ops counts operations by name.
func ops(calls []string) map[string]int {
	m := map[string]int{}
	for _, c := range calls {
		m[c]++
	}
	return m
}

// TestFulfilmentRequestsPerOrder holds the saga to what it spends on a fulfilled order of one
// line, from a cold instance, counted by middleware: exact figures, so that a change that costs
// a request more (or saves one) fails here and the README's figures are updated with it. What
// each figure is, and the fewest a fulfilled order can take, is in BenchmarkFulfilmentRequests.
func TestFulfilmentRequestsPerOrder(t *testing.T) {
	f := newFulfilment(t)
	o, s := f.fulfil(1)
	if r := f.run(o.id); r.Step != domain.StepConfirmed || !r.Finished() {
		t.Fatalf("run step %s, finished %v: want confirmed", r.Step, r.Finished())
	}
	for i, want := range []struct {
		dynamodb       map[string]int
		wcu            float64
		kms, scheduler map[string]int
	}{
		// The OrderPlaced batch: the whole flow. Writes: reserve, charge, commit, confirm (one
		// conditional PutItem each) and the run's four events (started, reserved, charged,
		// committed). Reads: the run (Query); the item and the account, cold (their snapshot's
		// GetItem and a Query each); the item again to commit (a Query from its cached state);
		// the order (Query), whose sealed address is opened: the customer's key (keys table
		// GetItem, KMS Decrypt). The deadline is set when the run starts, cancelled once charged.
		{map[string]int{"Query": 5, "GetItem": 3, "PutItem": 8}, 8, map[string]int{"Decrypt": 1},
			map[string]int{"CreateSchedule": 1, "DeleteSchedule": 1}},
		// The StockReserved and AccountCharged batch: the run loaded once per record (Query);
		// both are effects the finished run knows: nothing is written or issued.
		{map[string]int{"Query": 2}, 0, map[string]int{}, map[string]int{}},
	} {
		got := s[i]
		if g := ops(got.DynamoDB); !maps.Equal(g, want.dynamodb) || got.WCU != want.wcu {
			t.Errorf("delivery %d: DynamoDB %v (%v WCU), want %v (%v WCU); in order: %v", i+1, g, got.WCU, want.dynamodb, want.wcu, got.DynamoDB)
		}
		if g := ops(got.KMS); !maps.Equal(g, want.kms) {
			t.Errorf("delivery %d: KMS %v, want %v", i+1, g, want.kms)
		}
		if g := ops(got.Scheduler); !maps.Equal(g, want.scheduler) {
			t.Errorf("delivery %d: scheduler %v, want %v", i+1, g, want.scheduler)
		}
	}
}

// BenchmarkFulfilmentRequests reports what the saga spends on a fulfilled order of L lines (L =
// 1 and 3), counted by middleware: DynamoDB requests by operation and write units (DynamoDB
// Local's ConsumedCapacity), KMS calls (a wrapper of the keyring's client) and scheduler calls
// (a wrapper of moto's), next to the fewest that order can take. Each order is a new customer's,
// paid from a new account of theirs, of new items: every aggregate is cold in the saga's
// instance, as it is for a customer the instance has not seen. The saga is app.Saga's graph,
// given what its stream trigger would give it: the OrderPlaced record, then the StockReserved
// and AccountCharged records its commands caused (records made from the stored items as
// DynamoDB Streams makes them, through the function's handler and the consumer).
//
// Fewest, for L lines: writes = L reservations + 1 charge + L commits + 1 confirm (the
// effects, one conditional PutItem each, 1 WCU) + the run's own events, one per round
// (started, reserved, charged, committed: 4) = 2L+6; reads = one load per aggregate touched
// (L items, the account, the order) + the run's load = L+3. So 3L+9
// requests and 2L+6 WCU (L=1: 12 and 8; L=3: 18 and 12); KMS 0 (the saga reads no personal
// data); scheduler 2 (set the deadline, cancel it once charged).
//
// Measured: 6L+12 requests and 2L+6 WCU in all (L=1: 18 and 8; L=3: 30 and 12), 1 KMS call, 2
// scheduler calls. The writes are exactly the fewest; the reads that are more:
//   - +L+1 GetItem: a cold load of an item or an account reads its snapshot first (what bounds
//     the load of a long stream).
//   - +L Query: committing loads the item again (its cached state, then a Query of what
//     follows, which checks the cache is still a prefix of the stream).
//   - +1 GetItem, +1 KMS Decrypt: loading the order opens its sealed shipping address, which
//     confirming never reads (the customer's key: the keys table, then KMS; none while the
//     instance has the key cached).
//   - +L+1 Query: each StockReserved and AccountCharged record loads the run again, though it
//     recorded that answer itself (the saga holds no state across invocations).
func BenchmarkFulfilmentRequests(b *testing.B) {
	for _, lines := range []int{1, 3} {
		b.Run(fmt.Sprintf("L=%d", lines), func(b *testing.B) {
			f := newFulfilment(b)
			var dynamo, kmsCalls, sched []string
			var wcu float64
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				o := f.order(lines)
				f.take()
				b.StartTimer()
				_, s := f.fulfilPlaced(o)
				for _, x := range s {
					dynamo, kmsCalls, sched, wcu = append(dynamo, x.DynamoDB...), append(kmsCalls, x.KMS...), append(sched, x.Scheduler...), wcu+x.WCU
				}
			}
			b.StopTimer()
			n := float64(b.N)
			for _, op := range []string{"Query", "GetItem", "PutItem", "TransactWriteItems"} {
				b.ReportMetric(float64(ops(dynamo)[op])/n, op+"/order")
			}
			b.ReportMetric(float64(len(dynamo))/n, "requests/order")
			b.ReportMetric(wcu/n, "WCU/order")
			b.ReportMetric(float64(len(kmsCalls))/n, "KMS/order")
			b.ReportMetric(float64(len(sched))/n, "scheduler/order")
			b.ReportMetric(float64(3*lines+9), "fewest-requests/order")
			b.ReportMetric(float64(2*lines+6), "fewest-WCU/order")
		})
	}
}
