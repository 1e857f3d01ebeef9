// Package saga runs order fulfilment: the process manager of the design (§5), a consumer of the
// event store's stream beside the projector. Its decisions are pure and live in the domain
// ([domain.Fulfilment]); this package carries them out:
//
//   - A run's state is its own stream, "fulfilment-<orderId>", in the events table, appended
//     with the same conditional version check as any aggregate. Nothing is held in memory
//     between invocations: an instance can vanish between any two writes.
//   - Each round loads the run (or keeps what it appended), decides on a trigger, appends the
//     decision's event first, then sets or cancels the deadline, then issues the decision's
//     commands through the application layer (package command, as HTTP commands are), under
//     command IDs derived from the run, the step and the line. Their answers are the next
//     round's trigger.
//   - Exactly once: every command is idempotent by order in the aggregate that carries it out
//     (an item reserves, releases and commits an order's stock once; an account charges and
//     refunds an order once), and that aggregate's conditional append is what makes two racing
//     issues of it apply once. So a redelivered trigger, a crash after any write, or two
//     invocations on one order issue commands again, harmlessly: an append that conflicts is
//     decided again on the state that won.
//   - Its triggers are the stream's OrderPlaced (start), StockReserved and AccountCharged of
//     the order (effects seen on the stream: one that lands after compensation began is
//     compensated), the scheduler's firing of the deadline ([Saga.Deadline]) and an operator's
//     redrive ([Saga.Redrive]).
package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/eventfold/eventfold/internal/command"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/metrics"
	"github.com/eventfold/eventfold/internal/store"
)

// Commands is the application layer the saga issues its commands through (*command.Service).
// Each returns a Result with no EventIDs when it changed nothing, a *domain.RuleError (or
// domain.ErrNotFound) when the aggregate refuses, and any other error when it could not decide.
type Commands interface {
	ReserveStock(ctx context.Context, m command.Meta, sku string, c domain.Reserve) (command.Result, error)
	ReleaseStock(ctx context.Context, m command.Meta, sku, orderID string) (command.Result, error)
	CommitStock(ctx context.Context, m command.Meta, sku, orderID string) (command.Result, error)
	ChargeAccount(ctx context.Context, m command.Meta, accountID string, c domain.ChargeAccount) (command.Result, error)
	RefundAccount(ctx context.Context, m command.Meta, accountID, orderID string) (command.Result, error)
	ConfirmOrder(ctx context.Context, m command.Meta, orderID string) (command.Result, error)
	CancelOrder(ctx context.Context, m command.Meta, orderID, reason string) (command.Result, error)
}

// Deadlines sets and cancels the one-time schedules that fire runs' deadlines (package
// schedule). Setting a name that exists, and cancelling one that does not, are harmless.
type Deadlines interface {
	Set(ctx context.Context, name string, at time.Time, target string, input []byte) error
	Cancel(ctx context.Context, name string) error
}

// Config configures a Saga. Store, Commands and Deadlines are required.
type Config struct {
	// Store holds the runs' streams (and is what Commands appends through).
	Store     store.EventStore
	Commands  Commands
	Deadlines Deadlines
	// Name returns the schedule name of a run's deadline.
	Name func(orderID string) string
	// Timeout is how long a run has to be charged; 0 means 15m.
	Timeout time.Duration
	// Target is the ARN the deadlines invoke; empty means the invoking Lambda function's own
	// (lambdacontext), and outside Lambda no deadline is set (an operator's redrive).
	Target string
	// Clock is the time; nil means time.Now. IDs makes event IDs; nil means a generator on Clock.
	Clock func() time.Time
	IDs   *store.IDs
	Log   *slog.Logger
	// Metrics receives the runs' metrics (see Metrics), with the metrics.DimStack dimension set
	// (metrics.Emitter.With) in a deployed function; nil means none.
	Metrics *metrics.Emitter
	// Parallel bounds the commands issued at once; 0 means 8.
	Parallel int
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	for _, f := range []struct {
		name    string
		missing bool
	}{{"Store", c.Store == nil}, {"Commands", c.Commands == nil}, {"Deadlines", c.Deadlines == nil}, {"Name", c.Name == nil}, {"Log", c.Log == nil}} {
		if f.missing {
			errs = append(errs, errors.New("saga: "+f.name+" is required"))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("saga: Timeout must not be negative (0 means 15m)"))
	}
	return errors.Join(errs...)
}

// The metrics of runs. Each is emitted under the dimensions consumer.DimConsumer ("saga") and
// metrics.DimStack; MetricFulfilmentsFinished also under DimOutcome (see Metrics).
const (
	// MetricFulfilmentsStarted counts the runs started (their FulfilmentStarted appended).
	MetricFulfilmentsStarted = "FulfilmentsStarted"
	// MetricFulfilmentsFinished counts the runs that ended, confirmed or cancelled: with
	// DimOutcome, per outcome (confirmed, or the cancel reason).
	MetricFulfilmentsFinished = "FulfilmentsFinished"
	// MetricFulfilmentsCancelled counts the runs that ended cancelled (0 with each confirmed
	// one), whatever the reason.
	MetricFulfilmentsCancelled = "FulfilmentsCancelled"
	// MetricFulfilmentsStuck counts the firings of a run's deadline (the one it waits on)
	// after which the run has not finished: it was past its deadline and could not be brought
	// to an end, because the firing failed (the scheduler retries it, then dead-letters it) or
	// the run waits on what no command it issues can give. A run is counted once per firing,
	// so once per attempt of a firing that fails. `eventfold sagas list -stuck` names them.
	MetricFulfilmentsStuck = "FulfilmentsStuck"
	// DimOutcome is the dimension of MetricFulfilmentsFinished that names how a run ended.
	DimOutcome = "Outcome"
	// Consumer is the saga's consumer name: the value of its consumer.DimConsumer dimension.
	Consumer = "saga"
)

// Metrics returns the metrics a Saga emits, with their dimension sets.
func Metrics() []metrics.Metric {
	dims := []string{dimConsumer, metrics.DimStack}
	return []metrics.Metric{
		{Name: MetricFulfilmentsStarted, Dimensions: dims},
		{Name: MetricFulfilmentsFinished, Dimensions: dims},
		{Name: MetricFulfilmentsFinished, Dimensions: append([]string{DimOutcome}, dims...)},
		{Name: MetricFulfilmentsCancelled, Dimensions: dims},
		{Name: MetricFulfilmentsStuck, Dimensions: dims},
	}
}

// dimConsumer is consumer.DimConsumer, which package consumer (that imports none of this)
// declares; a test holds them equal.
const dimConsumer = "Consumer"

// Saga carries out runs. It is safe for concurrent use.
type Saga struct {
	cfg Config
}

// DefaultTimeout is Config.Timeout's 0.
const DefaultTimeout = 15 * time.Minute

// maxRounds bounds the rounds of one trigger: the longest flow takes five (start, reserved,
// charged, committed, and a late reply), each conflict one more.
const maxRounds = 20

// New returns the Saga cfg describes.
func New(cfg Config) (*Saga, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.IDs == nil {
		cfg.IDs = store.NewIDs(cfg.Clock)
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	return &Saga{cfg: cfg}, nil
}

// DeadlineInput is what a run's deadline schedule invokes the saga function with.
type DeadlineInput struct {
	Deadline *DeadlineRef `json:"fulfilmentDeadline"`
}

// DeadlineRef names a run's deadline: the order, and the deadline's ID.
type DeadlineRef struct {
	OrderID    string `json:"orderId"`
	DeadlineID string `json:"deadlineId"`
}

// placed is the part of an OrderPlaced the saga reads: never the shipping address, which it
// cannot open and does not need.
type placed struct {
	OrderID          string             `json:"orderId"`
	CustomerID       string             `json:"customerId"`
	PaymentAccountID string             `json:"paymentAccountId"`
	Currency         string             `json:"currency"`
	Lines            []domain.OrderLine `json:"lines"`
	Total            int64              `json:"total"`
}

// effect is the part of a StockReserved or AccountCharged the saga reads.
type effect struct {
	OrderID string `json:"orderId"`
	SKU     string `json:"sku"`
}

// Apply is the saga as a consumer.Handler: it starts a run on OrderPlaced, and gives a run the
// StockReserved and AccountCharged of its order; other events it ignores. An event that does
// not decode is poison (consumer.ErrPoison is not imported here: store.ErrCorrupt parks it).
func (s *Saga) Apply(ctx context.Context, e store.Event) error {
	var (
		orderID string
		t       domain.FulfilmentTrigger
	)
	switch e.Type {
	case domain.TypeOrderPlaced:
		var p placed
		if err := json.Unmarshal(e.Data, &p); err != nil || p.OrderID == "" {
			return fmt.Errorf("%w: %s at %d is not an order", store.ErrCorrupt, e.StreamID, e.Version)
		}
		orderID = p.OrderID
		t = domain.StartFulfilment{Timeout: s.cfg.Timeout, Order: domain.OrderPlaced{
			OrderID: p.OrderID, CustomerID: p.CustomerID, PaymentAccountID: p.PaymentAccountID,
			Currency: p.Currency, Lines: p.Lines, Total: p.Total,
		}}
	case domain.TypeStockReserved, domain.TypeAccountCharged:
		var x effect
		if err := json.Unmarshal(e.Data, &x); err != nil || x.OrderID == "" {
			return fmt.Errorf("%w: %s at %d names no order", store.ErrCorrupt, e.StreamID, e.Version)
		}
		orderID = x.OrderID
		r := domain.FulfilmentReply{Kind: domain.CommandReserve, SKU: x.SKU, OK: true, EventID: e.ID}
		if e.Type == domain.TypeAccountCharged {
			r = domain.FulfilmentReply{Kind: domain.CommandCharge, OK: true, EventID: e.ID}
		}
		t = domain.FulfilmentReplies{r}
	default:
		return nil
	}
	_, err := s.advance(ctx, orderID, t, e.CorrelationID, e.ID)
	return err
}

// Deadline handles a firing of a run's deadline. One for a run that is not waiting on it (it
// finished, or fired already, or the ID is another's) changes nothing.
func (s *Saga) Deadline(ctx context.Context, in DeadlineInput) error {
	if in.Deadline == nil || in.Deadline.OrderID == "" || in.Deadline.DeadlineID == "" {
		return errors.New("saga: a deadline input needs fulfilmentDeadline.orderId and .deadlineId")
	}
	f, err := s.advance(ctx, in.Deadline.OrderID, domain.FireDeadline{ID: in.Deadline.DeadlineID}, "", in.Deadline.DeadlineID)
	if f.Deadline.ID == in.Deadline.DeadlineID && !f.Finished() {
		s.emit(nil, map[string]float64{MetricFulfilmentsStuck: 1})
	}
	return err
}

// Redrive makes the run of an order carry on: it issues again what the run has pending and,
// past its deadline and not yet charged, compensates. It returns the run after it, and
// ErrNoRun for an order without one.
func (s *Saga) Redrive(ctx context.Context, orderID string) (domain.Fulfilment, error) {
	f, err := s.advance(ctx, orderID, domain.RedriveFulfilment{}, "", "redrive")
	if err != nil {
		return domain.Fulfilment{}, err
	}
	if f.Step == "" {
		return f, ErrNoRun
	}
	return f, nil
}

// ErrNoRun is returned by Redrive for an order that has no run.
var ErrNoRun = errors.New("the order has no fulfilment run")

// Load returns the run of an order, its version and its events (none for an order without
// one).
func (s *Saga) Load(ctx context.Context, orderID string) (domain.Fulfilment, int64, []store.Event, error) {
	stream := domain.RunID(orderID)
	if store.ValidStreamID(stream) != nil {
		return domain.Fulfilment{}, 0, nil, fmt.Errorf("%w: not an order ID", ErrNoRun)
	}
	events, err := s.cfg.Store.Load(ctx, stream, store.Span{})
	if err != nil {
		return domain.Fulfilment{}, 0, nil, err
	}
	var f domain.Fulfilment
	for _, e := range events {
		de, err := domain.Decode(e.Type, e.Data)
		if err != nil {
			return domain.Fulfilment{}, 0, nil, fmt.Errorf("load %s at %d: %w: %v", stream, e.Version, store.ErrCorrupt, err)
		}
		f = f.Evolve(de)
	}
	return f, int64(len(events)), events, nil
}

// advance runs rounds on a trigger until the run has nothing more to issue, and returns the run
// as it left it. correlation ties what the run appends and issues to what started it; cause is
// the trigger's ID.
func (s *Saga) advance(ctx context.Context, orderID string, t domain.FulfilmentTrigger, correlation, cause string) (domain.Fulfilment, error) {
	stream := domain.RunID(orderID)
	f, version, events, err := s.Load(ctx, orderID)
	if err != nil {
		return f, err
	}
	if len(events) > 0 && events[0].CorrelationID != "" {
		correlation = events[0].CorrelationID
	}
	idle := 0 // rounds in a row that decided no event
	for range maxRounds {
		d := f.Decide(t, s.cfg.Clock())
		if idle++; len(d.Events) > 0 {
			idle = 0
		} else if idle > 1 {
			// The commands a trigger with no news issued again brought no news either: what
			// the run waits on is not theirs to give (another instance is on it, or a redrive
			// will be). Stop rather than go round.
			return f, nil
		}
		if len(d.Events) > 0 {
			envs, err := s.envelopes(d.Events, correlation, cause)
			if err != nil {
				return f, err
			}
			res, err := s.cfg.Store.AppendStreams(ctx, store.StreamAppend{StreamID: stream, Expected: version, Events: envs})
			if errors.Is(err, store.ErrVersionConflict) {
				// Another invocation moved the run: decide again on what it appended.
				if f, version, _, err = s.Load(ctx, orderID); err != nil {
					return f, err
				}
				continue
			}
			if err != nil {
				return f, fmt.Errorf("append to %s at %d: %w", stream, version, err)
			}
			before := f.Step
			for _, e := range d.Events {
				f = f.Evolve(e)
			}
			version, cause = res[0].Version, res[0].Events[len(res[0].Events)-1].ID
			s.finished(before, f)
			s.cfg.Log.InfoContext(ctx, "fulfilment", "stream_id", stream, "version", version, "event_type", d.Events[0].EventType(), "step", string(f.Step), "correlation_id", correlation)
		}
		if err := s.deadlines(ctx, orderID, d); err != nil {
			return f, err
		}
		if len(d.Commands) == 0 {
			return f, nil
		}
		replies, err := s.issue(ctx, d.Commands, correlation)
		if err != nil {
			return f, err
		}
		t = domain.FulfilmentReplies(replies)
	}
	return f, fmt.Errorf("saga: %s did not settle in %d rounds", stream, maxRounds)
}

// finished counts a run that has just started, or just ended: confirmed, or cancelled for a
// reason.
func (s *Saga) finished(before domain.FulfilmentStep, f domain.Fulfilment) {
	if before == "" && f.Step != "" {
		s.emit(nil, map[string]float64{MetricFulfilmentsStarted: 1})
	}
	if before == f.Step || (f.Step != domain.StepConfirmed && f.Step != domain.StepCancelled) {
		return
	}
	outcome, cancelled := string(f.Step), 0.0
	if f.Step == domain.StepCancelled {
		outcome, cancelled = f.Reason, 1
	}
	s.emit(map[string]string{DimOutcome: outcome}, map[string]float64{MetricFulfilmentsFinished: 1})
	s.emit(nil, map[string]float64{MetricFulfilmentsFinished: 1, MetricFulfilmentsCancelled: cancelled})
}

// emit writes one line of counts under the saga's dimensions and dims. A failed write is not
// the run's failure: it is dropped.
func (s *Saga) emit(dims map[string]string, counts map[string]float64) {
	if s.cfg.Metrics == nil {
		return
	}
	d := map[string]string{dimConsumer: Consumer}
	for k, v := range dims {
		d[k] = v
	}
	values := map[string]metrics.Value{}
	for name, v := range counts {
		values[name] = metrics.Value{Value: v, Unit: metrics.Count}
	}
	_ = s.cfg.Metrics.Emit(d, values)
}

func (s *Saga) deadlines(ctx context.Context, orderID string, d domain.FulfilmentDecision) error {
	name := s.cfg.Name(orderID)
	if d.CancelDeadline != nil {
		if err := s.cfg.Deadlines.Cancel(ctx, name); err != nil {
			return fmt.Errorf("cancel the deadline of %s: %w", domain.RunID(orderID), err)
		}
	}
	if d.SetDeadline == nil {
		return nil
	}
	target := s.cfg.Target
	if target == "" {
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			target = lc.InvokedFunctionArn
		}
	}
	if target == "" {
		return nil // outside Lambda (an operator's redrive): the run's schedule was set when it started
	}
	input, err := json.Marshal(DeadlineInput{Deadline: &DeadlineRef{OrderID: orderID, DeadlineID: d.SetDeadline.ID}})
	if err != nil {
		return err
	}
	if err := s.cfg.Deadlines.Set(ctx, name, d.SetDeadline.At, target, input); err != nil {
		return fmt.Errorf("set the deadline of %s: %w", domain.RunID(orderID), err)
	}
	return nil
}

// envelopes wraps the run's events for the store. They hold no personal data: no subject.
func (s *Saga) envelopes(events []domain.Event, correlation, cause string) ([]store.Event, error) {
	out := make([]store.Event, len(events))
	for i, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", e.EventType(), err)
		}
		out[i] = store.Event{ID: s.cfg.IDs.New(), Type: e.EventType(), Data: data, CorrelationID: correlation, CausationID: cause}
	}
	return out, nil
}

// issue carries out commands, at most Parallel at once, and returns their answers in order. A
// refusal is an answer; any other failure is the error (the trigger is then retried: the
// commands that were carried out are idempotent).
func (s *Saga) issue(ctx context.Context, cmds []domain.FulfilmentCommand, correlation string) ([]domain.FulfilmentReply, error) {
	replies := make([]domain.FulfilmentReply, len(cmds))
	errs := make([]error, len(cmds))
	sem := make(chan struct{}, s.cfg.Parallel)
	var wg sync.WaitGroup
	for i, c := range cmds {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			replies[i], errs[i] = s.do(ctx, c, command.Meta{CommandID: c.ID, CorrelationID: correlation})
		}()
	}
	wg.Wait()
	return replies, errors.Join(errs...)
}

// do carries out one command and turns its outcome into the run's answer.
func (s *Saga) do(ctx context.Context, c domain.FulfilmentCommand, m command.Meta) (domain.FulfilmentReply, error) {
	var (
		res command.Result
		err error
	)
	switch c.Kind {
	case domain.CommandReserve:
		res, err = s.cfg.Commands.ReserveStock(ctx, m, c.SKU, domain.Reserve{OrderID: c.OrderID, Quantity: c.Quantity})
	case domain.CommandRelease:
		res, err = s.cfg.Commands.ReleaseStock(ctx, m, c.SKU, c.OrderID)
	case domain.CommandCommit:
		res, err = s.cfg.Commands.CommitStock(ctx, m, c.SKU, c.OrderID)
	case domain.CommandCharge:
		res, err = s.cfg.Commands.ChargeAccount(ctx, m, c.AccountID, domain.ChargeAccount{OrderID: c.OrderID, CustomerID: c.CustomerID, Currency: c.Currency, Amount: c.Amount})
	case domain.CommandRefund:
		res, err = s.cfg.Commands.RefundAccount(ctx, m, c.AccountID, c.OrderID)
	case domain.CommandConfirm:
		res, err = s.cfg.Commands.ConfirmOrder(ctx, m, c.OrderID)
	case domain.CommandCancel:
		res, err = s.cfg.Commands.CancelOrder(ctx, m, c.OrderID, c.Reason)
	default:
		return domain.FulfilmentReply{}, fmt.Errorf("saga: unknown command kind %q", c.Kind)
	}
	r := domain.FulfilmentReply{Kind: c.Kind, SKU: c.SKU, OK: err == nil}
	if len(res.EventIDs) > 0 {
		r.EventID = res.EventIDs[0]
	}
	var rule *domain.RuleError
	switch {
	case err == nil:
		return r, nil
	case refusable(c.Kind) && errors.As(err, &rule):
		r.Reason = rule.Code
		return r, nil
	case c.Kind == domain.CommandCharge && (errors.Is(err, domain.ErrNotFound) || errors.Is(err, domain.ErrInvalid)):
		r.Reason = "not-found" // no such account: the order named one that cannot be charged
		return r, nil
	}
	return r, fmt.Errorf("%s %s: %w", c.Kind, c.ID, err)
}

// refusable reports whether the aggregate may refuse a command of kind by a business rule:
// a reservation (not enough stock) and a charge (funds, owner, currency). The others cannot be
// refused in a run's flow; a refusal of one is an error, retried and then seen by operators.
func refusable(kind string) bool {
	return kind == domain.CommandReserve || kind == domain.CommandCharge
}
