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
}

type entry struct {
	subject string
	key     []byte
	expires time.Time
}

func newCache(max int, ttl time.Duration, now func() time.Time) *cache {
	return &cache{max: max, ttl: ttl, now: now, order: list.New(), items: map[string]*list.Element{}}
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

func (c *cache) put(subject string, key []byte) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[subject]; ok {
		c.remove(el)
	}
	for len(c.items) >= c.max {
		c.remove(c.order.Back())
	}
	c.items[subject] = c.order.PushFront(&entry{subject: subject, key: key, expires: c.now().Add(c.ttl)})
}

func (c *cache) drop(subject string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[subject]; ok {
		c.remove(el)
	}
}

// remove forgets an entry and zeroes its key.
func (c *cache) remove(el *list.Element) {
	e := el.Value.(*entry)
	clear(e.key)
	c.order.Remove(el)
	delete(c.items, e.subject)
}
