package domain_test

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/domain"
)

// t0 is the injected clock's start; the runs' timeout is 15 minutes.
var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

const timeout = 15 * time.Minute

func placedFor(id string, skus ...string) domain.OrderPlaced {
	o := domain.OrderPlaced{OrderID: id, CustomerID: customerID, PaymentAccountID: "acc-1", Currency: "EUR"}
	for i, sku := range skus {
		o.Lines = append(o.Lines, domain.OrderLine{SKU: sku, Quantity: int64(i + 1), UnitPrice: 100})
		o.Total += int64(i+1) * 100
	}
	return o
}

// run folds the events a run decided: given these triggers, in order, at these times.
type step struct {
	trigger domain.FulfilmentTrigger
	at      time.Time
}

func runOf(t *testing.T, steps ...step) domain.Fulfilment {
	t.Helper()
	var f domain.Fulfilment
	for _, s := range steps {
		for _, e := range f.Decide(s.trigger, s.at).Events {
			f = f.Evolve(e)
		}
	}
	return f
}

func start(o domain.OrderPlaced) step {
	return step{domain.StartFulfilment{Order: o, Timeout: timeout}, t0}
}

func replies(r ...domain.FulfilmentReply) step {
	return step{domain.FulfilmentReplies(r), t0.Add(time.Second)}
}

func ok(kind, sku, eventID string) domain.FulfilmentReply {
	return domain.FulfilmentReply{Kind: kind, SKU: sku, OK: true, EventID: eventID}
}

func refused(kind, sku, reason string) domain.FulfilmentReply {
	return domain.FulfilmentReply{Kind: kind, SKU: sku, Reason: reason}
}

// kinds lists the commands as "kind sku".
func kinds(cs []domain.FulfilmentCommand) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = strings.TrimSpace(c.Kind + " " + c.SKU)
	}
	return out
}

func wantKinds(t *testing.T, got []domain.FulfilmentCommand, want ...string) {
	t.Helper()
	if g := kinds(got); !slices.Equal(g, want) && !(len(g) == 0 && len(want) == 0) {
		t.Fatalf("commands = %q, want %q", g, want)
	}
}

func stepOf(t *testing.T, d domain.FulfilmentDecision) (domain.FulfilmentStep, string) {
	t.Helper()
	if len(d.Events) != 1 {
		t.Fatalf("decided %d events, want 1: %+v", len(d.Events), d.Events)
	}
	switch e := d.Events[0].(type) {
	case domain.FulfilmentStarted:
		return e.Step, e.Reason
	case domain.FulfilmentReplied:
		return e.Step, e.Reason
	case domain.FulfilmentDeadlinePassed:
		return e.Step, e.Reason
	}
	t.Fatalf("decided %T", d.Events[0])
	return "", ""
}

func wantStep(t *testing.T, d domain.FulfilmentDecision, step domain.FulfilmentStep, reason string) {
	t.Helper()
	if s, r := stepOf(t, d); s != step || r != reason {
		t.Fatalf("step = %s (%q), want %s (%q)", s, r, step, reason)
	}
}

func wantNothing(t *testing.T, d domain.FulfilmentDecision) {
	t.Helper()
	if len(d.Events) != 0 || len(d.Commands) != 0 || d.SetDeadline != nil || d.CancelDeadline != nil {
		t.Fatalf("decided %+v, want nothing", d)
	}
}

func wantCarryOn(t *testing.T, d domain.FulfilmentDecision, commands ...string) {
	t.Helper()
	if len(d.Events) != 0 || d.SetDeadline != nil || d.CancelDeadline != nil {
		t.Fatalf("decided %+v, want no event and no deadline", d)
	}
	wantKinds(t, d.Commands, commands...)
}

// TestFulfilmentAnyTriggerPastTheDeadlineTimesOut: the scheduler fires within a minute, or its
// firing may be lost; a run before its point of no return never charges after its deadline.
func TestFulfilmentAnyTriggerPastTheDeadlineTimesOut(t *testing.T) {
	o := placedFor("o1", "A", "B")
	reserving := runOf(t, start(o), replies(ok("reserve", "A", "eA")))
	late := t0.Add(timeout)
	wantStep(t, reserving.Decide(domain.StartFulfilment{Order: o, Timeout: timeout}, late), domain.StepCompensating, domain.ReasonTimeout)
	wantStep(t, reserving.Decide(domain.FulfilmentReplies{ok("reserve", "A", "eA")}, late), domain.StepCompensating, domain.ReasonTimeout)
	// The last reservation arrives too late: recorded, and the run compensates instead of charging.
	d := reserving.Decide(domain.FulfilmentReplies{ok("reserve", "B", "eB")}, late)
	wantStep(t, d, domain.StepCompensating, domain.ReasonTimeout)
	wantKinds(t, d.Commands, "release A", "release B", "cancel")
	// A charge made before the deadline stands: the run is past its point of no return.
	charging := runOf(t, start(o), replies(ok("reserve", "A", "eA"), ok("reserve", "B", "eB")))
	wantStep(t, charging.Decide(domain.FulfilmentReplies{ok("charge", "", "c")}, late), domain.StepCommitting, "")
	// One second before it, nothing times out.
	wantCarryOn(t, reserving.Decide(domain.FulfilmentReplies{ok("reserve", "A", "eA")}, late.Add(-time.Second)), "reserve B")
}

func TestFulfilmentStartReservesEveryLineAndSetsTheDeadline(t *testing.T) {
	o := placedFor("o1", "A", "B")
	d := domain.Fulfilment{}.Decide(domain.StartFulfilment{Order: o, Timeout: timeout}, t0.Add(300*time.Millisecond))
	wantStep(t, d, domain.StepReserving, "")
	wantKinds(t, d.Commands, "reserve A", "reserve B")
	e := d.Events[0].(domain.FulfilmentStarted)
	if e.Decisions != domain.FulfilmentDecisions || e.Total != 300 || e.PaymentAccountID != "acc-1" || e.CustomerID != customerID {
		t.Errorf("started = %+v", e)
	}
	if d.SetDeadline == nil || !d.SetDeadline.At.Equal(t0.Add(timeout)) || d.SetDeadline.ID != e.Deadline.ID || e.Deadline.ID == "" {
		t.Errorf("deadline = %+v, event's %+v; want at %v", d.SetDeadline, e.Deadline, t0.Add(timeout))
	}
	if d.Commands[1].Quantity != 2 || d.Commands[0].ID == d.Commands[1].ID {
		t.Errorf("commands = %+v", d.Commands)
	}
	if !slices.Equal(e.Issued, []string{d.Commands[0].ID, d.Commands[1].ID}) {
		t.Errorf("issued = %q", e.Issued)
	}
}

func TestFulfilmentStartTwiceIssuesTheSameCommandsAndAppendsNothing(t *testing.T) {
	o := placedFor("o1", "A", "B")
	first := domain.Fulfilment{}.Decide(domain.StartFulfilment{Order: o, Timeout: timeout}, t0)
	f := runOf(t, start(o))
	again := f.Decide(domain.StartFulfilment{Order: o, Timeout: timeout}, t0.Add(time.Minute))
	if len(again.Events) != 0 {
		t.Fatalf("a redelivered start appended %+v", again.Events)
	}
	if !reflect.DeepEqual(again.Commands, first.Commands) || !reflect.DeepEqual(again.SetDeadline, first.SetDeadline) {
		t.Fatalf("redelivery decided %+v, first %+v", again, first)
	}
}

func TestFulfilmentWithoutPaymentAccountCancels(t *testing.T) {
	o := placedFor("o1", "A")
	o.PaymentAccountID = ""
	d := domain.Fulfilment{}.Decide(domain.StartFulfilment{Order: o, Timeout: timeout}, t0)
	wantStep(t, d, domain.StepCompensating, domain.ReasonNoPaymentAccount)
	wantKinds(t, d.Commands, "release A", "cancel")
	if d.SetDeadline != nil || d.Commands[1].Reason != domain.ReasonNoPaymentAccount {
		t.Fatalf("decided %+v", d)
	}
}

func TestFulfilmentHappyPath(t *testing.T) {
	o := placedFor("o1", "A", "B")
	f := runOf(t, start(o))

	d := f.Decide(domain.FulfilmentReplies{ok("reserve", "A", "eA")}, t0)
	wantStep(t, d, domain.StepReserving, "")
	wantKinds(t, d.Commands, "reserve B")

	f = runOf(t, start(o), replies(ok("reserve", "A", "eA")))
	d = f.Decide(domain.FulfilmentReplies{ok("reserve", "B", "eB")}, t0)
	wantStep(t, d, domain.StepCharging, "")
	wantKinds(t, d.Commands, "charge")
	c := d.Commands[0]
	if c.AccountID != "acc-1" || c.CustomerID != customerID || c.Amount != 300 || c.Currency != "EUR" {
		t.Fatalf("charge = %+v", c)
	}

	f = runOf(t, start(o), replies(ok("reserve", "A", "eA"), ok("reserve", "B", "eB")))
	d = f.Decide(domain.FulfilmentReplies{ok("charge", "", "eC")}, t0)
	wantStep(t, d, domain.StepCommitting, "")
	wantKinds(t, d.Commands, "commit A", "commit B", "confirm")
	if d.CancelDeadline == nil || d.CancelDeadline.ID != f.Deadline.ID {
		t.Fatalf("charged: deadline to cancel = %+v, want %+v", d.CancelDeadline, f.Deadline)
	}

	f = runOf(t, start(o), replies(ok("reserve", "A", "eA"), ok("reserve", "B", "eB")), replies(ok("charge", "", "eC")))
	d = f.Decide(domain.FulfilmentReplies{ok("commit", "A", ""), ok("commit", "B", ""), ok("confirm", "", "")}, t0)
	wantStep(t, d, domain.StepConfirmed, "")
	wantKinds(t, d.Commands)
	f = f.Evolve(d.Events[0])
	if !f.Finished() {
		t.Fatal("a confirmed run is not finished")
	}
}

func TestFulfilmentOutOfStockReleasesEveryLineAndCancels(t *testing.T) {
	o := placedFor("o1", "A", "B", "C")
	f := runOf(t, start(o), replies(ok("reserve", "A", "eA")))
	d := f.Decide(domain.FulfilmentReplies{refused("reserve", "B", "insufficient-stock")}, t0)
	wantStep(t, d, domain.StepCompensating, domain.ReasonOutOfStock)
	// C is released too: its reservation may be on the wire.
	wantKinds(t, d.Commands, "release A", "release B", "release C", "cancel")
	if d.CancelDeadline == nil {
		t.Error("compensation keeps the deadline")
	}
	f = f.Evolve(d.Events[0])
	d = f.Decide(domain.FulfilmentReplies{ok("release", "A", "rA"), ok("release", "B", ""), ok("release", "C", ""), ok("cancel", "", "x")}, t0)
	wantStep(t, d, domain.StepCancelled, domain.ReasonOutOfStock)
	if !f.Evolve(d.Events[0]).Finished() {
		t.Fatal("a cancelled run with nothing left is not finished")
	}
}

func TestFulfilmentRefusedChargeReleasesAndCancelsWithItsReason(t *testing.T) {
	for reason, want := range map[string]string{
		"insufficient-funds": "insufficient-funds", "account-not-owned": "account-not-owned",
		"currency-mismatch": "currency-mismatch", "not-found": domain.ReasonPaymentAccountNotFound,
	} {
		t.Run(reason, func(t *testing.T) {
			f := runOf(t, start(placedFor("o1", "A")), replies(ok("reserve", "A", "eA")))
			d := f.Decide(domain.FulfilmentReplies{refused("charge", "", reason)}, t0)
			wantStep(t, d, domain.StepCompensating, want)
			wantKinds(t, d.Commands, "release A", "cancel")
		})
	}
}

func TestFulfilmentDeadline(t *testing.T) {
	o := placedFor("o1", "A", "B")
	reserving := runOf(t, start(o), replies(ok("reserve", "A", "eA")))
	id := reserving.Deadline.ID
	late := t0.Add(timeout + time.Second)

	t.Run("fires while reserving: compensates in reverse and cancels", func(t *testing.T) {
		d := reserving.Decide(domain.FireDeadline{ID: id}, late)
		wantStep(t, d, domain.StepCompensating, domain.ReasonTimeout)
		wantKinds(t, d.Commands, "release A", "release B", "cancel")
	})
	t.Run("fires while charging", func(t *testing.T) {
		f := runOf(t, start(o), replies(ok("reserve", "A", "eA"), ok("reserve", "B", "eB")))
		d := f.Decide(domain.FireDeadline{ID: id}, late)
		wantStep(t, d, domain.StepCompensating, domain.ReasonTimeout)
		wantKinds(t, d.Commands, "release A", "release B", "cancel")
	})
	t.Run("another ID changes nothing", func(t *testing.T) {
		wantNothing(t, reserving.Decide(domain.FireDeadline{ID: id + "x"}, late))
	})
	t.Run("fires twice: the second changes nothing", func(t *testing.T) {
		f := reserving.Evolve(reserving.Decide(domain.FireDeadline{ID: id}, late).Events[0])
		// No event: the compensation it began is issued again, as a retried firing after a
		// crash needs it.
		wantCarryOn(t, f.Decide(domain.FireDeadline{ID: id}, late.Add(time.Minute)), "release A", "release B", "cancel")
	})
	t.Run("after the charge changes nothing", func(t *testing.T) {
		f := runOf(t, start(o), replies(ok("reserve", "A", "eA"), ok("reserve", "B", "eB")), replies(ok("charge", "", "c")))
		wantCarryOn(t, f.Decide(domain.FireDeadline{ID: id}, late), "commit A", "commit B", "confirm")
	})
	t.Run("after the run finished changes nothing", func(t *testing.T) {
		f := runOf(t, start(o), replies(ok("reserve", "A", "eA"), ok("reserve", "B", "eB")), replies(ok("charge", "", "c")),
			replies(ok("commit", "A", ""), ok("commit", "B", ""), ok("confirm", "", "")))
		wantNothing(t, f.Decide(domain.FireDeadline{ID: id}, late))
	})
	t.Run("redrive before it passes issues what is pending", func(t *testing.T) {
		d := reserving.Decide(domain.RedriveFulfilment{}, t0.Add(time.Minute))
		if len(d.Events) != 0 || d.SetDeadline == nil {
			t.Fatalf("decided %+v", d)
		}
		wantKinds(t, d.Commands, "reserve B")
	})
	t.Run("redrive after it passed compensates", func(t *testing.T) {
		wantStep(t, reserving.Decide(domain.RedriveFulfilment{}, t0.Add(timeout)), domain.StepCompensating, domain.ReasonTimeout)
	})
}

func TestFulfilmentLateReplies(t *testing.T) {
	o := placedFor("o1", "A", "B")
	timedOut := runOf(t, start(o), replies(ok("reserve", "A", "eA")), step{domain.FireDeadline{ID: runOf(t, start(o)).Deadline.ID}, t0.Add(timeout)})

	t.Run("a reservation after compensation began is released", func(t *testing.T) {
		f := timedOut.Evolve(timedOut.Decide(domain.FulfilmentReplies{ok("release", "A", "rA"), ok("release", "B", "")}, t0).Events[0])
		d := f.Decide(domain.FulfilmentReplies{ok("reserve", "B", "eB")}, t0)
		wantStep(t, d, domain.StepCompensating, domain.ReasonTimeout)
		wantKinds(t, d.Commands, "release B", "cancel")
		if !strings.HasSuffix(d.Commands[0].ID, "/late-1") {
			t.Errorf("late release ID %q is the first release's", d.Commands[0].ID)
		}
	})
	t.Run("a reservation after the run was cancelled is released", func(t *testing.T) {
		f := timedOut.Evolve(timedOut.Decide(domain.FulfilmentReplies{ok("release", "A", "rA"), ok("release", "B", ""), ok("cancel", "", "")}, t0).Events[0])
		if f.Step != domain.StepCancelled || !f.Finished() {
			t.Fatalf("step %s finished %v", f.Step, f.Finished())
		}
		d := f.Decide(domain.FulfilmentReplies{ok("reserve", "B", "eB")}, t0)
		wantStep(t, d, domain.StepCancelled, domain.ReasonTimeout)
		wantKinds(t, d.Commands, "release B")
		f = f.Evolve(d.Events[0])
		if f.Finished() {
			t.Fatal("finished while holding a reservation")
		}
		// The same reservation seen again (a redelivery of its event) changes nothing.
		wantCarryOn(t, f.Decide(domain.FulfilmentReplies{ok("reserve", "B", "eB")}, t0), "release B")
		f = f.Evolve(f.Decide(domain.FulfilmentReplies{ok("release", "B", "rB")}, t0).Events[0])
		if !f.Finished() {
			t.Fatal("not finished after the late release")
		}
	})
	t.Run("a charge that lands after compensation began is refunded", func(t *testing.T) {
		f := runOf(t, start(o), replies(ok("reserve", "A", "eA"), ok("reserve", "B", "eB")), step{domain.FireDeadline{ID: timedOut.Deadline.ID}, t0.Add(timeout)})
		d := f.Decide(domain.FulfilmentReplies{ok("charge", "", "c1")}, t0)
		wantStep(t, d, domain.StepCompensating, domain.ReasonTimeout)
		wantKinds(t, d.Commands, "refund", "release A", "release B", "cancel")
	})
	t.Run("a refusal after compensation began changes only the knowledge", func(t *testing.T) {
		d := timedOut.Decide(domain.FulfilmentReplies{refused("reserve", "B", "insufficient-stock")}, t0)
		wantStep(t, d, domain.StepCompensating, domain.ReasonTimeout)
	})
}

func TestFulfilmentDuplicatesChangeNothing(t *testing.T) {
	o := placedFor("o1", "A", "B")
	f := runOf(t, start(o), replies(ok("reserve", "A", "eA")))
	// No news: no event, and what the run has pending is issued again (the instance that was to
	// issue it may have vanished).
	wantCarryOn(t, f.Decide(domain.FulfilmentReplies{ok("reserve", "A", "eA")}, t0), "reserve B")
	// The same reservation answered by a command that changed nothing (a retry) is no news either.
	wantCarryOn(t, f.Decide(domain.FulfilmentReplies{ok("reserve", "A", "")}, t0), "reserve B")
	// On a finished run, no news decides nothing at all.
	done := runOf(t, start(placedFor("o2", "A")), replies(ok("reserve", "A", "eA")), replies(ok("charge", "", "c")),
		replies(ok("commit", "A", ""), ok("confirm", "", "")))
	wantNothing(t, done.Decide(domain.FulfilmentReplies{ok("reserve", "A", "eA")}, t0))
	// A reply for a run that never started.
	wantNothing(t, domain.Fulfilment{}.Decide(domain.FulfilmentReplies{ok("reserve", "A", "eA")}, t0))
	wantNothing(t, domain.Fulfilment{}.Decide(domain.RedriveFulfilment{}, t0))
}

// TestFulfilmentAlwaysEnds drives random runs: replies in any order, duplicated, late; the
// deadline at any point. Whatever happens, issuing what Next says and answering it ends the run
// confirmed (charged once, every line committed) or cancelled (nothing held, refunded if
// charged), and deciding is deterministic.
func TestFulfilmentAlwaysEnds(t *testing.T) {
	for seed := range uint64(2000) {
		r := rand.New(rand.NewPCG(seed, 7))
		o := placedFor("o1", "A", "B", "C")
		var f domain.Fulfilment
		apply := func(tr domain.FulfilmentTrigger, now time.Time) []domain.FulfilmentCommand {
			d1, d2 := f.Decide(tr, now), f.Decide(tr, now)
			if !reflect.DeepEqual(d1, d2) {
				t.Fatalf("seed %d: Decide is not deterministic", seed)
			}
			for _, e := range d1.Events {
				f = f.Evolve(e)
			}
			return d1.Commands
		}
		pending := apply(domain.StartFulfilment{Order: o, Timeout: timeout}, t0)
		held := map[string]bool{}
		charged, refunded := false, false
		var wire []domain.FulfilmentReply // replies not yet delivered
		for i := 0; i < 200 && !(f.Finished() && len(wire) == 0); i++ {
			switch n := r.IntN(10); {
			case n == 0:
				pending = apply(domain.FireDeadline{ID: f.Deadline.ID}, t0.Add(timeout))
			case n == 1 && len(wire) > 0:
				k := r.IntN(len(wire))
				pending = apply(domain.FulfilmentReplies{wire[k]}, t0)
				if r.IntN(3) > 0 { // sometimes delivered again later
					wire = slices.Delete(wire, k, k+1)
				}
			case len(pending) > 0:
				c := pending[r.IntN(len(pending))]
				rep := domain.FulfilmentReply{Kind: c.Kind, SKU: c.SKU, OK: true}
				switch c.Kind { // carry it out on a model of the aggregates
				case domain.CommandReserve:
					if c.SKU == "C" && seed%3 == 0 {
						rep.OK, rep.Reason = false, "insufficient-stock"
					} else if !held[c.SKU] {
						held[c.SKU] = true
						rep.EventID = c.ID
					}
				case domain.CommandRelease:
					held[c.SKU] = false
				case domain.CommandCommit:
					held[c.SKU] = false
				case domain.CommandCharge:
					if seed%5 == 0 {
						rep.OK, rep.Reason = false, "insufficient-funds"
					} else {
						charged = true
					}
				case domain.CommandRefund:
					refunded = charged
				}
				if r.IntN(4) == 0 {
					wire = append(wire, rep) // answered later
					pending = apply(domain.RedriveFulfilment{}, t0)
				} else {
					pending = apply(domain.FulfilmentReplies{rep}, t0)
				}
			default:
				pending = apply(domain.RedriveFulfilment{}, t0)
			}
		}
		if !f.Finished() {
			t.Fatalf("seed %d: run not finished: step %s, pending %q", seed, f.Step, kinds(f.Next()))
		}
		switch f.Step {
		case domain.StepConfirmed:
			if !charged || refunded {
				t.Fatalf("seed %d: confirmed with charged %v refunded %v", seed, charged, refunded)
			}
		case domain.StepCancelled:
			if charged && !refunded {
				t.Fatalf("seed %d: cancelled but charged and not refunded", seed)
			}
			for sku, h := range held {
				if h {
					t.Fatalf("seed %d: cancelled but %s still reserved", seed, sku)
				}
			}
		}
	}
}

func TestCheckFulfilment(t *testing.T) {
	o := placedFor("o1", "A", "B")
	var f domain.Fulfilment
	var events []domain.Event
	var at []time.Time
	for _, s := range []step{start(o), replies(ok("reserve", "A", "eA"))} {
		for _, e := range f.Decide(s.trigger, s.at).Events {
			f, events, at = f.Evolve(e), append(events, e), append(at, s.at)
		}
	}
	if _, div := domain.CheckFulfilment(events, at); div != nil {
		t.Fatalf("the decisions that recorded the run diverge from it: %+v", div)
	}
	// A run recorded by other decisions: say, ones that charged before reserving B.
	changed := slices.Clone(events)
	r := changed[1].(domain.FulfilmentReplied)
	r.Step, r.Issued = domain.StepCharging, []string{"fulfilment-o1/2/charge"}
	changed[1] = r
	_, div := domain.CheckFulfilment(changed, at)
	if div == nil || div.Version != 2 || !strings.Contains(div.Recorded, "step=charging") || !strings.Contains(div.Current, "step=reserving") {
		t.Fatalf("divergence = %+v, want one at version 2", div)
	}
	// Recorded the same, but issuing something else next.
	changed = slices.Clone(events)
	r = changed[1].(domain.FulfilmentReplied)
	r.Issued = nil
	changed[1] = r
	if _, div := domain.CheckFulfilment(changed, at); div == nil || div.Version != 2 {
		t.Fatalf("divergence = %+v, want one at version 2 (what it issued)", div)
	}
}
