package store_test

import (
	"errors"
	"strconv"
	"testing"

	"github.com/eventfold/eventfold/internal/store"
)

// sum is a state folding "add" events: the total of their amounts, and how many it saw.
type sum struct{ total, seen int }

func (s sum) Evolve(n int) sum { return sum{s.total + n, s.seen + 1} }

var errUnknown = errors.New("unknown event type")

// decodeAdd decodes an "add" event whose payload is a number.
func decodeAdd(eventType string, data []byte) (int, error) {
	if eventType != "add" {
		return 0, errUnknown
	}
	return strconv.Atoi(string(data))
}

func TestFold(t *testing.T) {
	ev := func(v int64, typ, data string) store.Event {
		return store.Event{StreamID: "sum-1", Version: v, Type: typ, Data: []byte(data)}
	}
	tests := []struct {
		name    string
		from    sum
		events  []store.Event
		want    sum
		wantErr string // "" for none
	}{
		{"no events", sum{7, 1}, nil, sum{7, 1}, ""},
		{"in order", sum{}, []store.Event{ev(1, "add", "2"), ev(2, "add", "3")}, sum{5, 2}, ""},
		{"from a state", sum{10, 4}, []store.Event{ev(5, "add", "1")}, sum{11, 5}, ""},
		{"stops at an unknown type", sum{}, []store.Event{ev(1, "add", "2"), ev(2, "sub", "1"), ev(3, "add", "4")}, sum{2, 1},
			"sum-1 at 2: unknown event type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := store.Fold(tt.from, tt.events, decodeAdd)
			if got != tt.want {
				t.Errorf("Fold = %+v, want %+v", got, tt.want)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Fold: %v", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr || !errors.Is(err, errUnknown)):
				t.Fatalf("Fold error = %v, want %q wrapping the decoder's error", err, tt.wantErr)
			}
		})
	}
}
