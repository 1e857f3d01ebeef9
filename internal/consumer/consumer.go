// Package consumer is what every DynamoDB Streams consumer of the event store shares (the
// projector, the saga): it turns a batch of stream records into events, hands them to a handler
// in version order per stream, and answers Lambda with ReportBatchItemFailures.
//
// The stream is a notification; the event store is the truth. Handlers are given each event
// once per delivery and must be idempotent by version (see projection). Failures are contained
// per stream: after a record fails, the later records of the same stream in the batch are
// reported failed too, so they are retried in order, while other streams go on. An event that can
// never succeed — it cannot be decoded or upcast, or its handler says it is poison — is parked
// with its full record and the error, so it stops blocking its shard.
package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/eventfold/eventfold/internal/ddbstream"
	"github.com/eventfold/eventfold/internal/metrics"
	"github.com/eventfold/eventfold/internal/store"
)

// Handler applies events of the event store.
type Handler interface {
	// Apply applies one event. Events of a stream arrive in version order within a batch, but
	// a batch may repeat events or start past versions not yet applied: Apply must skip what it
	// has applied and fill gaps from the store. An error wrapping ErrPoison parks the event;
	// any other error fails it, and it is retried.
	Apply(ctx context.Context, e store.Event) error
}

// ErrPoison marks an error that retrying cannot fix.
var ErrPoison = errors.New("poison event")

// The metrics a Processor emits after each batch, under the dimensions DimConsumer (its Name)
// and metrics.DimStack (see Metrics).
const (
	// MetricEventsApplied counts the events the handler applied (or found applied).
	MetricEventsApplied = "EventsApplied"
	// MetricFailures counts the records reported failed, to be retried.
	MetricFailures = "Failures"
	// MetricParked counts the events parked.
	MetricParked = "Parked"
	// MetricLagMs is now minus the recorded-at of the latest event applied; a batch that
	// applied nothing emits none.
	MetricLagMs = "LagMs"
	// DimConsumer is the dimension that names the consumer.
	DimConsumer = "Consumer"
)

// Metrics returns the metrics a Processor emits, with their dimension sets.
func Metrics() []metrics.Metric {
	dims := []string{DimConsumer, metrics.DimStack}
	return []metrics.Metric{{Name: MetricEventsApplied, Dimensions: dims}, {Name: MetricFailures, Dimensions: dims},
		{Name: MetricParked, Dimensions: dims}, {Name: MetricLagMs, Dimensions: dims}}
}

// Parked is an event set aside because it can never be applied as it is.
type Parked struct {
	Consumer string
	StreamID string
	Version  int64
	// Sequence is the stream record's sequence number; Record is the whole record as Lambda
	// delivered it, so the event can be replayed from it.
	Sequence string
	Record   json.RawMessage
	// Error says why, without payload.
	Error    string
	ParkedAt time.Time
}

// Parking keeps parked events.
type Parking interface {
	Park(ctx context.Context, p Parked) error
}

// Processor runs batches of stream records through a Handler. It is safe for concurrent use.
type Processor struct {
	name     string
	reg      *store.Registry
	handler  Handler
	parking  Parking
	log      *slog.Logger
	metrics  *metrics.Emitter
	unsealer Unsealer
	now      func() time.Time
}

// Unsealer opens, in place, the sealed personal fields of an event read from a stream record:
// the stream carries them as stored, sealed. crypto.SealingStore is one.
type Unsealer interface {
	// Open opens e's sealed fields in place; the fields of an erased subject come back shredded
	// (e.Shredded), not as an error.
	Open(ctx context.Context, e *store.Event) error
}

// NoUnsealer opens nothing: the Unsealer of a consumer whose events hold no sealed fields.
var NoUnsealer Unsealer = noUnsealer{}

type noUnsealer struct{}

func (noUnsealer) Open(context.Context, *store.Event) error { return nil }

// Config is what a Processor is built from. Every field but Metrics is required.
type Config struct {
	// Name is the consumer's name in parked events, logs and metrics.
	Name string
	// Registry decodes and upcasts the events of stream records.
	Registry *store.Registry
	// Handler applies the events.
	Handler Handler
	// Parking keeps the events that can never be applied.
	Parking Parking
	Log     *slog.Logger
	// Metrics receives the batch metrics (see Metrics), with the metrics.DimStack dimension
	// set (metrics.Emitter.With) in a deployed function; nil means none.
	Metrics *metrics.Emitter
	// Unsealer opens each event's personal fields before Handler sees it: the sealing event
	// store (crypto.SealingStore), or NoUnsealer when the events hold no sealed fields.
	Unsealer Unsealer
}

// New returns the Processor cfg describes. It reports every missing field at once.
func New(cfg Config) (*Processor, error) {
	var errs []error
	for _, f := range []struct {
		name    string
		missing bool
	}{
		{"Name", cfg.Name == ""}, {"Registry", cfg.Registry == nil}, {"Handler", cfg.Handler == nil},
		{"Parking", cfg.Parking == nil}, {"Log", cfg.Log == nil}, {"Unsealer", cfg.Unsealer == nil},
	} {
		if f.missing {
			errs = append(errs, errors.New("consumer: "+f.name+" is required"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Processor{name: cfg.Name, reg: cfg.Registry, handler: cfg.Handler, parking: cfg.Parking, log: cfg.Log,
		metrics: cfg.Metrics, unsealer: cfg.Unsealer, now: time.Now}, nil
}

// Handle processes a batch and reports the records to retry. It returns an error only when it
// cannot even tell which records failed.
func (p *Processor) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	var (
		resp    events.DynamoDBEventResponse
		failed  = map[string]bool{} // streams with a failed record in this batch
		parked  = map[string]bool{} // streams with a parked record in this batch
		applied int
		parkedN int
		lag     time.Duration // the largest now minus recorded-at of an applied event
	)
	for _, rec := range ev.Records {
		seq := rec.Change.SequenceNumber
		if rec.EventName != string(events.DynamoDBOperationTypeInsert) {
			continue // events are only ever inserted
		}
		stream := rec.Change.Keys[store.AttrStream].String()
		if failed[stream] {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: seq})
			continue
		}
		e, err := p.decode(ctx, rec)
		fromHandler := false
		switch {
		case err == nil && parked[stream]:
			// An earlier event of this stream was poison to the handler: the later ones wait
			// behind it, in order, until it is replayed.
			err = fmt.Errorf("%w: behind a parked event of the same stream", ErrPoison)
		case err == nil:
			err, fromHandler = p.handler.Apply(ctx, e), true
		}
		switch {
		case err == nil:
			applied++
			lag = max(lag, p.now().Sub(e.RecordedAt))
			continue
		case errors.Is(err, ErrPoison), errors.Is(err, store.ErrCorrupt), errors.Is(err, store.ErrUnknownEventType), errors.Is(err, store.ErrUpcast):
			if perr := p.park(ctx, rec, stream, e.Version, err); perr != nil {
				p.log.ErrorContext(ctx, "park failed", "consumer", p.name, "stream_id", stream, "sequence", seq, "error", perr.Error())
				failed[stream] = true
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: seq})
				continue
			}
			// A record that does not decode says nothing of the stream's later events: the
			// handler reads what it missed from the store. Poison to the handler holds them up.
			if fromHandler {
				parked[stream] = true
			}
			parkedN++
		default:
			p.log.ErrorContext(ctx, "apply failed", "consumer", p.name, "stream_id", stream, "version", e.Version, "event_type", e.Type, "error", err.Error())
			failed[stream] = true
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: seq})
		}
	}
	p.log.InfoContext(ctx, "batch", "consumer", p.name, "records", len(ev.Records), "applied", applied, "failed", len(resp.BatchItemFailures), "parked", parkedN)
	if p.metrics != nil {
		values := map[string]metrics.Value{
			MetricEventsApplied: {Value: float64(applied), Unit: metrics.Count},
			MetricFailures:      {Value: float64(len(resp.BatchItemFailures)), Unit: metrics.Count},
			MetricParked:        {Value: float64(parkedN), Unit: metrics.Count},
		}
		if applied > 0 { // a batch that applied nothing says nothing of the lag
			values[MetricLagMs] = metrics.Value{Value: float64(lag.Milliseconds()), Unit: metrics.Milliseconds}
		}
		p.metrics.Emit(map[string]string{DimConsumer: p.name}, values)
	}
	return resp, nil
}

// Replay applies a parked event again, from its record. It returns nil once the handler has
// applied it (or finds it applied already); the caller then removes it from parking.
func (p *Processor) Replay(ctx context.Context, parked Parked) error {
	var rec events.DynamoDBEventRecord
	if err := json.Unmarshal(parked.Record, &rec); err != nil {
		return fmt.Errorf("replay %s at %d: %w: %v", parked.StreamID, parked.Version, store.ErrCorrupt, err)
	}
	e, err := p.decode(ctx, rec)
	if err != nil {
		return fmt.Errorf("replay %s at %d: %w", parked.StreamID, parked.Version, err)
	}
	if err := p.handler.Apply(ctx, e); err != nil {
		return fmt.Errorf("replay %s at %d: %w", parked.StreamID, parked.Version, err)
	}
	return nil
}

// decode turns a stream record into the event it notifies, upcast and opened.
func (p *Processor) decode(ctx context.Context, rec events.DynamoDBEventRecord) (store.Event, error) {
	item, err := ddbstream.Item(rec.Change.NewImage)
	if err != nil {
		return store.Event{}, fmt.Errorf("%w: %v", store.ErrCorrupt, err)
	}
	e, err := store.DecodeItem(item)
	if err != nil {
		return store.Event{}, err
	}
	if err := p.reg.Upcast(&e); err != nil {
		return e, err
	}
	// Not poison: a key service that fails now may answer on the retry.
	if err := p.unsealer.Open(ctx, &e); err != nil {
		return e, fmt.Errorf("open %s at %d: %w", e.StreamID, e.Version, err)
	}
	return e, nil
}

func (p *Processor) park(ctx context.Context, rec events.DynamoDBEventRecord, stream string, version int64, cause error) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if version == 0 {
		version, _ = strconv.ParseInt(rec.Change.Keys[store.AttrVersion].Number(), 10, 64)
	}
	p.log.WarnContext(ctx, "parked", "consumer", p.name, "stream_id", stream, "version", version, "sequence", rec.Change.SequenceNumber, "error", cause.Error())
	return p.parking.Park(ctx, Parked{
		Consumer: p.name, StreamID: stream, Version: version, Sequence: rec.Change.SequenceNumber,
		Record: raw, Error: cause.Error(), ParkedAt: p.now().UTC(),
	})
}
