package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
)

// Upcaster upgrades an event payload from one schema version to the next.
type Upcaster func(data json.RawMessage) (json.RawMessage, error)

// EventType declares an event type the store accepts.
type EventType struct {
	// Name is the type's stable string constant, e.g. "UserRegistered".
	Name string
	// Schema is the current schema version of its payload, 1 or more.
	Schema int
	// Upcasters[v] turns a payload of schema version v into one of version v+1; there must be one
	// for every v from 1 to Schema-1.
	Upcasters map[int]Upcaster
}

// Registry knows the event types a program reads and writes, and upcasts old payloads on read. It
// is immutable after NewRegistry and safe for concurrent use.
type Registry struct {
	types map[string]EventType
}

var typeNamePattern = regexp.MustCompile(`^[A-Z][A-Za-z0-9]{0,127}$`)

// NewRegistry returns a registry of the given types, reporting every problem at once: a name that
// is not an UpperCamelCase constant, a duplicate, a schema below 1, a missing upcaster.
func NewRegistry(types ...EventType) (*Registry, error) {
	r := &Registry{types: make(map[string]EventType, len(types))}
	var errs []error
	for _, t := range types {
		if !typeNamePattern.MatchString(t.Name) {
			errs = append(errs, fmt.Errorf("event type %q: name must be UpperCamelCase letters and digits", t.Name))
		}
		if _, dup := r.types[t.Name]; dup {
			errs = append(errs, fmt.Errorf("event type %q: registered twice", t.Name))
		}
		if t.Schema < 1 {
			errs = append(errs, fmt.Errorf("event type %q: schema version %d, want 1 or more", t.Name, t.Schema))
		}
		for v := 1; v < t.Schema; v++ {
			if t.Upcasters[v] == nil {
				errs = append(errs, fmt.Errorf("event type %q: no upcaster from schema %d to %d", t.Name, v, v+1))
			}
		}
		r.types[t.Name] = t
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// MustRegistry is NewRegistry for package-level declarations and tests; it panics on error.
func MustRegistry(types ...EventType) *Registry {
	r, err := NewRegistry(types...)
	if err != nil {
		panic(err)
	}
	return r
}

// prepare checks an event about to be appended: its type is known and its schema version is the
// current one (0 is set to the current one).
func (r *Registry) prepare(e *Event) error {
	t, ok := r.types[e.Type]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownEventType, e.Type)
	}
	if e.SchemaVersion == 0 {
		e.SchemaVersion = t.Schema
	}
	if e.SchemaVersion != t.Schema {
		return fmt.Errorf("%w: %s with schema version %d, current is %d", ErrInvalidEvent, e.Type, e.SchemaVersion, t.Schema)
	}
	return nil
}

// Upcast brings an event read from the store (or its stream) to its type's current schema
// version. It returns ErrUnknownEventType or ErrUpcast, wrapped, when it cannot.
func (r *Registry) Upcast(e *Event) error { return r.upcast(e) }

// upcast brings a loaded event to its type's current schema version.
func (r *Registry) upcast(e *Event) error {
	t, ok := r.types[e.Type]
	if !ok {
		return fmt.Errorf("%s at version %d: %w: %q", e.StreamID, e.Version, ErrUnknownEventType, e.Type)
	}
	if e.SchemaVersion > t.Schema || e.SchemaVersion < 1 {
		return fmt.Errorf("%s at version %d: %w: %s schema version %d, this program knows up to %d",
			e.StreamID, e.Version, ErrUpcast, e.Type, e.SchemaVersion, t.Schema)
	}
	for e.SchemaVersion < t.Schema {
		data, err := t.Upcasters[e.SchemaVersion](e.Data)
		if err != nil {
			return fmt.Errorf("%s at version %d: %w: %s from schema %d: %v", e.StreamID, e.Version, ErrUpcast, e.Type, e.SchemaVersion, err)
		}
		if !json.Valid(data) {
			return fmt.Errorf("%s at version %d: %w: %s from schema %d: result is not JSON", e.StreamID, e.Version, ErrUpcast, e.Type, e.SchemaVersion)
		}
		e.Data = data
		e.SchemaVersion++
	}
	return nil
}
