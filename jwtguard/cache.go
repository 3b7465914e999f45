package jwtguard

import (
	"sync"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/apijwt"
)

// jtiCache remembers whether a jti is revoked, for at most a TTL. Revoked
// and not-revoked answers are both cached; a revocation on this replica
// overwrites the entry, one on another replica deletes it through pub/sub.
type jtiCache struct {
	mu  sync.RWMutex
	m   map[string]jtiEntry
	max int
	// gen counts invalidations; a load caches its answer only if none
	// happened since it started.
	gen uint64
}

type jtiEntry struct {
	revoked bool
	expires time.Time
}

func newJTICache(max int) *jtiCache { return &jtiCache{m: map[string]jtiEntry{}, max: max} }

func (c *jtiCache) get(k string, now time.Time) (revoked, ok bool, gen uint64) {
	c.mu.RLock()
	e, found := c.m[k]
	gen = c.gen
	c.mu.RUnlock()
	if !found || !now.Before(e.expires) {
		return false, false, gen
	}
	return e.revoked, true, gen
}

func (c *jtiCache) putIf(gen uint64, k string, revoked bool, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		c.putLocked(k, revoked, expires)
	}
}

func (c *jtiCache) put(k string, revoked bool, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.putLocked(k, revoked, expires)
}

func (c *jtiCache) putLocked(k string, revoked bool, expires time.Time) {
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		// Drop about an eighth at random (map order): an evicted jti is
		// read from the store again, so order does not matter.
		for k2 := range c.m {
			if len(c.m) < c.max-c.max/8 {
				break
			}
			delete(c.m, k2)
		}
	}
	c.m[k] = jtiEntry{revoked: revoked, expires: expires}
}

func (c *jtiCache) del(k string) {
	c.mu.Lock()
	c.gen++
	delete(c.m, k)
	c.mu.Unlock()
}

func (c *jtiCache) clear() {
	c.mu.Lock()
	c.gen++
	clear(c.m)
	c.mu.Unlock()
}

// verifiedCache maps a token that verified to its claims, until the token
// expires. Only tokens signed with Superset's key get in, so an attacker
// cannot fill it with garbage; when full it drops entries at random.
type verifiedCache struct {
	mu  sync.RWMutex
	m   map[string]*apijwt.Claims
	max int
}

func newVerifiedCache(max int) *verifiedCache {
	if max == 0 {
		max = 10_000
	}
	return &verifiedCache{m: map[string]*apijwt.Claims{}, max: max}
}

func (c *verifiedCache) get(token string) (*apijwt.Claims, bool) {
	if c.max < 0 {
		return nil, false
	}
	c.mu.RLock()
	cl, ok := c.m[token]
	c.mu.RUnlock()
	return cl, ok
}

func (c *verifiedCache) put(token string, cl *apijwt.Claims) {
	if c.max < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		// Expired tokens first would need a clock here; random eviction
		// is enough, an evicted token is only verified again.
		for k := range c.m {
			if len(c.m) < c.max-c.max/8 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[token] = cl
}
