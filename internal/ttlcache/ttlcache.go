// Package ttlcache is the bounded, expiring in-process cache in front of
// store reads on the request path (guest-token stamps and verified tokens,
// access-token records). Its generation counter makes invalidation safe
// against loads in flight: a loader records Generation before reading the
// store and stores its result with PutIf, which drops it if anything was
// invalidated meanwhile, so a value read before a revocation is never
// cached after the revocation's invalidation.
package ttlcache

import (
	"sync"
	"time"
)

// Cache is a bounded map whose entries expire. Reads take only a read lock.
// When full, an insert first drops expired entries, then about an eighth of
// the rest, arbitrarily: eviction order does not matter for correctness,
// because an evicted entry is only read again from the store. The zero
// value is not usable; build it with New. Safe for concurrent use.
type Cache[K comparable, V any] struct {
	mu  sync.RWMutex
	m   map[K]entry[V]
	max int
	gen uint64
	// sweepAt is the size at which the next insert drops expired entries.
	sweepAt int
}

type entry[V any] struct {
	v       V
	expires time.Time
}

// New returns an empty cache holding at most size entries (size < 1
// means 1).
func New[K comparable, V any](size int) *Cache[K, V] {
	return &Cache[K, V]{m: make(map[K]entry[V]), max: max(size, 1)}
}

// Get returns the value of k if it is live at now.
func (c *Cache[K, V]) Get(k K, now time.Time) (V, bool) {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || !now.Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Generation returns the invalidation counter, for a later PutIf.
func (c *Cache[K, V]) Generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// PutIf stores v until expires unless an invalidation (Put, Delete or
// Clear) happened since gen was read.
func (c *Cache[K, V]) PutIf(gen uint64, k K, v V, expires, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	c.putLocked(k, v, expires, now)
}

// Put stores v until expires and voids loads in flight (it is an
// invalidation: the caller knows the value is newer than any being loaded).
func (c *Cache[K, V]) Put(k K, v V, expires, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.putLocked(k, v, expires, now)
}

func (c *Cache[K, V]) putLocked(k K, v V, expires, now time.Time) {
	// Expired entries go once the map has doubled since the last sweep
	// (amortised O(1) per insert), not only when it is full: a cache of
	// 100 000 jti entries living a second held every jti seen for hours
	// (docs/reliability.md, "Soak").
	if _, ok := c.m[k]; !ok && len(c.m) >= c.sweepAt {
		for k2, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k2)
			}
		}
		c.sweepAt = max(2*len(c.m), 64)
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for k2, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k2)
			}
		}
		// Still full: drop about an eighth, so that the sweep above is not
		// paid on every insert.
		for k2 := range c.m {
			if len(c.m) < c.max-c.max/8 {
				break
			}
			delete(c.m, k2)
		}
	}
	c.m[k] = entry[V]{v: v, expires: expires}
}

// Delete removes k and voids loads in flight.
func (c *Cache[K, V]) Delete(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.m, k)
}

// Clear removes everything and voids loads in flight.
func (c *Cache[K, V]) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.m)
}

// Len is the number of entries, live or expired.
func (c *Cache[K, V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
