package epoch

import (
	"hash/maphash"
	"sync"
)

// cache holds epochs read from the store, absent ones included (negative
// caching), for at most a TTL. It is the hot path of every credential
// check, so a hit is one hash, one read lock and one map read, whatever the
// number of users. Shards keep writers (misses, invalidations) from
// serialising readers. Numeric ids (all of FAB's) are keyed by their value
// in a map with inline entries, so a hit touches one cache line of the map
// rather than also chasing a key string: that keeps the cost flat from a
// thousand to a million users.
type cache struct {
	seed   maphash.Seed
	perCap int
	shards [cacheShards]cacheShard
}

const cacheShards = 64

type cacheShard struct {
	mu   sync.RWMutex
	m    map[string]cacheEntry
	nums map[uint64]cacheEntry
	// gen counts invalidations of this shard. A loader records it before
	// reading the store and caches its result only if it has not moved, so
	// a value read before a stamp can never be cached after the stamp's
	// invalidation.
	gen uint64
}

type cacheEntry struct {
	epoch   int64 // Unix ms; meaningful only when has
	has     bool  // false: the store held no epoch (negative entry)
	expires int64 // Unix ns after which the entry is not served
}

func newCache(size int) *cache {
	c := &cache{seed: maphash.MakeSeed(), perCap: max(size/cacheShards, 1)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]cacheEntry)
		c.shards[i].nums = make(map[uint64]cacheEntry)
	}
	return c
}

// numeric parses a canonical decimal id (no leading zero, at most 18
// digits); anything else is keyed as a string.
func numeric(key string) (uint64, bool) {
	if key == "" || len(key) > 18 || (key[0] == '0' && len(key) > 1) {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(key); i++ {
		d := key[i] - '0'
		if d > 9 {
			return 0, false
		}
		n = n*10 + uint64(d)
	}
	return n, true
}

func (c *cache) shard(key string) (*cacheShard, uint64, bool) {
	if n, ok := numeric(key); ok {
		// Fibonacci hashing spreads consecutive ids over the shards.
		return &c.shards[(n*0x9E3779B97F4A7C15)>>58], n, true
	}
	return &c.shards[maphash.String(c.seed, key)%cacheShards], 0, false
}

func (sh *cacheShard) load(key string, n uint64, num bool) (cacheEntry, bool) {
	if num {
		e, ok := sh.nums[n]
		return e, ok
	}
	e, ok := sh.m[key]
	return e, ok
}

func (sh *cacheShard) remove(key string, n uint64, num bool) {
	if num {
		delete(sh.nums, n)
	} else {
		delete(sh.m, key)
	}
}

// get returns the live entry for key at nowNS and the shard's generation
// (for a later putIf on a miss).
func (c *cache) get(key string, nowNS int64) (cacheEntry, bool, uint64) {
	sh, n, num := c.shard(key)
	sh.mu.RLock()
	e, ok := sh.load(key, n, num)
	gen := sh.gen
	sh.mu.RUnlock()
	if !ok || nowNS >= e.expires {
		return cacheEntry{}, false, gen
	}
	return e, true, gen
}

// putIf caches e unless the shard was invalidated since gen.
func (c *cache) putIf(key string, gen uint64, e cacheEntry, nowNS int64) {
	sh, n, num := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.gen != gen {
		return
	}
	c.putLocked(sh, key, n, num, e, nowNS)
}

// raise records a value this replica just wrote: the entry becomes at
// least epoch, and loads in flight are voided.
func (c *cache) raise(key string, epoch int64, expires, nowNS int64) {
	sh, n, num := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.gen++
	if old, ok := sh.load(key, n, num); ok && old.has && old.epoch > epoch && nowNS < old.expires {
		epoch = old.epoch
	}
	c.putLocked(sh, key, n, num, cacheEntry{epoch: epoch, has: true, expires: expires}, nowNS)
}

func (c *cache) putLocked(sh *cacheShard, key string, n uint64, num bool, e cacheEntry, nowNS int64) {
	if _, ok := sh.load(key, n, num); !ok && len(sh.m)+len(sh.nums) >= c.perCap {
		evict(sh.m, c.perCap, nowNS)
		evict(sh.nums, c.perCap-len(sh.m), nowNS)
	}
	if num {
		sh.nums[n] = e
	} else {
		sh.m[key] = e
	}
}

// evict makes room in m: expired entries first, then about an eighth at
// random (map order), so the sweep is not paid on every insert. Eviction
// order does not matter for correctness: an evicted key is read from the
// store again.
func evict[K comparable](m map[K]cacheEntry, limit int, nowNS int64) {
	for k, old := range m {
		if nowNS >= old.expires {
			delete(m, k)
		}
	}
	for k := range m {
		if len(m) < limit-limit/8 {
			break
		}
		delete(m, k)
	}
}

// del drops key and voids loads in flight.
func (c *cache) del(key string) {
	sh, n, num := c.shard(key)
	sh.mu.Lock()
	sh.gen++
	sh.remove(key, n, num)
	sh.mu.Unlock()
}

// clear drops everything (after a lost subscription, when messages may
// have been missed).
func (c *cache) clear() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.gen++
		clear(sh.m)
		clear(sh.nums)
		sh.mu.Unlock()
	}
}
