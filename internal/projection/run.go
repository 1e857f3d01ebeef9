package projection

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"

	"github.com/eventfold/eventfold/internal/consumer"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/store"
)

// A fulfilment run's read model is the fold of its whole stream, not a change made by one event:
// whether it is finished is domain.Fulfilment.Finished, which needs all the run knows (which
// lines it holds, whether it was charged), and its list of steps is bounded to the newest
// MaxRunSteps, which no update expression can keep. So the projector applies version v of a run
// by loading versions 1..v-1 from the event store, folding them and v with the domain's own
// Evolve, and writing the result with the same conditional update as any other item (on v-1).
// That costs one Query of a few small items per run event (a run has a handful), and keeps no
// state of the domain's in the read model: a change to domain.Fulfilment needs no migration of
// read models, and the item is the fold of the store, as every read model is.

// Run is the read model of a fulfilment run: what the projector writes to its item (see the
// Attr constants) and what the query side serves.
type Run struct {
	OrderID      string
	Step         domain.FulfilmentStep
	CancelReason string
	// DeadlineAt is the run's deadline (store.TimeLayout); DeadlinePending reports whether the
	// run still waits on it (reserving or charging, and it has not passed).
	DeadlineAt      string
	DeadlinePending bool
	// LastError is the last refusal a reply recorded ("reserve SKU-2: insufficient-stock"), or
	// "".
	LastError string
	Finished  bool
	Decisions int
	// Steps are the run's newest MaxRunSteps events, oldest first.
	Steps   []RunStep
	Version int64
}

// RunStep is one event of a run: the step it led to, when it was recorded (store.TimeLayout),
// its type and version.
type RunStep struct {
	Step      domain.FulfilmentStep
	At        string
	EventType string
	Version   int64
}

// IsRunEvent reports whether events of type typ belong to a fulfilment run.
func IsRunEvent(typ string) bool {
	switch typ {
	case domain.TypeFulfilmentStarted, domain.TypeFulfilmentReplied, domain.TypeFulfilmentDeadlinePassed:
		return true
	}
	return false
}

// FoldRun folds a run's events, in version order from its first, into its read model. An event
// that cannot be decoded, or is not a run's, is poison (consumer.ErrPoison).
func FoldRun(events []store.Event) (Run, error) {
	var (
		f domain.Fulfilment
		r Run
	)
	for _, e := range events {
		de, err := domain.Decode(e.Type, e.Data)
		if err != nil {
			return Run{}, fmt.Errorf("%w: %s at %d: %v", consumer.ErrPoison, e.StreamID, e.Version, err)
		}
		switch ev := de.(type) {
		case domain.FulfilmentStarted, domain.FulfilmentDeadlinePassed:
		case domain.FulfilmentReplied:
			for _, reply := range ev.Replies {
				if !reply.OK {
					r.LastError = refusal(reply)
				}
			}
		default:
			return Run{}, fmt.Errorf("%w: %s at %d: %s is not an event of a run", consumer.ErrPoison, e.StreamID, e.Version, e.Type)
		}
		f = f.Evolve(de)
		r.Steps = append(r.Steps, RunStep{Step: f.Step, At: store.FormatTime(e.RecordedAt), EventType: e.Type, Version: e.Version})
		r.Version = e.Version
	}
	if len(r.Steps) > MaxRunSteps {
		r.Steps = r.Steps[len(r.Steps)-MaxRunSteps:]
	}
	r.OrderID, r.Step, r.CancelReason, r.Decisions = f.OrderID, f.Step, f.Reason, f.Decisions
	r.DeadlineAt = store.FormatTime(f.Deadline.At)
	r.DeadlinePending = f.BeforePointOfNoReturn()
	r.Finished = f.Finished()
	return r, nil
}

// refusal is the text of a refused reply: its command, its SKU when it has one, and the
// refusal's code. Replies hold no personal data, so neither does this.
func refusal(r domain.FulfilmentReply) string {
	reason := r.Reason
	if reason == "" {
		reason = "refused"
	}
	if r.SKU != "" {
		return fmt.Sprintf("%s %s: %s", r.Kind, r.SKU, reason)
	}
	return fmt.Sprintf("%s: %s", r.Kind, reason)
}

// update is the UpdateItem of a run's item that makes it r: every attribute set, those that are
// empty removed (the deadline's index keys while the run does not wait on it).
func (r Run) update() expression.UpdateBuilder {
	steps := make([]map[string]any, len(r.Steps))
	for i, s := range r.Steps {
		steps[i] = map[string]any{AttrStepName: string(s.Step), AttrStepAt: s.At, AttrStepEventType: s.EventType, AttrStepVersion: s.Version}
	}
	u := expression.Set(expression.Name(AttrKind), expression.Value(KindRun)).
		Set(expression.Name(AttrOrderID), expression.Value(r.OrderID)).
		Set(expression.Name(AttrRunStep), expression.Value(string(r.Step))).
		Set(expression.Name(AttrDeadline), expression.Value(map[string]any{AttrDeadlineAt: r.DeadlineAt, AttrDeadlinePending: r.DeadlinePending})).
		Set(expression.Name(AttrFinished), expression.Value(r.Finished)).
		Set(expression.Name(AttrDecisions), expression.Value(r.Decisions)).
		Set(expression.Name(AttrSteps), expression.Value(steps))
	optional := func(name, v string) {
		if v == "" {
			u = u.Remove(expression.Name(name))
		} else {
			u = u.Set(expression.Name(name), expression.Value(v))
		}
	}
	optional(AttrCancelReason, r.CancelReason)
	optional(AttrLastError, r.LastError)
	// A run is in the index from its start until it finishes, whatever its step: one past its
	// deadline and not finished is stuck, waiting on the deadline or on a compensation or commit
	// that did not finish. Two index writes a run: when it starts, when it finishes.
	if !r.Finished && r.DeadlineAt != "" {
		u = u.Set(expression.Name(AttrWaitingPartition), expression.Value(WaitingPartition)).
			Set(expression.Name(AttrWaitingUntil), expression.Value(r.DeadlineAt))
	} else {
		u = u.Remove(expression.Name(AttrWaitingPartition)).Remove(expression.Name(AttrWaitingUntil))
	}
	return u
}

// runChange is the update version e.Version of a run makes: the fold of the run's events up to
// it, the earlier ones loaded from the event store (see the comment at the top of this file).
func (p *Projector) runChange(ctx context.Context, e store.Event) (expression.UpdateBuilder, error) {
	var prior []store.Event
	if e.Version > 1 {
		var err error
		prior, err = p.events.Load(ctx, e.StreamID, store.Span{From: 1, To: e.Version - 1})
		if err != nil {
			return expression.UpdateBuilder{}, fmt.Errorf("load run %s before %d: %w", e.StreamID, e.Version, err)
		}
		for i, pe := range prior {
			if pe.Version != int64(i+1) {
				return expression.UpdateBuilder{}, fmt.Errorf("load run %s before %d: version %d at position %d", e.StreamID, e.Version, pe.Version, i+1)
			}
		}
		if int64(len(prior)) != e.Version-1 {
			return expression.UpdateBuilder{}, fmt.Errorf("load run %s before %d: the store has %d of its %d events", e.StreamID, e.Version, len(prior), e.Version-1)
		}
	}
	r, err := FoldRun(append(prior, e))
	if err != nil {
		return expression.UpdateBuilder{}, err
	}
	return r.update(), nil
}
