package store

import (
	"crypto/rand"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// IDs generates event IDs: ULIDs, unique and sortable by time, monotonic within a millisecond.
// It is safe for concurrent use.
type IDs struct {
	mu      sync.Mutex
	now     func() time.Time
	entropy *ulid.MonotonicEntropy
}

// NewIDs returns an ID generator reading time from now (time.Now when nil).
func NewIDs(now func() time.Time) *IDs {
	if now == nil {
		now = time.Now
	}
	return &IDs{now: now, entropy: ulid.Monotonic(rand.Reader, 0)}
}

// New returns a new ID.
func (g *IDs) New() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return ulid.MustNew(ulid.Timestamp(g.now()), g.entropy).String()
}
