// Package command is the write side's application layer: it loads an aggregate from the event
// store, lets the domain decide, and appends the resulting events with the version it loaded, so
// that concurrent writers can never both succeed on the same state.
//
// Who may run a command is decided here too, from Meta.Caller (package auth names the caller;
// httpapi only reads it from the request). The rules:
//
//   - A user acts as themself: RegisterUser registers the caller (the user ID is the caller's
//     subject), OpenAccount opens an account the caller owns, PlaceOrder places an order whose
//     customer is the caller, paid from an account the caller owns (checked before anything is
//     appended: ErrUnknownPaymentAccount otherwise, whether the account does not exist or is
//     someone else's). ChangeEmail and DeactivateUser act only on the caller's own user.
//   - Deposit and Withdraw act only on an account the caller owns; someone else's answers exactly
//     as one that does not exist (ErrNotFound, or what If-Match on a missing one gets), so the
//     answer reveals nothing stored.
//   - EraseUser and AddStock are the operator's (an IAM caller; the CLI acts as one).
//   - A refusal that follows from the request alone (another user's ID in the path, a user on an
//     operator command, an operator on a command that acts as a user) is auth.ErrForbidden,
//     before anything is read; no caller at all is auth.ErrUnauthenticated.
//   - The saga's commands (ReserveStock, ChargeAccount, ConfirmOrder, ...) take no caller: the
//     saga is trusted, and acts on what the order it runs names.
//
// Every command follows one shape, update: load (snapshot plus later events where the aggregate
// keeps snapshots), decide, append at the loaded version. On a version conflict a command
// without an expected version (no If-Match) reloads and decides again, a bounded number of times
// with jittered backoff; one with an expected version reports the conflict.
package command

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/eventfold/eventfold/internal/auth"
	"github.com/eventfold/eventfold/internal/domain"
	"github.com/eventfold/eventfold/internal/metrics"
	"github.com/eventfold/eventfold/internal/store"
)

// Registry returns the store registry of the domain's event types: [RegistryOf] the domain's
// table ([domain.Types]).
func Registry() (*store.Registry, error) { return RegistryOf(domain.Types()...) }

// RegistryOf returns the store registry of the given event types, with their schema versions and
// upcasters. It reports every problem NewRegistry finds (a missing upcaster, say).
func RegistryOf(types ...domain.EventType) (*store.Registry, error) {
	out := make([]store.EventType, len(types))
	for i, t := range types {
		ups := make(map[int]store.Upcaster, len(t.Upcasters))
		for v, u := range t.Upcasters {
			ups[v] = store.Upcaster(u)
		}
		out[i] = store.EventType{Name: t.Name, Schema: t.Schema, Upcasters: ups}
	}
	return store.NewRegistry(out...)
}

// Config configures a Service.
type Config struct {
	Store store.EventStore
	// IDs generates event IDs; a generator on time.Now when nil.
	IDs *store.IDs
	// EmailKey keys the hash that guards email uniqueness; at least 32 bytes, secret. Only the
	// user commands need it (RegisterUser, ChangeEmail, EraseUser): a service that never runs
	// them (the saga's) leaves it empty, and they then fail with ErrNoEmailKey.
	EmailKey []byte
	// MaxAttempts bounds how often a command without an expected version is decided again after
	// a version conflict; 0 means 20.
	MaxAttempts int
	// SnapshotEvery is how many events may follow a snapshot before a command takes a new one,
	// for the aggregates that keep snapshots; 0 means 100, negative means never.
	SnapshotEvery int
	// Eraser shreds a data subject's personal data (their key); needed by EraseUser only.
	Eraser Eraser
	// CachedStates bounds how many aggregate states the service keeps between commands, so a warm
	// instance loads only the events after the state it holds; 0 means 10,000, negative none.
	// Aggregates whose state holds personal data are never cached (nor snapshotted).
	CachedStates int
	// Metrics receives MetricEventsAppended after each append, with the metrics.DimStack
	// dimension set (metrics.Emitter.With) in a deployed function; nil means none.
	Metrics *metrics.Emitter
}

// MetricEventsAppended counts the events a Service appended, under the one dimension
// metrics.DimStack: the HTTP commands' and the saga's together (see Metrics). A run's own
// events (package saga) are not among them.
const MetricEventsAppended = "EventsAppended"

// Metrics returns the metrics a Service emits, with their dimension sets.
func Metrics() []metrics.Metric {
	return []metrics.Metric{{Name: MetricEventsAppended, Dimensions: []string{metrics.DimStack}}}
}

// Eraser erases a data subject's key. It is idempotent.
type Eraser interface {
	Erase(ctx context.Context, subject string) error
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("command: Store is required"))
	}
	if n := len(c.EmailKey); n > 0 && n < 32 {
		errs = append(errs, fmt.Errorf("command: EmailKey has %d bytes, want at least 32 (or none, for a service without user commands)", n))
	}
	return errors.Join(errs...)
}

// Service carries out commands. It is safe for concurrent use.
type Service struct {
	store         store.EventStore
	ids           *store.IDs
	emailKey      []byte
	maxAttempts   int
	snapshotEvery int
	states        *states
	eraser        Eraser
	metrics       *metrics.Emitter
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.IDs == nil {
		cfg.IDs = store.NewIDs(nil)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 20
	}
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = 100
	}
	switch {
	case cfg.CachedStates == 0:
		cfg.CachedStates = 10_000
	case cfg.CachedStates < 0:
		cfg.CachedStates = 0
	}
	return &Service{
		store: cfg.Store, ids: cfg.IDs, emailKey: cfg.EmailKey, maxAttempts: cfg.MaxAttempts,
		snapshotEvery: cfg.SnapshotEvery, states: &states{max: cfg.CachedStates, m: map[string]cached{}}, eraser: cfg.Eraser,
		metrics: cfg.Metrics,
	}, nil
}

// Meta travels with every command into its events' envelopes.
type Meta struct {
	// Caller is who asked for the command (auth.FromRequest); the commands a user or an operator
	// runs decide with it who may (see the package doc). The saga's commands ignore it. It is
	// not recorded in the events.
	Caller auth.Caller
	// CommandID identifies the command; it becomes its events' causation ID.
	CommandID string
	// CorrelationID ties the command to everything it causes.
	CorrelationID string
	// Expected, when not nil, is the aggregate version the caller acted on (HTTP If-Match): a
	// different current version is a conflict, not retried.
	Expected *int64
	// MustExist says the caller acts only on an aggregate that exists, at whatever version it is
	// (HTTP If-Match: *): one that does not is ErrPreconditionFailed, and nothing is appended,
	// even by a command that would otherwise create it.
	MustExist bool
	// Retry says an earlier attempt of this very command (same CommandID) may have appended its
	// events already; if it did, the command returns that result and appends nothing.
	Retry bool
}

// Result is what a command did.
type Result struct {
	// ID is the aggregate's ID and StreamID its stream.
	ID       string
	StreamID string
	// Version is the aggregate's version after the command.
	Version int64
	// EventIDs are the IDs of the events the command appended; none when it changed nothing.
	EventIDs []string
}

// ErrNotFound is returned for an aggregate ID that cannot exist (malformed) or does not exist.
var ErrNotFound = domain.ErrNotFound

// ErrNoEmailKey is returned by the user commands (RegisterUser, ChangeEmail, EraseUser) of a
// Service configured without an EmailKey; they changed nothing.
var ErrNoEmailKey = errors.New("command: no EmailKey configured, so this service runs no user commands")

// ErrForbidden is returned when the caller may not run the command, and that follows from the
// request alone ([auth.ErrForbidden]). Nothing was read or written.
var ErrForbidden = auth.ErrForbidden

// ErrUnauthenticated is returned by a command that needs a caller and got none (a zero
// Meta.Caller). Nothing was read or written.
var ErrUnauthenticated = auth.ErrUnauthenticated

// ErrUnknownPaymentAccount is returned by PlaceOrder when the order's payment account is not an
// open account the caller owns: it does not exist, or it is someone else's (the same error
// either way). Nothing was appended.
var ErrUnknownPaymentAccount = errors.New("the payment account is not one of the caller's accounts")

// ErrPreconditionFailed is returned for a command with Meta.MustExist on an aggregate that does
// not exist (its ID is well-formed, its stream empty). The command appended nothing.
var ErrPreconditionFailed = errors.New("the aggregate does not exist")

// aggregate is an aggregate state the generic update can fold.
type aggregate[S any] interface {
	store.Evolver[S, domain.Event]
}

// decision is what a command decides: events, and the unique values they take or give up.
type decision struct {
	events []domain.Event
	claims []store.Claim
}

// kind describes an aggregate type for update.
type kind struct {
	category string
	// snapshotSchema is the version of the aggregate's snapshot format, 0 for an aggregate that
	// keeps no snapshots and is not cached: those whose state holds personal data, until
	// snapshots are sealed and erasure reaches cached states.
	snapshotSchema int
}

// The aggregates. Raise a snapshotSchema whenever the state's shape changes, so that snapshots
// (and nothing else) of the old shape are ignored: accounts and inventory are at 2 since their
// states gained Charges and Settled.
var (
	users     = kind{category: "user"}
	accounts  = kind{category: "account", snapshotSchema: 2}
	inventory = kind{category: "inventory", snapshotSchema: 2}
	orders    = kind{category: "order"}
)

// streamID returns the stream of an aggregate, or ErrNotFound for an ID that cannot be one.
func (k kind) streamID(id string) (string, error) {
	s := k.category + "-" + id
	if id == "" || store.ValidStreamID(s) != nil {
		return "", ErrNotFound
	}
	return s, nil
}

// update runs one command on the aggregate id: load, decide, append at the loaded version.
func update[S aggregate[S]](ctx context.Context, s *Service, m Meta, k kind, id string, decide func(S) (decision, error)) (Result, error) {
	return guarded(ctx, s, m, k, id, nil, decide)
}

// guarded is update for an aggregate the caller may act on only when mine says it is theirs.
// One that is not mine answers exactly as one that does not exist: If-Match (a version, or *)
// is judged against an empty stream, and the command is ErrNotFound; its state is not decided
// on, and the stream is not looked at for an earlier attempt of the command.
func guarded[S aggregate[S]](ctx context.Context, s *Service, m Meta, k kind, id string, mine func(S) bool, decide func(S) (decision, error)) (Result, error) {
	stream, err := k.streamID(id)
	if err != nil {
		return Result{}, err
	}
	for attempt := 1; ; attempt++ {
		state, version, _, tail, err := load[S](ctx, s, k, stream)
		if err != nil {
			return Result{}, err
		}
		if mine != nil && version > 0 && !mine(state) {
			if m.MustExist {
				return Result{}, ErrPreconditionFailed
			}
			if m.Expected != nil && *m.Expected != 0 {
				return Result{}, &store.ConflictError{StreamID: stream, Expected: *m.Expected, Actual: 0}
			}
			return Result{}, ErrNotFound
		}
		if m.Retry && attempt == 1 {
			// An earlier attempt may have appended already, or have a write on the wire. Look
			// after the load, not before it: a write landing between the look and the load would
			// be in the state decided on, and the command would be applied twice. One landing
			// after the look is at a version the append below expects to be free: it conflicts,
			// and the conflict is looked at too.
			if res, done, err := s.caused(ctx, stream, id, m.CommandID, 0); err != nil || done {
				return res, err
			}
		}
		if m.MustExist && version == 0 {
			return Result{}, ErrPreconditionFailed
		}
		if m.Expected != nil && *m.Expected != version {
			// The stream moved past the version the caller acted on: perhaps by this very
			// command, appended by an earlier attempt of it whose answer was lost.
			if *m.Expected < version {
				if res, done, err := s.caused(ctx, stream, id, m.CommandID, *m.Expected); err != nil || done {
					return res, err
				}
			}
			return Result{}, &store.ConflictError{StreamID: stream, Expected: *m.Expected, Actual: version}
		}
		d, err := decide(state)
		if err != nil {
			return Result{}, err
		}
		if len(d.events) == 0 {
			return Result{ID: id, StreamID: stream, Version: version}, nil
		}
		envelopes, err := s.envelopes(m, d.events)
		if err != nil {
			return Result{}, err
		}
		res, err := s.store.AppendStreams(ctx, store.StreamAppend{StreamID: stream, Expected: version, Events: envelopes, Claims: d.claims})
		if errors.Is(err, store.ErrVersionConflict) {
			// Another writer got there first. It may have been another attempt of this very
			// command (an Idempotency-Key retry racing a late write): then the command is done,
			// and deciding again would apply it twice.
			if res, done, cerr := s.caused(ctx, stream, id, m.CommandID, version); cerr != nil || done {
				return res, cerr
			}
			if m.Expected == nil && attempt < s.maxAttempts {
				if err := backoff(ctx, attempt); err != nil {
					return Result{}, err
				}
				continue
			}
		}
		if err != nil {
			return Result{}, err
		}
		if s.metrics != nil {
			// A failed write of a metric is not the command's failure.
			_ = s.metrics.Emit(nil, map[string]metrics.Value{MetricEventsAppended: {Value: float64(len(res[0].Events)), Unit: metrics.Count}})
		}
		out := Result{ID: id, StreamID: stream, Version: res[0].Version}
		for _, e := range res[0].Events {
			out.EventIDs = append(out.EventIDs, e.ID)
		}
		if k.snapshotSchema > 0 {
			for _, e := range d.events {
				state = state.Evolve(e)
			}
			lastID := res[0].Events[len(res[0].Events)-1].ID
			tail += len(envelopes)
			if s.snapshotEvery > 0 && tail >= s.snapshotEvery && s.snapshot(ctx, k, stream, out.Version, lastID, state) {
				tail = 0
			}
			s.states.put(stream, cached{state: state, version: out.Version, eventID: lastID, sinceSnapshot: tail})
		}
		return out, nil
	}
}

// caused finds the events of stream after version after that command commandID caused: those an
// earlier attempt of the same command appended. It reads past every cache, so only retries and
// conflicts pay for it.
func (s *Service) caused(ctx context.Context, stream, id, commandID string, after int64) (Result, bool, error) {
	if commandID == "" {
		return Result{}, false, nil
	}
	events, err := s.store.Load(ctx, stream, store.Span{From: after + 1})
	if err != nil {
		return Result{}, false, err
	}
	res := Result{ID: id, StreamID: stream}
	for _, e := range events {
		if e.CausationID == commandID {
			res.Version = e.Version
			res.EventIDs = append(res.EventIDs, e.ID)
		}
	}
	return res, len(res.EventIDs) > 0, nil
}

// load folds the aggregate's history: from the state cached by an earlier command when there is
// one (one Query for the events after it), else from its snapshot (a GetItem, then a Query), else
// from the start. A cached state, like a snapshot (see store.LoadHistory), is trusted only while
// the event it ends with is still in the stream under the same ID: after a restore of the events
// table it may not be, and appending after it would leave a gap. The Query that reads what
// follows starts at that event and checks it, at no extra request. lastID is the ID of the event
// at version; tail is how many events follow the latest snapshot, as far as load knows.
func load[S aggregate[S]](ctx context.Context, s *Service, k kind, stream string) (state S, version int64, lastID string, tail int, err error) {
	if c, hit := s.states.get(stream); hit {
		events, err := s.store.Load(ctx, stream, store.Span{From: c.version})
		if err != nil {
			return state, 0, "", 0, err
		}
		if len(events) > 0 && events[0].Version == c.version && events[0].ID == c.eventID {
			return fold(c.state.(S), c.version, c.eventID, c.sinceSnapshot, events[1:])
		}
		s.states.drop(stream) // no longer a prefix of the stream: the table was restored
	}
	var h store.History
	if k.snapshotSchema > 0 {
		h, err = store.LoadHistory(ctx, s.store, stream, k.snapshotSchema)
		if err == nil && h.Snapshot != nil && json.Unmarshal(h.Snapshot.Data, &state) != nil {
			// A snapshot this program cannot read is ignored, not trusted: fold from the start,
			// from the zero state (Unmarshal may have filled part of it before failing).
			var zero S
			state, h.Snapshot = zero, nil
			h.Events, err = s.store.Load(ctx, stream, store.Span{})
		}
		if h.Snapshot != nil {
			version, lastID = h.Snapshot.Version, h.Snapshot.EventID
		}
	} else {
		h.Events, err = s.store.Load(ctx, stream, store.Span{})
	}
	if err != nil {
		return state, 0, "", 0, err
	}
	return fold(state, version, lastID, 0, h.Events)
}

// fold applies events to state, which is at version, the event lastID ([store.Fold]).
func fold[S aggregate[S]](state S, version int64, lastID string, tail int, events []store.Event) (S, int64, string, int, error) {
	state, err := store.Fold(state, events, domain.Decode)
	if err != nil {
		return state, 0, "", 0, fmt.Errorf("load %w", err)
	}
	if n := len(events); n > 0 {
		version, lastID = events[n-1].Version, events[n-1].ID
	}
	return state, version, lastID, tail + len(events), nil
}

// cached is an aggregate's state after version, the event eventID, and how many events follow
// its last snapshot.
type cached struct {
	state         any
	version       int64
	eventID       string
	sinceSnapshot int
}

// states is a bounded cache of aggregate states. Events are never changed, so a cached state
// stays a true prefix of its stream, and a load only adds what came after it; unless the events
// table is restored to an earlier point, which load detects. Safe for concurrent
// use; states are values, never changed in place.
type states struct {
	mu  sync.Mutex
	max int
	m   map[string]cached
}

func (c *states) get(stream string) (cached, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[stream]
	return v, ok
}

func (c *states) drop(stream string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, stream)
}

func (c *states) put(stream string, v cached) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.m[stream]; ok && cur.version >= v.version {
		return
	}
	if _, ok := c.m[stream]; !ok && len(c.m) >= c.max {
		for k := range c.m { // evict an arbitrary entry: map order is random
			delete(c.m, k)
			break
		}
	}
	c.m[stream] = v
}

// snapshot saves the aggregate's state at version and reports whether it did. A failure costs
// only a later, longer load, so it does not fail the command that already succeeded.
func (s *Service) snapshot(ctx context.Context, k kind, stream string, version int64, eventID string, state any) bool {
	data, err := json.Marshal(state)
	if err != nil {
		return false
	}
	return s.store.SaveSnapshot(ctx, store.Snapshot{StreamID: stream, Version: version, EventID: eventID, SchemaVersion: k.snapshotSchema, Data: data}) == nil
}

// envelopes wraps domain events for the store.
func (s *Service) envelopes(m Meta, events []domain.Event) ([]store.Event, error) {
	out := make([]store.Event, len(events))
	for i, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", e.EventType(), err)
		}
		out[i] = store.Event{ID: s.ids.New(), Type: e.EventType(), Data: data, CorrelationID: m.CorrelationID, CausationID: m.CommandID}
		if p, ok := e.(domain.Personal); ok {
			out[i].Subject = p.DataSubject()
		}
	}
	return out, nil
}

// backoff sleeps before attempt+1: full jitter, 5 ms doubling up to 200 ms.
func backoff(ctx context.Context, attempt int) error {
	ceiling := min(5*time.Millisecond<<min(attempt, 6), 200*time.Millisecond)
	t := time.NewTimer(rand.N(ceiling) + time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// emailClaim is the uniqueness guard of a normalised email address: a keyed hash, so the claims
// table never holds the address itself.
func (s *Service) emailClaim(email string, release bool) store.Claim {
	mac := hmac.New(sha256.New, s.emailKey)
	mac.Write([]byte(email))
	return store.Claim{Key: "email-" + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), Release: release}
}
