package saga_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/auth"
	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/consumer"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/localaws/awstest"
	"github.com/eventfold/eventfold/internal/metrics"
	"github.com/eventfold/eventfold/internal/saga"
	"github.com/eventfold/eventfold/internal/store"
)

// A world is a store, the application layer on it, and what the saga is delivered: every event
// appended, as the stream would deliver it. Its store is the in-memory one, which passes the
// same contract suite as the DynamoDB store; the command layer and the saga are the real ones.
type world struct {
	t         *testing.T
	metrics   *awstest.SyncBuffer
	mem       *store.Memory
	st        *faulty
	clock     *clock
	deadlines *memDeadlines
}

func newWorld(t *testing.T) *world {
	t.Helper()
	reg, err := command.Registry()
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	mem := store.NewMemory(reg, c.Now)
	return &world{t: t, metrics: &awstest.SyncBuffer{}, mem: mem, st: &faulty{EventStore: mem}, clock: c, deadlines: &memDeadlines{set: map[string]deadline{}}}
}

// saga returns a new saga instance, as a new Lambda instance would be: its own command service,
// with empty caches.
func (w *world) saga() *saga.Saga {
	w.t.Helper()
	svc, err := command.New(command.Config{Store: w.st})
	if err != nil {
		w.t.Fatal(err)
	}
	s, err := saga.New(saga.Config{Store: w.st, Commands: svc, Deadlines: w.deadlines, Name: func(o string) string { return "fulfilment-" + o },
		Timeout: 15 * time.Minute, Target: "arn:aws:lambda:eu-west-1:000000000000:function:saga", Clock: w.clock.Now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: metrics.New(w.metrics).With(metrics.DimStack, "test-stack")})
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

func (w *world) svc() *command.Service {
	w.t.Helper()
	svc, err := command.New(command.Config{Store: w.st})
	if err != nil {
		w.t.Fatal(err)
	}
	return svc
}

func (w *world) must(_ command.Result, err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatal(err)
	}
}

const customer = "01J9ZQ4T8K5W3X2Y1V0B6N7M8C"

// stock adds units of skus; account opens an account of customer's with a balance.
func (w *world) stock(sku string, n int64) {
	w.must(w.svc().AddStock(context.Background(), command.Meta{Caller: auth.Operator("arn:aws:iam::123456789012:user/ops")}, domain.AddStock{SKU: sku, Quantity: n}))
}

func (w *world) account(id, owner string, balance int64) {
	ctx := context.Background()
	w.must(w.svc().OpenAccount(ctx, command.Meta{Caller: auth.User(owner)}, domain.OpenAccount{AccountID: id, OwnerID: owner, Currency: "EUR"}))
	if balance > 0 {
		w.must(w.svc().Deposit(ctx, command.Meta{Caller: auth.User(owner)}, id, domain.Deposit{Amount: balance}))
	}
}

// order places an order of customer's of one unit at 100 of each sku, paid from account.
func (w *world) order(id, account string, skus ...string) {
	var lines []domain.OrderLine
	for _, sku := range skus {
		lines = append(lines, domain.OrderLine{SKU: sku, Quantity: 1, UnitPrice: 100})
	}
	w.orderOf(id, customer, account, lines)
}

func (w *world) orderOf(id, customerID, account string, lines []domain.OrderLine) {
	c := domain.PlaceOrder{OrderID: id, CustomerID: customerID, PaymentAccountID: account, Currency: "EUR", Lines: lines,
		ShippingAddress: domain.Address{Name: "Bo Berg", Line1: "Hauptstraße 1", City: "Berlin", PostalCode: "10115", Country: "DE"}}
	_, err := w.svc().PlaceOrder(context.Background(), command.Meta{CorrelationID: "corr-" + id, Caller: auth.User(customerID)}, c)
	if errors.Is(err, command.ErrUnknownPaymentAccount) {
		// PlaceOrder refuses an account that is not the customer's; the saga checks it again
		// when it charges (defence in depth, and orders placed before the check). Such an
		// order is appended as the command would have appended it, to hold the saga to it.
		events, derr := domain.Order{}.Place(c)
		if derr != nil {
			w.t.Fatal(derr)
		}
		data, _ := json.Marshal(events[0])
		_, err = w.st.AppendStreams(context.Background(), store.StreamAppend{StreamID: "order-" + id, Events: []store.Event{{ID: store.NewIDs(nil).New(),
			Type: events[0].EventType(), Data: data, CorrelationID: "corr-" + id, Subject: customerID}}})
	}
	w.must(command.Result{}, err)
}

// consumed lists the appended events the saga's filter lets through, in append order.
func (w *world) consumed() []store.Event {
	var out []store.Event
	for _, e := range w.st.log() {
		switch e.Type {
		case domain.TypeOrderPlaced, domain.TypeStockReserved, domain.TypeAccountCharged:
			out = append(out, e)
		}
	}
	return out
}

// drain delivers every consumed event not yet delivered to fresh saga instances, one event a
// delivery; a delivery that fails is made again to another instance, as Lambda retries a
// batch. It fails the test if deliveries do not settle.
func (w *world) drain() {
	w.t.Helper()
	ctx := context.Background()
	s := w.saga()
	for done, tries := 0, 0; ; tries++ {
		all := w.consumed()
		if done == len(all) {
			return
		}
		if tries > 1000 {
			w.t.Fatalf("deliveries did not settle: %d of %d", done, len(all))
		}
		if err := s.Apply(ctx, all[done]); err != nil {
			s = w.saga() // the instance is gone; the batch is retried on another
			continue
		}
		done++
	}
}

// run returns the run of an order.
func (w *world) run(orderID string) domain.Fulfilment {
	w.t.Helper()
	f, _, _, err := w.saga().Load(context.Background(), orderID)
	if err != nil {
		w.t.Fatal(err)
	}
	return f
}

// effects counts the events of each type that name the order, per stream.
func (w *world) effects(orderID string) map[string]int {
	n := map[string]int{}
	for _, e := range w.st.log() {
		var x struct {
			OrderID string `json:"orderId"`
		}
		if json.Unmarshal(e.Data, &x) == nil && x.OrderID == orderID {
			n[e.StreamID+" "+e.Type]++
		}
	}
	return n
}

// exactlyOnce fails the test if any effect of the order happened more than once.
func (w *world) exactlyOnce(orderID string) {
	w.t.Helper()
	for k, n := range w.effects(orderID) {
		if n > 1 && !isRun(k) {
			w.t.Errorf("order %s: %s happened %d times", orderID, k, n)
		}
	}
}

func isRun(k string) bool { return len(k) > 11 && k[:11] == "fulfilment-" }

func (w *world) item(sku string) domain.Item       { return foldOf[domain.Item](w, "inventory-"+sku) }
func (w *world) acct(id string) domain.Account     { return foldOf[domain.Account](w, "account-"+id) }
func (w *world) orderState(id string) domain.Order { return foldOf[domain.Order](w, "order-"+id) }

// foldOf is the state of the aggregate of stream, folded from the store.
func foldOf[S interface{ Evolve(domain.Event) S }](w *world, stream string) S {
	w.t.Helper()
	var s S
	for _, e := range w.load(stream) {
		s = s.Evolve(e)
	}
	return s
}

func (w *world) load(stream string) []domain.Event {
	w.t.Helper()
	events, err := w.mem.Load(context.Background(), stream, store.Span{})
	if err != nil {
		w.t.Fatal(err)
	}
	out := make([]domain.Event, len(events))
	for i, e := range events {
		if out[i], err = domain.Decode(e.Type, e.Data); err != nil {
			w.t.Fatal(err)
		}
	}
	return out
}

// faulty is the store with a crash injected: the crashAt-th write is made and then its answer
// is lost, as when the instance vanishes right after it. It logs every event appended.
type faulty struct {
	store.EventStore
	mu       sync.Mutex
	writes   int
	crashAt  int
	appended []store.Event
	// before, when set, runs before every append (to interleave a test's steps); fail, when
	// set, refuses the appends it returns an error for, writing nothing.
	before func(appends []store.StreamAppend)
	fail   func(appends []store.StreamAppend) error
	rate   float64
	rand   *rand.Rand
}

var errCrash = errors.New("crash: the instance vanished after the write")

func (f *faulty) AppendStreams(ctx context.Context, appends ...store.StreamAppend) ([]store.Appended, error) {
	f.mu.Lock()
	before, fail := f.before, f.fail
	f.mu.Unlock()
	if before != nil {
		before(appends)
	}
	if fail != nil {
		if err := fail(appends); err != nil {
			return nil, err
		}
	}
	res, err := f.EventStore.AppendStreams(ctx, appends...)
	if err != nil {
		return res, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	for _, a := range res {
		f.appended = append(f.appended, a.Events...)
	}
	if f.writes == f.crashAt || (f.rate > 0 && f.rand.Float64() < f.rate) {
		return nil, errCrash
	}
	return res, nil
}

// crashRate makes a share of all writes crash, chosen at random from seed; 0 none.
func (f *faulty) crashRate(seed uint64, rate float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rate, f.rand = rate, rand.New(rand.NewPCG(seed, 3))
}

func (f *faulty) log() []store.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]store.Event(nil), f.appended...)
}

func (f *faulty) crashAfter(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.crashAt = f.writes + n
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type deadline struct {
	at    time.Time
	input []byte
}

// memDeadlines is the scheduler in memory: what is set, by name.
type memDeadlines struct {
	mu      sync.Mutex
	set     map[string]deadline
	cancels int
}

func (d *memDeadlines) Set(_ context.Context, name string, at time.Time, target string, input []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if target == "" {
		return fmt.Errorf("no target")
	}
	if _, ok := d.set[name]; !ok {
		d.set[name] = deadline{at, input}
	}
	return nil
}

func (d *memDeadlines) Cancel(_ context.Context, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.set, name)
	d.cancels++
	return nil
}

func (d *memDeadlines) get(name string) (deadline, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	x, ok := d.set[name]
	return x, ok
}

// fire fires a deadline as the scheduler would: its input, to the saga.
func (w *world) fire(s *saga.Saga, name string) error {
	w.t.Helper()
	d, ok := w.deadlines.get(name)
	if !ok {
		w.t.Fatalf("no deadline %s is set", name)
	}
	var in saga.DeadlineInput
	if err := json.Unmarshal(d.input, &in); err != nil {
		w.t.Fatal(err)
	}
	return s.Deadline(context.Background(), in)
}

func (d *memDeadlines) names() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for n := range d.set {
		out = append(out, n)
	}
	return out
}

// fireIfSet fires a deadline if it is still set.
func (w *world) fireIfSet(s *saga.Saga, name string) error {
	d, ok := w.deadlines.get(name)
	if !ok {
		return nil
	}
	var in saga.DeadlineInput
	if err := json.Unmarshal(d.input, &in); err != nil {
		return err
	}
	return s.Deadline(context.Background(), in)
}

// counts sums the saga's metrics emitted so far by metric key ("Name[Dim ...]"), after holding
// every point to the saga's declaration (saga.Metrics) and to its consumer dimension.
func (w *world) counts() map[string]float64 {
	w.t.Helper()
	points, err := metrics.Decode([]byte(w.metrics.String()))
	if err != nil {
		w.t.Fatal(err)
	}
	if err := metrics.Check(points, saga.Metrics()); err != nil {
		w.t.Fatal(err)
	}
	n := map[string]float64{}
	for _, p := range points {
		if p.Dims[consumer.DimConsumer] != saga.Consumer || p.Dims[metrics.DimStack] != "test-stack" {
			w.t.Fatalf("point %+v: want consumer %s in stack test-stack", p, saga.Consumer)
		}
		k := p.Metric.Name
		if o, ok := p.Dims[saga.DimOutcome]; ok {
			k += "/" + o
		}
		n[k] += p.Value
	}
	return n
}
