// Package ratelimit is the gateway's rate limits: GCRA buckets shared by
// every replica over Redis (go-redis/redis_rate), per-process buckets for
// the embedded store and for Redis outages, the request classes and their
// keys, and the credential-stuffing defence on sign-in routes.
package ratelimit

import (
	"context"
	"sync"
	"time"
)

// Limit is one GCRA bucket: Rate events per Period, Burst at once. A zero
// Rate is no limit.
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// Off reports a limit that never refuses.
func (l Limit) Off() bool { return l.Rate <= 0 || l.Period <= 0 }

func (l Limit) burst() int {
	if l.Burst <= 0 {
		return 1
	}
	return l.Burst
}

// interval is the time one event costs, at least 1ns: a rate above one
// per nanosecond would otherwise cost nothing and divide by zero.
func (l Limit) interval() time.Duration { return max(l.Period/time.Duration(l.Rate), 1) }

// Result is a bucket's answer.
type Result struct {
	Allowed   bool
	Remaining int
	// RetryAfter is when the next event would be allowed (refused only).
	RetryAfter time.Duration
	// ResetAfter is when the bucket is full again.
	ResetAfter time.Duration
	// Fallback: the shared store did not answer; a per-process bucket did.
	Fallback bool
}

// Backend is a store of GCRA buckets. AllowN with n = 0 reads a bucket
// without spending from it.
type Backend interface {
	AllowN(ctx context.Context, key string, l Limit, n int) (Result, error)
}

// Memory is GCRA over a bounded in-process map: the backend of the
// embedded store and the fallback while Redis is down. A key lives until
// its bucket is full again; past MaxKeys a new key is refused (existing
// ones keep their buckets), so a flood of distinct keys cannot grow the
// process without bound.
type Memory struct {
	mu      sync.Mutex
	tat     map[string]time.Time
	max     int
	now     func() time.Time
	lastGC  time.Time
	Refused func() // called when a new key is refused for the cap
}

// NewMemory keeps at most maxKeys buckets (0: 100000).
func NewMemory(maxKeys int, now func() time.Time) *Memory {
	if maxKeys <= 0 {
		maxKeys = 100000
	}
	if now == nil {
		now = time.Now
	}
	return &Memory{tat: make(map[string]time.Time), max: maxKeys, now: now}
}

// Len is the number of live buckets.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.tat)
}

// AllowN spends n events from key's bucket if it can.
func (m *Memory) AllowN(_ context.Context, key string, l Limit, n int) (Result, error) {
	if l.Off() {
		return Result{Allowed: true, Remaining: 1 << 30}, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	tat, ok := m.tat[key]
	if ok && !tat.After(now) {
		delete(m.tat, key)
		ok = false
	}
	if !ok {
		if len(m.tat) >= m.max {
			m.sweep(now)
		}
		if len(m.tat) >= m.max {
			if m.Refused != nil {
				m.Refused()
			}
			return Result{RetryAfter: l.interval()}, nil
		}
		tat = now
	}
	iv := l.interval()
	newTat := tat.Add(iv * time.Duration(n))
	allowAt := newTat.Add(-iv * time.Duration(l.burst()))
	diff := now.Sub(allowAt)
	if diff < 0 {
		return Result{RetryAfter: -diff, ResetAfter: tat.Sub(now)}, nil
	}
	if newTat.After(now) {
		m.tat[key] = newTat
	}
	return Result{Allowed: true, Remaining: int(diff / iv), ResetAfter: newTat.Sub(now)}, nil
}

// sweep drops every full bucket, at most once a second.
func (m *Memory) sweep(now time.Time) {
	if now.Sub(m.lastGC) < time.Second {
		return
	}
	m.lastGC = now
	for k, t := range m.tat {
		if !t.After(now) {
			delete(m.tat, k)
		}
	}
}
