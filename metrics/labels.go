package metrics

import (
	"sync"
	"sync/atomic"
)

// overflowLabel replaces a label value once a vector has reached its
// cardinality cap. A bug that feeds request data (a path, a user name) into a
// label then costs one extra series instead of exhausting memory.
const overflowLabel = "other"

// childCache resolves label values to pre-built children once and serves
// later lookups from an immutable map behind an atomic pointer: the hot path
// is one atomic load and one map read, with no lock and no allocation. A miss
// copies the map under mu; misses only happen for the first request of each
// new label value, of which there are a handful per process.
//
// The zero value is not usable; build it with newChildCache.
type childCache[K comparable, V any] struct {
	cur  atomic.Pointer[map[K]V]
	mu   sync.Mutex
	max  int       // distinct keys kept before make(overflow) is used
	make func(K) V // builds the children of one key; called under mu
	over K         // the key that stands for every key past max
}

func newChildCache[K comparable, V any](max int, over K, make func(K) V) *childCache[K, V] {
	c := &childCache[K, V]{max: max, make: make, over: over}
	m := map[K]V{}
	c.cur.Store(&m)
	return c
}

// get returns the children for k, building them on first use.
func (c *childCache[K, V]) get(k K) V {
	if v, ok := (*c.cur.Load())[k]; ok {
		return v
	}
	return c.slow(k)
}

func (c *childCache[K, V]) slow(k K) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.cur.Load()
	if v, ok := old[k]; ok {
		return v
	}
	if len(old) >= c.max {
		k = c.over
		if v, ok := old[k]; ok {
			return v
		}
	}
	v := c.make(k)
	next := make(map[K]V, len(old)+1)
	for kk, vv := range old {
		next[kk] = vv
	}
	next[k] = v
	c.cur.Store(&next)
	return v
}
