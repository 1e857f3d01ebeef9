package store

import "sync"

// known remembers, for a bounded number of streams, the highest version seen to exist. Events are
// never deleted, so "version v of stream s exists" stays true once seen: the set only saves the
// read that would prove it again. The one exception is a restore of the events table to an
// earlier point (in place: the table is deleted and restored under its name). The store then
// learns it from what it reads: a load to the end of a stream that shows it shorter than known
// lowers or forgets what is known of it (atMost, forget), and a table that is not there
// (ResourceNotFoundException, as during an in-place restore) forgets everything (clear). Lowering
// is always safe: it costs a head check, never a gap. It is safe for concurrent use.
type known struct {
	mu    sync.Mutex
	max   int
	heads map[string]int64
}

func newKnown(max int) *known {
	return &known{max: max, heads: make(map[string]int64)}
}

// saw records that version v of stream exists.
func (k *known) saw(stream string, v int64) {
	if v < 1 || k.max <= 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if cur, ok := k.heads[stream]; ok {
		if v > cur {
			k.heads[stream] = v
		}
		return
	}
	if len(k.heads) >= k.max {
		for s := range k.heads { // evict an arbitrary entry: map order is random
			delete(k.heads, s)
			break
		}
	}
	k.heads[stream] = v
}

// atMost records that stream has no version above v: what is known of it is lowered to v.
func (k *known) atMost(stream string, v int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if cur, ok := k.heads[stream]; ok && cur > v {
		k.heads[stream] = v
	}
}

// forget drops what is known of stream.
func (k *known) forget(stream string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.heads, stream)
}

// clear drops everything known.
func (k *known) clear() {
	k.mu.Lock()
	defer k.mu.Unlock()
	clear(k.heads)
}

// exists reports whether version v of stream is known to exist; version 0 always does.
func (k *known) exists(stream string, v int64) bool {
	if v == 0 {
		return true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.heads[stream] >= v
}
