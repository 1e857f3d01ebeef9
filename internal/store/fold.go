package store

import "fmt"

// Evolver is a state that events of type E fold into: Evolve returns the state after e. An
// aggregate's state is an Evolver of its domain's events.
type Evolver[S, E any] interface {
	Evolve(e E) S
}

// Fold returns state after events, in order: each is decoded from its type and payload by decode
// (the domain's decoder) and evolved into the state. It is the one fold of stored events, for the
// command layer's loads and the query layer's "as of" reads alike. At the first event decode
// refuses it stops, returning the state before that event and decode's error, wrapped with the
// event's stream and version.
func Fold[S Evolver[S, E], E any](state S, events []Event, decode func(eventType string, data []byte) (E, error)) (S, error) {
	for _, e := range events {
		de, err := decode(e.Type, e.Data)
		if err != nil {
			return state, fmt.Errorf("%s at %d: %w", e.StreamID, e.Version, err)
		}
		state = state.Evolve(de)
	}
	return state, nil
}
