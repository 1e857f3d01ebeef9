package store

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Memory is an event store in memory, for unit tests of code that uses a store. It passes the same
// contract suite (storetest) as the DynamoDB store: same validation, conflicts, idempotency,
// atomicity and snapshot rules. It is safe for concurrent use.
type Memory struct {
	reg *Registry
	now func() time.Time
	*memoryData
}

// memoryData is what Memory values made by WithRegistry share.
type memoryData struct {
	mu        sync.Mutex
	streams   map[string][]Event
	snapshots map[string]Snapshot
	claims    map[string]string            // key -> owning stream
	inserted  map[[2]string]map[string]any // table, key -> attributes
}

// NewMemory returns an empty in-memory store; clock may be nil for time.Now.
func NewMemory(reg *Registry, clock func() time.Time) *Memory {
	if clock == nil {
		clock = time.Now
	}
	return &Memory{reg: reg, now: clock, memoryData: &memoryData{streams: map[string][]Event{}, snapshots: map[string]Snapshot{}, claims: map[string]string{}, inserted: map[[2]string]map[string]any{}}}
}

// WithRegistry returns a store over the same data that reads and writes with another registry,
// as a new program version would.
func (m *Memory) WithRegistry(reg *Registry, clock func() time.Time) *Memory {
	if clock == nil {
		clock = time.Now
	}
	return &Memory{reg: reg, now: clock, memoryData: m.memoryData}
}

// Append behaves as DynamoDB.Append.
func (m *Memory) Append(ctx context.Context, streamID string, expected int64, events ...Event) (Appended, error) {
	res, err := m.AppendStreams(ctx, StreamAppend{StreamID: streamID, Expected: expected, Events: events})
	if err != nil {
		return Appended{}, err
	}
	return res[0], nil
}

// AppendStreams behaves as DynamoDB.AppendStreams.
func (m *Memory) AppendStreams(ctx context.Context, appends ...StreamAppend) ([]Appended, error) {
	batch, err := prepare(m.reg, m.now(), appends)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Appended, len(batch))
	retried := true
	for i, p := range batch {
		stored := m.streams[p.stream]
		if int64(len(stored)) == p.expected {
			retried = false
			continue
		}
		if int64(len(stored)) > p.expected && m.holds(stored, p) {
			out[i] = p.appended(stored[p.expected : p.expected+int64(len(p.events))])
			continue
		}
		return nil, &ConflictError{StreamID: p.stream, Expected: p.expected, Actual: int64(len(stored))}
	}
	if retried {
		return out, nil
	}
	for i, p := range batch {
		if int64(len(m.streams[p.stream])) != p.expected {
			// Part of this append was written before, part not: not a retry of the same append.
			return nil, &ConflictError{StreamID: p.stream, Expected: p.expected, Actual: int64(len(m.streams[p.stream]))}
		}
		out[i] = p.appended(p.events)
	}
	for _, p := range batch {
		for _, c := range p.claims {
			if owner, ok := m.claims[c.Key]; ok && owner != p.stream {
				return nil, &ClaimError{StreamID: p.stream, Key: c.Key}
			}
		}
	}
	for _, p := range batch {
		for _, in := range p.inserts {
			if _, ok := m.inserted[[2]string{in.Table, in.Key}]; ok {
				return nil, &InsertError{StreamID: p.stream, Table: in.Table, Key: in.Key}
			}
		}
	}
	for _, p := range batch {
		m.streams[p.stream] = append(m.streams[p.stream], p.events...)
		for _, in := range p.inserts {
			attrs := make(map[string]any, len(in.Attrs))
			for k, v := range in.Attrs {
				if b, ok := v.([]byte); ok {
					v = append([]byte(nil), b...)
				}
				attrs[k] = v
			}
			m.inserted[[2]string{in.Table, in.Key}] = attrs
		}
		for _, c := range p.claims {
			if c.Release {
				delete(m.claims, c.Key)
			} else {
				m.claims[c.Key] = p.stream
			}
		}
	}
	return out, nil
}

// holds reports whether stored has p's events, by ID, at p's versions.
func (m *Memory) holds(stored []Event, p pending) bool {
	if int64(len(stored)) < p.expected+int64(len(p.events)) {
		return false
	}
	for i, e := range p.events {
		if stored[p.expected+int64(i)].ID != e.ID {
			return false
		}
	}
	return true
}

// Load behaves as DynamoDB.Load.
func (m *Memory) Load(ctx context.Context, streamID string, span Span) ([]Event, error) {
	if err := ValidStreamID(streamID); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	stored := m.streams[streamID]
	m.mu.Unlock()
	from, to := max(span.From, 1), span.To
	if to == 0 || to > int64(len(stored)) {
		to = int64(len(stored))
	}
	var out []Event
	for v := from; v <= to; v++ {
		e := stored[v-1]
		if !span.AsOf.IsZero() && e.RecordedAt.After(span.AsOf) {
			break
		}
		if err := m.reg.upcast(&e); err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// SaveSnapshot behaves as DynamoDB.SaveSnapshot.
func (m *Memory) SaveSnapshot(ctx context.Context, snap Snapshot) error {
	if err := checkSnapshot(snap); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if head := int64(len(m.streams[snap.StreamID])); head < snap.Version {
		return fmt.Errorf("snapshot of %s: %w: version %d is ahead of the stream (%d)", snap.StreamID, ErrInvalidEvent, snap.Version, head)
	}
	if cur, ok := m.snapshots[snap.StreamID]; ok && cur.SchemaVersion == snap.SchemaVersion && cur.Version >= snap.Version {
		return nil
	}
	snap.TakenAt = m.now().UTC()
	m.snapshots[snap.StreamID] = snap
	return nil
}

// LoadSnapshot behaves as DynamoDB.LoadSnapshot.
func (m *Memory) LoadSnapshot(ctx context.Context, streamID string, schema int) (Snapshot, error) {
	if err := ValidStreamID(streamID); err != nil {
		return Snapshot{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	snap, ok := m.snapshots[streamID]
	if !ok || snap.SchemaVersion != schema {
		return Snapshot{}, ErrNoSnapshot
	}
	return snap, nil
}
