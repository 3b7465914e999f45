package accesstoken

import (
	"sync"
	"time"
)

// ttlCache is a bounded map whose entries expire. gen counts
// invalidations: a loader records it before reading the store and stores
// its result only if nothing was invalidated meanwhile, so a record read
// before a revocation is never cached after the revocation's invalidation.
type ttlCache[K comparable, V any] struct {
	mu  sync.RWMutex
	m   map[K]ttlEntry[V]
	max int
	gen uint64
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

func newTTLCache[K comparable, V any](max int) *ttlCache[K, V] {
	return &ttlCache[K, V]{m: make(map[K]ttlEntry[V]), max: max}
}

func (c *ttlCache[K, V]) get(k K, now time.Time) (V, bool, uint64) {
	c.mu.RLock()
	e, ok := c.m[k]
	gen := c.gen
	c.mu.RUnlock()
	if !ok || !now.Before(e.expires) {
		var zero V
		return zero, false, gen
	}
	return e.v, true, gen
}

func (c *ttlCache[K, V]) putIf(gen uint64, k K, v V, expires, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for k2, e := range c.m {
			if !now.Before(e.expires) || len(c.m) >= c.max-c.max/8 {
				delete(c.m, k2)
			}
		}
	}
	c.m[k] = ttlEntry[V]{v: v, expires: expires}
}

func (c *ttlCache[K, V]) del(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.m, k)
}

func (c *ttlCache[K, V]) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.m)
}
