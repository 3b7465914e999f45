package session

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// cache is a bounded in-process cache of loaded sessions. Entries live at
// most ttl (the hard bound on how long a deletion on another replica can go
// unnoticed if its pub/sub message is lost). When a shard is full an
// arbitrary entry is evicted: Go's randomised map iteration makes that a
// cheap random eviction, which for a TTL-bounded cache is as good as LRU.
type cache struct {
	ttl    time.Duration
	perCap int
	seed   maphash.Seed
	shards [cacheShards]cacheShard
}

const cacheShards = 32

type cacheShard struct {
	mu sync.RWMutex
	m  map[string]*cacheEntry // by hashed id
	// byValue maps a gateway cookie value that already decoded to its
	// entry, so a hit skips the HMAC and AES work of decoding. Only values
	// of live sessions get here, so forged cookies cannot fill it.
	byValue map[string]*cacheEntry
	// sweepM and sweepV are the sizes of m and byValue at which the next
	// insert sweeps them (see sweep).
	sweepM, sweepV int
	// gen counts deletions in this shard. A load records it before
	// reading the store and caches its record only if it has not moved,
	// so a record read before a destroy is never cached after the
	// destroy's invalidation.
	gen uint64
}

type cacheEntry struct {
	s       *Session
	expires int64 // Unix ns after which the entry is not served
	// seen is the newest last_seen known to this replica (Unix ms); it
	// moves ahead of s.LastSeen between throttled writes and is claimed
	// with CompareAndSwap so one request per minute writes it.
	seen atomic.Int64
	// dead is set when the entry is deleted or superseded, so that a
	// byValue pointer to it stops being served.
	dead atomic.Bool
}

func newCache(size int, ttl time.Duration) *cache {
	c := &cache{ttl: ttl, perCap: max(size/cacheShards, 1), seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[string]*cacheEntry)
		c.shards[i].byValue = make(map[string]*cacheEntry)
	}
	return c
}

func (c *cache) shard(hid string) *cacheShard {
	return &c.shards[maphash.String(c.seed, hid)%cacheShards]
}

// get returns the live entry for hid, or nil.
func (c *cache) get(hid string, now time.Time) *cacheEntry {
	if c.ttl <= 0 {
		return nil
	}
	sh := c.shard(hid)
	sh.mu.RLock()
	e := sh.m[hid]
	sh.mu.RUnlock()
	if e == nil || now.UnixNano() >= e.expires {
		return nil
	}
	return e
}

// generation is hid's shard's deletion count, for putIf.
func (c *cache) generation(hid string) uint64 {
	sh := c.shard(hid)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.gen
}

// putIf is put unless hid's shard saw a deletion since gen; the entry is
// returned either way (uncached then), for the request that loaded it.
func (c *cache) putIf(gen uint64, s *Session, now time.Time) *cacheEntry {
	if c.ttl > 0 {
		sh := c.shard(s.hid)
		sh.mu.RLock()
		moved := sh.gen != gen
		sh.mu.RUnlock()
		if moved {
			return c.entry(s, now)
		}
	}
	return c.put(s, now)
}

// entry wraps s for the cache, without storing it.
func (c *cache) entry(s *Session, now time.Time) *cacheEntry {
	s.prepare(now)
	e := &cacheEntry{s: s, expires: now.Add(c.ttl).UnixNano()}
	e.seen.Store(s.LastSeen.UnixMilli())
	return e
}

// put stores s and returns its entry (a fresh one even when caching is off,
// so callers have somewhere to keep seen).
func (c *cache) put(s *Session, now time.Time) *cacheEntry {
	e := c.entry(s, now)
	if c.ttl <= 0 {
		return e
	}
	sh := c.shard(s.hid)
	sh.mu.Lock()
	if old, ok := sh.m[s.hid]; ok {
		old.dead.Store(true)
	} else {
		sweep(sh.m, &sh.sweepM, now)
		evictOne(sh.m, c.perCap, now)
	}
	sh.m[s.hid] = e
	sh.mu.Unlock()
	return e
}

// evictOne makes room in a full map: it looks at a few entries (map order
// is random) and drops an expired or dead one if there is one, else the
// first seen. Callers hold the shard lock.
func evictOne(m map[string]*cacheEntry, limit int, now time.Time) {
	if len(m) < limit {
		return
	}
	nowNS, victim, n := now.UnixNano(), "", 0
	for k, v := range m {
		stale := v.expires <= nowNS || v.dead.Load()
		if victim == "" || stale {
			victim = k
		}
		if n++; stale || n == 8 {
			break
		}
	}
	delete(m, victim)
}

// sweep drops the expired and dead entries of m once it has doubled since
// the last sweep, and sets the next size at which to sweep. Without it they
// stayed until m reached its bound (CacheSize, 100 000 by default): each
// holds a whole session, and a destroyed session's byValue alias is never
// deleted, so the replicas of a 30-minute soak with two sign-ins a second
// grew by 20 MiB and kept growing (docs/reliability.md, "Soak"). Sweeping
// when the size doubles keeps m within twice its live entries (plus
// sweepMin) at an amortised O(1) per insert. Callers hold the shard lock.
func sweep(m map[string]*cacheEntry, next *int, now time.Time) {
	if len(m) < *next {
		return
	}
	nowNS := now.UnixNano()
	for k, v := range m {
		if v.expires <= nowNS || v.dead.Load() {
			delete(m, k)
		}
	}
	*next = max(2*len(m), sweepMin)
}

// sweepMin is the smallest size at which a shard's maps are swept.
const sweepMin = 64

// getByValue returns the live entry a cookie value decoded to before.
func (c *cache) getByValue(value string, now time.Time) *cacheEntry {
	if c.ttl <= 0 {
		return nil
	}
	sh := c.shard(value)
	sh.mu.RLock()
	e := sh.byValue[value]
	sh.mu.RUnlock()
	if e == nil || e.dead.Load() || now.UnixNano() >= e.expires {
		return nil
	}
	return e
}

// putValue remembers that value decoded to e's session.
func (c *cache) putValue(value string, e *cacheEntry, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	sh := c.shard(value)
	sh.mu.Lock()
	if _, ok := sh.byValue[value]; !ok {
		sweep(sh.byValue, &sh.sweepV, now)
		evictOne(sh.byValue, c.perCap, now)
	}
	sh.byValue[value] = e
	sh.mu.Unlock()
}

func (c *cache) del(hid string) {
	sh := c.shard(hid)
	sh.mu.Lock()
	sh.gen++
	if e := sh.m[hid]; e != nil {
		e.dead.Store(true)
		delete(sh.m, hid)
	}
	sh.mu.Unlock()
}

// clear drops every entry (after a lost subscription, when deletions
// published meanwhile were missed); entries still held by a request are
// marked dead so that no byValue alias serves them.
func (c *cache) clear() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.gen++
		for _, e := range sh.m {
			e.dead.Store(true)
		}
		clear(sh.m)
		clear(sh.byValue)
		sh.mu.Unlock()
	}
}

func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
