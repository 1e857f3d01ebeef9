package store

import "sync"

// known remembers, for a bounded number of streams, the highest version seen to exist. Events are
// never deleted, so "version v of stream s exists" stays true once seen: the set only saves the
// read that would prove it again. It is safe for concurrent use.
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

// exists reports whether version v of stream is known to exist; version 0 always does.
func (k *known) exists(stream string, v int64) bool {
	if v == 0 {
		return true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.heads[stream] >= v
}
