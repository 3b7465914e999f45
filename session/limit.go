package session

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// AnonymousLimiter decides whether a client may create one more anonymous
// session (package ratelimit's anonymous-session class).
type AnonymousLimiter interface {
	AllowAnonymous(ctx context.Context, ip netip.Addr) bool
}

// ipLimiter bounds how fast one client creates anonymous sessions, so that a
// flood of cookie-less requests cannot grow the store without bound. It is
// per replica and in memory: N replicas allow N times the rate, which still
// bounds growth. IPv6 clients are keyed by their /64, since one host
// usually controls a whole /64.
type ipLimiter struct {
	r   rate.Limit
	b   int
	max int

	mu sync.Mutex
	m  map[netip.Addr]*rate.Limiter
}

func newIPLimiter(r rate.Limit, b, maxIPs int) *ipLimiter {
	if maxIPs <= 0 {
		maxIPs = 65536
	}
	return &ipLimiter{r: r, b: b, max: maxIPs, m: make(map[netip.Addr]*rate.Limiter)}
}

func (l *ipLimiter) allow(ip netip.Addr, now time.Time) bool {
	ip = ip.Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			ip = p.Addr()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.m[ip]
	if lim == nil {
		if len(l.m) >= l.max {
			// Starting afresh forgets every bucket; an attacker who can
			// cycle through this many addresses is not slowed by a
			// per-IP limit anyway, and memory stays bounded.
			clear(l.m)
		}
		lim = rate.NewLimiter(l.r, l.b)
		l.m[ip] = lim
	}
	return lim.AllowN(now, 1)
}
