package crypto

import (
	"container/list"
	"sync"
	"time"
)

// cache holds unwrapped data keys, at most max of them, each for at most ttl. Keys leaving it
// are zeroed. It is safe for concurrent use.
type cache struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	now   func() time.Time
	order *list.List // front: most recently used
	items map[string]*list.Element
	// gone keeps, for a TTL, the subjects dropped (erased) here, so that a lookup that read
	// their key before the erasure cannot put it back.
	gone map[string]time.Time
}

type entry struct {
	subject string
	key     []byte
	expires time.Time
}

func newCache(max int, ttl time.Duration, now func() time.Time) *cache {
	return &cache{max: max, ttl: ttl, now: now, order: list.New(), items: map[string]*list.Element{}, gone: map[string]time.Time{}}
}

// get copies the subject's key into dst while it is fresh. Copying, not sharing, keeps a key
// that is evicted and zeroed meanwhile from reaching a caller half-used.
func (c *cache) get(subject string, dst *[KeySize]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[subject]
	if !ok {
		return false
	}
	e := el.Value.(*entry)
	if c.now().After(e.expires) {
		c.remove(el)
		return false
	}
	c.order.MoveToFront(el)
	copy(dst[:], e.key)
	return true
}

// put keeps key (which the cache then owns) for subject, unless the subject was dropped within
// the TTL or the cache keeps nothing: then the key is zeroed.
func (c *cache) put(subject string, key []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if t, ok := c.gone[subject]; c.max <= 0 || (ok && now.Sub(t) < c.ttl) {
		clear(key)
		return
	}
	// Sweep: expired entries at the back go now, not only when looked up.
	for i := 0; i < 16 && c.order.Len() > 0; i++ {
		back := c.order.Back()
		if !now.After(back.Value.(*entry).expires) {
			break
		}
		c.remove(back)
	}
	for s, t := range c.gone {
		if now.Sub(t) >= c.ttl {
			delete(c.gone, s)
		}
	}
	if el, ok := c.items[subject]; ok {
		c.remove(el)
	}
	for len(c.items) >= c.max {
		c.remove(c.order.Back())
	}
	c.items[subject] = c.order.PushFront(&entry{subject: subject, key: key, expires: now.Add(c.ttl)})
}

// drop forgets the subject's key, and refuses it for a TTL (see gone).
func (c *cache) drop(subject string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[subject]; ok {
		c.remove(el)
	}
	c.gone[subject] = c.now()
}

// remove forgets an entry and zeroes its key.
func (c *cache) remove(el *list.Element) {
	e := el.Value.(*entry)
	clear(e.key)
	c.order.Remove(el)
	delete(c.items, e.subject)
}
