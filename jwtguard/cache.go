package jwtguard

import (
	"sync"

	"github.com/superset-gateway/superset-gateway/superset/apijwt"
)

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
