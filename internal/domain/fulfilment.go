package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The fulfilment of an order is a process (a saga) with a state of its own, event-sourced in
// the stream "fulfilment-<orderId>" like any aggregate: a run. Its decisions are pure, as the
// aggregates' are: [Fulfilment.Decide] takes the run's state, a trigger (the order was placed,
// commands answered, the deadline fired, an operator redrove it) and the time, and returns the
// run's own events, the commands to issue and the deadline to set or cancel. It holds no personal
// data: never the shipping address.
//
// The flow: reserve every line's stock (one command per item), then charge the paying account
// the order's total, then commit every line and confirm the order. A refused reservation or
// charge, or the deadline passing before the charge, starts compensation: refund if charged,
// release every line, cancel the order with a reason. Once charged, the run is past the point of
// no return: committing and confirming cannot be refused, so a deadline then changes nothing.
// Compensation releases every line, not only those the run knows reserved, so a reservation
// still on the wire is not forgotten; one that lands later anyway (a reply after compensation
// began) is released when it is seen. Every command the run issues is idempotent by order in
// the aggregate that carries it out, so issuing one again (after a crash, a redelivery, a race)
// changes nothing.

// Fulfilment event types.
const (
	TypeFulfilmentStarted        = "FulfilmentStarted"
	TypeFulfilmentReplied        = "FulfilmentReplied"
	TypeFulfilmentDeadlinePassed = "FulfilmentDeadlinePassed"
)

// FulfilmentDecisions is the version of the decisions below. A run records the version it
// started under; raise it with every change to Decide or Next, so that `eventfold sagas check`
// can tell which runs in flight the change affects.
const FulfilmentDecisions = 1

// FulfilmentStep is where a run is.
type FulfilmentStep string

// Steps of a run, in the order of the happy path; compensating and cancelled are the other way.
const (
	StepReserving    FulfilmentStep = "reserving"
	StepCharging     FulfilmentStep = "charging"
	StepCommitting   FulfilmentStep = "committing"
	StepConfirmed    FulfilmentStep = "confirmed"
	StepCompensating FulfilmentStep = "compensating"
	StepCancelled    FulfilmentStep = "cancelled"
)

// Cancel reasons a run gives an order.
const (
	ReasonOutOfStock       = "out-of-stock"
	ReasonTimeout          = "timeout"
	ReasonNoPaymentAccount = "no-payment-account"
	// ReasonPaymentAccountNotFound: the paying account does not exist.
	ReasonPaymentAccountNotFound = "payment-account-not-found"
	// A refused charge cancels with the refusal's code: insufficient-funds, account-not-owned,
	// currency-mismatch.
)

// Command kinds a run issues.
const (
	CommandReserve = "reserve"
	CommandRelease = "release"
	CommandCharge  = "charge"
	CommandRefund  = "refund"
	CommandCommit  = "commit"
	CommandConfirm = "confirm"
	CommandCancel  = "cancel"
)

// FulfilmentLine is one SKU of an order, as the run tracks it.
type FulfilmentLine struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// Deadline is the time by which a run must be charged, and its ID: a firing carrying another ID
// (of an earlier run of the same name, or a forged one) changes nothing.
type Deadline struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
}

// FulfilmentStarted: a run began for an order placed. Step is reserving, or compensating when
// the order cannot be fulfilled at all (Reason says why).
type FulfilmentStarted struct {
	OrderID          string           `json:"orderId"`
	CustomerID       string           `json:"customerId"`
	PaymentAccountID string           `json:"paymentAccountId"`
	Currency         string           `json:"currency"`
	Total            int64            `json:"total"`
	Lines            []FulfilmentLine `json:"lines"`
	// Decisions is the FulfilmentDecisions the run started under.
	Decisions int            `json:"decisions"`
	Deadline  Deadline       `json:"deadline"`
	Step      FulfilmentStep `json:"step"`
	Reason    string         `json:"reason,omitempty"`
	// Issued are the IDs of the commands the run issued after this event.
	Issued []string `json:"issued,omitempty"`
}

// FulfilmentReply is the answer to one command a run issued, or an effect of its order seen on
// the event store's stream (a reservation, a charge).
type FulfilmentReply struct {
	Kind string `json:"kind"`
	SKU  string `json:"sku,omitempty"`
	// OK: the command was carried out (or had been: it changed nothing). Otherwise Reason is
	// the refusal's code (a RuleError's Code, or not-found).
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
	// EventID is the event the command appended, when it appended one.
	EventID string `json:"eventId,omitempty"`
}

// FulfilmentReplied: answers arrived; Step and Reason are where they lead.
type FulfilmentReplied struct {
	OrderID string            `json:"orderId"`
	Replies []FulfilmentReply `json:"replies"`
	Step    FulfilmentStep    `json:"step"`
	Reason  string            `json:"reason,omitempty"`
	Issued  []string          `json:"issued,omitempty"`
}

// FulfilmentDeadlinePassed: the run's deadline passed before it was charged; it compensates.
type FulfilmentDeadlinePassed struct {
	OrderID    string         `json:"orderId"`
	DeadlineID string         `json:"deadlineId"`
	Step       FulfilmentStep `json:"step"`
	Reason     string         `json:"reason,omitempty"`
	Issued     []string       `json:"issued,omitempty"`
}

func (FulfilmentStarted) EventType() string        { return TypeFulfilmentStarted }
func (FulfilmentReplied) EventType() string        { return TypeFulfilmentReplied }
func (FulfilmentDeadlinePassed) EventType() string { return TypeFulfilmentDeadlinePassed }

// lineState is what a run knows of one line.
type lineState struct {
	FulfilmentLine
	// Held: the item holds a reservation for the order, as far as the run knows.
	Held bool `json:"held,omitempty"`
	// ReserveEvent is the StockReserved the run knows of, to tell a new reservation from one it
	// has seen.
	ReserveEvent string `json:"reserveEvent,omitempty"`
	Refused      bool   `json:"refused,omitempty"`
	Released     bool   `json:"released,omitempty"`
	Committed    bool   `json:"committed,omitempty"`
	// Late counts reservations that landed after compensation began; each is released anew.
	Late int `json:"late,omitempty"`
}

// Fulfilment is the state of a run. The zero Fulfilment is a run that has not started.
type Fulfilment struct {
	OrderID, CustomerID, PaymentAccountID, Currency string
	Total                                           int64
	Lines                                           []lineState
	Decisions                                       int
	Deadline                                        Deadline
	DeadlinePassed                                  bool
	Step                                            FulfilmentStep
	Reason                                          string
	Charged, ChargeRefused, Refunded                bool
	// ChargeReason is the refused charge's code.
	ChargeReason         string
	Confirmed, Cancelled bool
	// Version is the number of the run's events folded; StepSince the version at which Step
	// began. Both go into the IDs of the commands the run issues.
	Version, StepSince int64
}

// RunID is the stream of the fulfilment of an order.
func RunID(orderID string) string { return "fulfilment-" + orderID }

// Finished reports whether the run is confirmed or cancelled and has nothing left to do.
func (f Fulfilment) Finished() bool {
	return (f.Step == StepConfirmed || f.Step == StepCancelled) && len(f.Next()) == 0
}

// Evolve returns the run after e.
func (f Fulfilment) Evolve(e Event) Fulfilment {
	f.Version++
	f.Lines = slices.Clone(f.Lines)
	prev := f.Step
	switch e := e.(type) {
	case FulfilmentStarted:
		f.OrderID, f.CustomerID, f.PaymentAccountID, f.Currency = e.OrderID, e.CustomerID, e.PaymentAccountID, e.Currency
		f.Total, f.Decisions, f.Deadline = e.Total, e.Decisions, e.Deadline
		f.Lines = make([]lineState, len(e.Lines))
		for i, l := range e.Lines {
			f.Lines[i] = lineState{FulfilmentLine: l}
		}
	case FulfilmentReplied:
		for _, r := range e.Replies {
			f = f.record(r)
		}
	case FulfilmentDeadlinePassed:
		f.DeadlinePassed = true
	}
	if re, ok := e.(runEvent); ok {
		f.Step, f.Reason, _ = re.outcome()
	}
	if f.Step != prev {
		f.StepSince = f.Version
	}
	return f
}

// record applies one reply to the run's knowledge (not its step).
func (f Fulfilment) record(r FulfilmentReply) Fulfilment {
	f.Lines = slices.Clone(f.Lines)
	i := f.line(r.SKU)
	switch r.Kind {
	case CommandReserve:
		if i < 0 {
			break
		}
		l := &f.Lines[i]
		switch {
		case !r.OK:
			l.Refused = true
		case r.EventID != "" && r.EventID != l.ReserveEvent && (l.Released || f.compensating()):
			// A reservation the run did not know of, landed after compensation began: a
			// command still on the wire then. It is released anew.
			l.Late++
			l.Held, l.Released, l.ReserveEvent = true, false, r.EventID
		case !l.Released && !l.Held && !l.Committed:
			l.Held = true
			if l.ReserveEvent == "" {
				l.ReserveEvent = r.EventID
			}
		}
	case CommandRelease:
		if i >= 0 && r.OK {
			f.Lines[i].Held, f.Lines[i].Released = false, true
		}
	case CommandCommit:
		if i >= 0 && r.OK {
			f.Lines[i].Held, f.Lines[i].Committed = false, true
		}
	case CommandCharge:
		if r.OK {
			f.Charged = true
		} else if !f.Charged && !f.ChargeRefused {
			f.ChargeRefused, f.ChargeReason = true, chargeReason(r.Reason)
		}
	case CommandRefund:
		f.Refunded = f.Refunded || r.OK
	case CommandConfirm:
		f.Confirmed = f.Confirmed || r.OK
	case CommandCancel:
		f.Cancelled = f.Cancelled || r.OK
	}
	return f
}

func (f Fulfilment) line(sku string) int {
	return slices.IndexFunc(f.Lines, func(l lineState) bool { return l.SKU == sku })
}

func (f Fulfilment) compensating() bool {
	return f.Step == StepCompensating || f.Step == StepCancelled
}

// FulfilmentCommand is a command a run issues. ID is derived from the run, the step and the
// line, so deciding again from the same state issues the same IDs; it becomes the causation ID
// of the events the command appends.
type FulfilmentCommand struct {
	ID       string
	Kind     string
	OrderID  string
	SKU      string // reserve, release, commit
	Quantity int64  // reserve
	// AccountID, CustomerID, Currency and Amount: charge (Amount) and refund (AccountID).
	AccountID, CustomerID, Currency string
	Amount                          int64
	Reason                          string // cancel
}

// FulfilmentTrigger is what makes a run decide: StartFulfilment, FulfilmentReplies,
// FireDeadline or RedriveFulfilment.
type FulfilmentTrigger interface{ fulfilmentTrigger() }

// StartFulfilment: the order was placed. Timeout is how long the run has to be charged.
type StartFulfilment struct {
	Order   OrderPlaced
	Timeout time.Duration
}

// FulfilmentReplies: commands answered, or effects of the order were seen on the stream.
type FulfilmentReplies []FulfilmentReply

// FireDeadline: the scheduler fired the deadline with this ID.
type FireDeadline struct{ ID string }

// RedriveFulfilment: an operator (or a redelivery) asks the run to carry on: issue what is
// pending again and, past its deadline, compensate.
type RedriveFulfilment struct{}

func (StartFulfilment) fulfilmentTrigger()   {}
func (FulfilmentReplies) fulfilmentTrigger() {}
func (FireDeadline) fulfilmentTrigger()      {}
func (RedriveFulfilment) fulfilmentTrigger() {}

// FulfilmentDecision is what a run decides: at most one event of its own to append, the
// commands to issue once it is appended, and the deadline to set or cancel.
type FulfilmentDecision struct {
	Events   []Event
	Commands []FulfilmentCommand
	// SetDeadline, when not nil, is to be scheduled (setting one that exists is harmless);
	// CancelDeadline, when not nil, is to be deleted (it may have fired already).
	SetDeadline, CancelDeadline *Deadline
}

// Decide decides what the run does on trigger t at now. It never fails: a trigger that does not
// apply (a reply to a run that does not exist, a deadline of another run) decides nothing.
// Deciding again on the same state and trigger decides the same, which is what makes a
// redelivered trigger harmless.
//
// Every trigger on a run that has not finished carries it on: one that brings no news (a
// duplicate reply, a redelivered start, a repeated firing) issues the run's pending commands
// again, under the same IDs, so that a run whose instance vanished before issuing them does not
// wait for a trigger that will never come. And every trigger that finds the run before its point
// of no return at or past its deadline times it out, whether the scheduler has fired yet or not.
func (f Fulfilment) Decide(t FulfilmentTrigger, now time.Time) FulfilmentDecision {
	switch t := t.(type) {
	case StartFulfilment:
		if f.Step != "" {
			return f.carryOn(now, true) // a redelivery
		}
		return f.start(t, now)
	case FulfilmentReplies:
		if f.Step == "" {
			return FulfilmentDecision{}
		}
		g := f
		g.Lines = slices.Clone(f.Lines)
		var changed []FulfilmentReply
		for _, r := range t {
			h := g.record(r)
			if !h.sameAs(g) {
				changed = append(changed, r)
				g = h
			}
		}
		if len(changed) == 0 {
			return f.carryOn(now, false)
		}
		step, reason := g.advance()
		if (step == StepReserving || step == StepCharging) && !now.Before(f.Deadline.At) {
			step, reason = StepCompensating, ReasonTimeout // too late to charge now
		}
		return f.emit(FulfilmentReplied{OrderID: f.OrderID, Replies: changed, Step: step, Reason: reason})
	case FireDeadline:
		switch {
		case f.Step == "" || t.ID != f.Deadline.ID:
			return FulfilmentDecision{}
		case f.BeforePointOfNoReturn():
			return f.timeout()
		}
		return f.carryOn(now, false) // past it already: a retried firing finishes what it began
	case RedriveFulfilment:
		if f.Step == "" {
			return FulfilmentDecision{}
		}
		return f.carryOn(now, true)
	}
	return FulfilmentDecision{}
}

// carryOn decides no news: a timeout if the deadline has come before the point of no return,
// else the pending commands (none for a finished run), and, with schedule, the deadline set or
// cancelled as the run needs it.
func (f Fulfilment) carryOn(now time.Time, schedule bool) FulfilmentDecision {
	switch {
	case f.BeforePointOfNoReturn() && !now.Before(f.Deadline.At):
		return f.timeout()
	case schedule:
		return f.resume()
	case f.Finished():
		return FulfilmentDecision{}
	}
	return FulfilmentDecision{Commands: f.Next()}
}

func (f Fulfilment) start(t StartFulfilment, now time.Time) FulfilmentDecision {
	o := t.Order
	e := FulfilmentStarted{
		OrderID: o.OrderID, CustomerID: o.CustomerID, PaymentAccountID: o.PaymentAccountID,
		Currency: o.Currency, Total: o.Total, Decisions: FulfilmentDecisions, Step: StepReserving,
		Deadline: Deadline{At: now.Add(t.Timeout).UTC().Truncate(time.Second)},
	}
	e.Deadline.ID = fmt.Sprintf("%s/deadline/%d", RunID(o.OrderID), e.Deadline.At.Unix())
	for _, l := range o.Lines {
		e.Lines = append(e.Lines, FulfilmentLine{SKU: l.SKU, Quantity: l.Quantity})
	}
	if o.PaymentAccountID == "" {
		e.Step, e.Reason = StepCompensating, ReasonNoPaymentAccount
	}
	d := f.emit(e)
	if e.Step == StepReserving {
		d.SetDeadline = &e.Deadline
	}
	return d
}

func (f Fulfilment) timeout() FulfilmentDecision {
	return f.emit(FulfilmentDeadlinePassed{OrderID: f.OrderID, DeadlineID: f.Deadline.ID, Step: StepCompensating, Reason: ReasonTimeout})
}

// resume decides no event: the commands pending, and the deadline set while the run waits on
// it, cancelled once it does not (the cancel may have been lost with the instance that was to
// make it).
func (f Fulfilment) resume() FulfilmentDecision {
	d := FulfilmentDecision{Commands: f.Next()}
	switch {
	case f.BeforePointOfNoReturn():
		d.SetDeadline = &f.Deadline
	case f.Deadline.ID != "" && !f.DeadlinePassed:
		d.CancelDeadline = &f.Deadline
	}
	return d
}

// emit decides event e: the run after it, what it issues, and the deadline it no longer needs.
func (f Fulfilment) emit(e Event) FulfilmentDecision {
	g := f.Evolve(e)
	next := g.Next()
	ids := make([]string, len(next))
	for i, c := range next {
		ids[i] = c.ID
	}
	re, ok := e.(runEvent)
	if !ok {
		panic(fmt.Sprintf("domain: %T is not a fulfilment event", e))
	}
	d := FulfilmentDecision{Events: []Event{re.issuing(ids)}, Commands: next}
	// Moved past its deadline by a reply (charged, or a refusal compensates): the schedule is no
	// longer needed. One that passed has fired, and its schedule is gone with it.
	if _, reply := e.(FulfilmentReplied); reply && f.BeforePointOfNoReturn() && !g.BeforePointOfNoReturn() {
		d.CancelDeadline = &f.Deadline
	}
	return d
}

// runEvent is an event of a run: besides its own facts, each records the step and cancel
// reason it led to and the commands issued after it.
type runEvent interface {
	Event
	outcome() (step FulfilmentStep, reason string, issued []string)
	issuing(ids []string) Event
}

func (e FulfilmentStarted) outcome() (FulfilmentStep, string, []string) {
	return e.Step, e.Reason, e.Issued
}
func (e FulfilmentReplied) outcome() (FulfilmentStep, string, []string) {
	return e.Step, e.Reason, e.Issued
}
func (e FulfilmentDeadlinePassed) outcome() (FulfilmentStep, string, []string) {
	return e.Step, e.Reason, e.Issued
}

func (e FulfilmentStarted) issuing(ids []string) Event        { e.Issued = ids; return e }
func (e FulfilmentReplied) issuing(ids []string) Event        { e.Issued = ids; return e }
func (e FulfilmentDeadlinePassed) issuing(ids []string) Event { e.Issued = ids; return e }

// BeforePointOfNoReturn reports whether the run still waits on its deadline: it started and is
// not yet charged nor compensating (a deadline that passed made it compensate).
func (f Fulfilment) BeforePointOfNoReturn() bool {
	return f.Step == StepReserving || f.Step == StepCharging
}

// advance returns the step the run's knowledge leads to, and the cancel reason.
func (f Fulfilment) advance() (FulfilmentStep, string) {
	step, reason := f.Step, f.Reason
	for {
		switch step {
		case StepReserving:
			switch {
			case slices.ContainsFunc(f.Lines, func(l lineState) bool { return l.Refused }):
				step, reason = StepCompensating, ReasonOutOfStock
				continue
			case !slices.ContainsFunc(f.Lines, func(l lineState) bool { return !l.Held }):
				step = StepCharging
				continue
			}
		case StepCharging:
			switch {
			case f.Charged:
				step = StepCommitting
				continue
			case f.ChargeRefused:
				step, reason = StepCompensating, f.ChargeReason
				continue
			}
		case StepCommitting:
			if f.Confirmed && !slices.ContainsFunc(f.Lines, func(l lineState) bool { return !l.Committed }) {
				step = StepConfirmed
			}
		case StepCompensating:
			g := f
			g.Step = step
			if len(g.Next()) == 0 {
				step = StepCancelled
			}
		}
		return step, reason
	}
}

// Next returns the commands the run has pending in its step: what it issues after each event,
// and again when redriven. Each is idempotent by order where it is carried out.
func (f Fulfilment) Next() []FulfilmentCommand {
	var out []FulfilmentCommand
	cmd := func(kind, sku string, late int) FulfilmentCommand {
		id := fmt.Sprintf("%s/%d/%s", RunID(f.OrderID), f.StepSince, kind)
		if sku != "" {
			id += "/" + sku
		}
		if late > 0 {
			id += fmt.Sprintf("/late-%d", late)
		}
		return FulfilmentCommand{ID: id, Kind: kind, OrderID: f.OrderID, SKU: sku}
	}
	switch f.Step {
	case StepReserving:
		for _, l := range f.Lines {
			if !l.Held && !l.Refused {
				c := cmd(CommandReserve, l.SKU, 0)
				c.Quantity = l.Quantity
				out = append(out, c)
			}
		}
	case StepCharging:
		c := cmd(CommandCharge, "", 0)
		c.AccountID, c.CustomerID, c.Currency, c.Amount = f.PaymentAccountID, f.CustomerID, f.Currency, f.Total
		out = append(out, c)
	case StepCommitting:
		for _, l := range f.Lines {
			if !l.Committed {
				out = append(out, cmd(CommandCommit, l.SKU, 0))
			}
		}
		if !f.Confirmed {
			out = append(out, cmd(CommandConfirm, "", 0))
		}
	case StepCompensating, StepCancelled:
		if f.Charged && !f.Refunded {
			c := cmd(CommandRefund, "", 0)
			c.AccountID = f.PaymentAccountID
			out = append(out, c)
		}
		for _, l := range f.Lines {
			if !l.Released && !l.Committed {
				out = append(out, cmd(CommandRelease, l.SKU, l.Late))
			}
		}
		if !f.Cancelled {
			c := cmd(CommandCancel, "", 0)
			c.Reason = f.Reason
			out = append(out, c)
		}
	}
	return out
}

// chargeReason is the cancel reason of a charge refused with reason.
func chargeReason(reason string) string {
	if reason == "not-found" {
		return ReasonPaymentAccountNotFound
	}
	return reason
}

func (f Fulfilment) sameAs(g Fulfilment) bool {
	return slices.Equal(f.Lines, g.Lines) && f.Charged == g.Charged && f.ChargeRefused == g.ChargeRefused &&
		f.Refunded == g.Refunded && f.Confirmed == g.Confirmed && f.Cancelled == g.Cancelled &&
		f.ChargeReason == g.ChargeReason
}

// FulfilmentDivergence is where the current decisions part from those a run recorded: at the
// run's event Version (0: after its last event, in what it would issue next), what the run
// recorded and what Decide decides now, each in a line of text without personal data.
type FulfilmentDivergence struct {
	Version           int64
	Recorded, Current string
}

// CheckFulfilment replays a run's events (with the times they were recorded) through the current
// decisions: each event's trigger is decided again on the state before it, and the event decided
// must equal the one recorded (its step, reason and the commands it issued); after the last, the
// commands pending must be those the run last issued. It returns the run and the first
// divergence, nil when the current code decides as the run did.
func CheckFulfilment(events []Event, at []time.Time) (Fulfilment, *FulfilmentDivergence) {
	var f Fulfilment
	var issued []string
	for i, e := range events {
		var t FulfilmentTrigger
		switch e := e.(type) {
		case FulfilmentStarted:
			o := OrderPlaced{OrderID: e.OrderID, CustomerID: e.CustomerID, PaymentAccountID: e.PaymentAccountID, Currency: e.Currency, Total: e.Total}
			for _, l := range e.Lines {
				o.Lines = append(o.Lines, OrderLine{SKU: l.SKU, Quantity: l.Quantity})
			}
			t = StartFulfilment{Order: o, Timeout: e.Deadline.At.Sub(at[i])}
			issued = e.Issued
		case FulfilmentReplied:
			t, issued = FulfilmentReplies(e.Replies), e.Issued
		case FulfilmentDeadlinePassed:
			t, issued = FireDeadline{ID: e.DeadlineID}, e.Issued
		default:
			return f, &FulfilmentDivergence{Version: int64(i + 1), Recorded: e.EventType(), Current: "not a fulfilment event"}
		}
		d := f.Decide(t, at[i])
		if got, want := summary(d.Events), summary([]Event{e}); got != want {
			return f, &FulfilmentDivergence{Version: int64(i + 1), Recorded: want, Current: got}
		}
		f = f.Evolve(e)
	}
	var now []string
	for _, c := range f.Next() {
		now = append(now, c.ID)
	}
	if !slices.Equal(now, issued) {
		return f, &FulfilmentDivergence{Recorded: "issued " + strings.Join(issued, " "), Current: "issues " + strings.Join(now, " ")}
	}
	return f, nil
}

// summary is what CheckFulfilment compares of a decision: the event's type, step, reason and
// the commands issued after it.
func summary(events []Event) string {
	if len(events) != 1 {
		return fmt.Sprintf("%d events", len(events))
	}
	var step FulfilmentStep
	var reason string
	var issued []string
	if re, ok := events[0].(runEvent); ok {
		step, reason, issued = re.outcome()
	}
	return fmt.Sprintf("%s step=%s reason=%s issued=[%s]", events[0].EventType(), step, reason, strings.Join(issued, " "))
}
