package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"
)

// Redis is GCRA over Redis (one Lua script per check, on the server's
// clock), shared by every replica on the same Redis. Keys expire when
// their bucket is full again.
type Redis struct {
	l *redis_rate.Limiter
}

// NewRedis uses the Redis store's client.
func NewRedis(c goredis.UniversalClient) *Redis {
	return &Redis{l: redis_rate.NewLimiter(c)}
}

// AllowN spends n events from key's bucket if it can.
func (b *Redis) AllowN(ctx context.Context, key string, l Limit, n int) (Result, error) {
	if l.Off() {
		return Result{Allowed: true, Remaining: 1 << 30}, nil
	}
	r, err := b.l.AllowN(ctx, "sgw:"+key, redis_rate.Limit{Rate: l.Rate, Period: l.Period, Burst: l.burst()}, n)
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit: redis: %w", err)
	}
	res := Result{Remaining: r.Remaining, ResetAfter: max(r.ResetAfter, 0)}
	// redis_rate reports a refusal as Allowed 0 with RetryAfter ≥ 0;
	// a read (n = 0) allows 0 events and reports RetryAfter -1.
	if r.RetryAfter < 0 {
		res.Allowed = true
	} else {
		res.RetryAfter = r.RetryAfter
	}
	return res, nil
}

// Fallback answers from Primary and, when it fails, from a per-process
// Memory, so a Redis outage neither opens every limit nor refuses every
// request. Every fallback answer is counted (OnFallback) and Degraded says
// so for /-/readyz until Primary answers again.
type Fallback struct {
	Primary    Backend
	Local      *Memory
	OnFallback func()
	Now        func() time.Time
	state      degraded
}

// AllowN asks Primary, else Local.
func (f *Fallback) AllowN(ctx context.Context, key string, l Limit, n int) (Result, error) {
	r, err := f.Primary.AllowN(ctx, key, l, n)
	if err == nil {
		f.state.set(false)
		return r, nil
	}
	f.state.set(true)
	if f.OnFallback != nil {
		f.OnFallback()
	}
	r, _ = f.Local.AllowN(ctx, key, l, n)
	r.Fallback = true
	return r, nil
}

// Degraded reports whether the last answer came from the per-process
// fallback.
func (f *Fallback) Degraded() bool { return f.state.get() }
