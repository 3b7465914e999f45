package guesttoken

import (
	"sync"
	"time"
)

// ttlCache is a bounded map whose entries expire. It is the hot path of
// every guest-token request, so reads take only a read lock. When full, it
// first drops expired entries, then arbitrary ones: eviction order does not
// matter for correctness, because an evicted entry is only read again from
// the store.
type ttlCache[K comparable, V any] struct {
	mu  sync.RWMutex
	m   map[K]ttlEntry[V]
	max int
	// gen counts invalidations. A loader records it before reading the
	// store and stores its result only if no invalidation happened
	// meanwhile, so a value read before a revocation cannot be cached
	// after the revocation's invalidation.
	gen uint64
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

func newTTLCache[K comparable, V any](max int) *ttlCache[K, V] {
	return &ttlCache[K, V]{m: make(map[K]ttlEntry[V]), max: max}
}

// get returns the live value of k at now.
func (c *ttlCache[K, V]) get(k K, now time.Time) (V, bool) {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || !now.Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// generation returns the invalidation counter for a later putIf.
func (c *ttlCache[K, V]) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// putIf stores v until expires unless an invalidation happened since gen.
func (c *ttlCache[K, V]) putIf(gen uint64, k K, v V, expires time.Time, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	c.putLocked(k, v, expires, now)
}

// put stores v until expires, voiding loads in flight.
func (c *ttlCache[K, V]) put(k K, v V, expires time.Time, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.putLocked(k, v, expires, now)
}

func (c *ttlCache[K, V]) putLocked(k K, v V, expires time.Time, now time.Time) {
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for k2, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k2)
			}
		}
		// Still full: drop about an eighth, so that the sweep above
		// is not paid on every insert.
		for k2 := range c.m {
			if len(c.m) < c.max-c.max/8 {
				break
			}
			delete(c.m, k2)
		}
	}
	c.m[k] = ttlEntry[V]{v: v, expires: expires}
}

// del removes k and voids loads in flight.
func (c *ttlCache[K, V]) del(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.m, k)
}

// clear removes everything and voids loads in flight.
func (c *ttlCache[K, V]) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.m)
}

// len is the number of entries, live or not (tests).
func (c *ttlCache[K, V]) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
