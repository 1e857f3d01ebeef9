package schedule

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Memory keeps schedules in memory, under the contract of Scheduler: setting a name that exists
// changes nothing, cancelling one that is gone is no error, a schedule the scheduler would refuse
// is refused with ErrInvalid. Times are kept to the second, in UTC, as the scheduler's at()
// expressions keep them. Nothing fires by itself: a test lists what is Due and fires it. It is
// safe for concurrent use; the zero value is ready.
type Memory struct {
	mu        sync.Mutex
	schedules map[string]Schedule
}

// Set stores sc unless a schedule of its name exists.
func (m *Memory) Set(_ context.Context, sc Schedule) error {
	if err := sc.validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.schedules == nil {
		m.schedules = map[string]Schedule{}
	}
	if _, ok := m.schedules[sc.Name]; ok {
		return nil
	}
	sc.At = sc.At.UTC().Truncate(time.Second)
	sc.Input = append([]byte(nil), sc.Input...)
	m.schedules[sc.Name] = sc
	return nil
}

// Cancel removes the schedule of that name, if there is one.
func (m *Memory) Cancel(_ context.Context, name string) error {
	if !scheduleName.MatchString(name) {
		return fmt.Errorf("%w: name %q: want 1 to 64 of [0-9a-zA-Z._-]", ErrInvalid, name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.schedules, name)
	return nil
}

// Due returns the schedules whose time is at or before now, earliest first (then by name). It
// removes nothing: fire them, then Cancel them, as the scheduler deletes what it has run.
func (m *Memory) Due(now time.Time) []Schedule {
	return m.list(func(s Schedule) bool { return !s.At.After(now) })
}

// Schedules returns every schedule, earliest first (then by name).
func (m *Memory) Schedules() []Schedule {
	return m.list(func(Schedule) bool { return true })
}

func (m *Memory) list(keep func(Schedule) bool) []Schedule {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Schedule
	for _, s := range m.schedules {
		if keep(s) {
			s.Input = append([]byte(nil), s.Input...)
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return out[i].Name < out[j].Name
	})
	return out
}
