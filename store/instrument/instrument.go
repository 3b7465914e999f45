// Package instrument wraps a store.Store so that every call is timed and
// reported to an Observer (the metrics package implements one). It adds no
// behaviour: values and errors pass through unchanged.
package instrument

import (
	"context"
	"time"

	"github.com/superset-gateway/superset-gateway/store"
)

// Observer receives one report per store call. op is the method name in
// snake_case: "get", "set", "set_nx", "delete", "max_int64", "get_int64",
// "sadd", "srem", "smembers", "lpush_trim", "lrange", "publish",
// "subscribe", "ping". Durability and Close are not reported.
//
// err is the method's error as returned, including store.ErrNotFound, which
// is an expected outcome ("no session"), not a failure: observers should
// count errors.Is(err, store.ErrNotFound) as success, and may tell
// store.ErrUnavailable apart from other errors. For "subscribe", d is the
// time to establish the subscription, not its lifetime.
//
// ObserveStoreOp is called on the request path, from many goroutines at
// once; it must be safe for concurrent use and must not block.
type Observer interface {
	ObserveStoreOp(op string, d time.Duration, err error)
}

// Store is the instrumented wrapper returned by Wrap.
type Store struct {
	s   store.Store
	o   Observer
	now func() time.Time
}

var _ store.Store = (*Store)(nil)

// Wrap returns s with every call reported to o. A nil o returns s itself,
// so wiring can pass a nil observer when metrics are off.
func Wrap(s store.Store, o Observer) store.Store {
	if o == nil {
		return s
	}
	return &Store{s: s, o: o, now: time.Now}
}

// Unwrap returns the wrapped store, for callers that need the backend's own
// methods (the Redis client for rate limiting).
func (w *Store) Unwrap() store.Store { return w.s }

func (w *Store) observe(op string, start time.Time, err error) {
	w.o.ObserveStoreOp(op, w.now().Sub(start), err)
}

func (w *Store) Get(ctx context.Context, key string) ([]byte, error) {
	start := w.now()
	v, err := w.s.Get(ctx, key)
	w.observe("get", start, err)
	return v, err
}

func (w *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	start := w.now()
	err := w.s.Set(ctx, key, value, ttl)
	w.observe("set", start, err)
	return err
}

func (w *Store) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	start := w.now()
	ok, err := w.s.SetNX(ctx, key, value, ttl)
	w.observe("set_nx", start, err)
	return ok, err
}

func (w *Store) Delete(ctx context.Context, keys ...string) error {
	start := w.now()
	err := w.s.Delete(ctx, keys...)
	w.observe("delete", start, err)
	return err
}

func (w *Store) MaxInt64(ctx context.Context, key string, v int64) (int64, error) {
	start := w.now()
	n, err := w.s.MaxInt64(ctx, key, v)
	w.observe("max_int64", start, err)
	return n, err
}

func (w *Store) GetInt64(ctx context.Context, key string) (int64, error) {
	start := w.now()
	n, err := w.s.GetInt64(ctx, key)
	w.observe("get_int64", start, err)
	return n, err
}

func (w *Store) SAdd(ctx context.Context, key string, members ...string) error {
	start := w.now()
	err := w.s.SAdd(ctx, key, members...)
	w.observe("sadd", start, err)
	return err
}

func (w *Store) SRem(ctx context.Context, key string, members ...string) error {
	start := w.now()
	err := w.s.SRem(ctx, key, members...)
	w.observe("srem", start, err)
	return err
}

func (w *Store) SMembers(ctx context.Context, key string) ([]string, error) {
	start := w.now()
	m, err := w.s.SMembers(ctx, key)
	w.observe("smembers", start, err)
	return m, err
}

func (w *Store) LPushTrim(ctx context.Context, key string, value []byte, max int) error {
	start := w.now()
	err := w.s.LPushTrim(ctx, key, value, max)
	w.observe("lpush_trim", start, err)
	return err
}

func (w *Store) LRange(ctx context.Context, key string, n int) ([][]byte, error) {
	start := w.now()
	l, err := w.s.LRange(ctx, key, n)
	w.observe("lrange", start, err)
	return l, err
}

func (w *Store) Publish(ctx context.Context, channel string, payload []byte) error {
	start := w.now()
	err := w.s.Publish(ctx, channel, payload)
	w.observe("publish", start, err)
	return err
}

func (w *Store) Subscribe(ctx context.Context, channels ...string) (<-chan store.Message, error) {
	start := w.now()
	ch, err := w.s.Subscribe(ctx, channels...)
	w.observe("subscribe", start, err)
	return ch, err
}

func (w *Store) Ping(ctx context.Context) error {
	start := w.now()
	err := w.s.Ping(ctx)
	w.observe("ping", start, err)
	return err
}

// Durability is passed through unobserved: it runs once at start and on
// readiness checks, and has no latency worth a metric.
func (w *Store) Durability(ctx context.Context) (store.Durability, error) {
	return w.s.Durability(ctx)
}

// Close closes the wrapped store.
func (w *Store) Close() error { return w.s.Close() }
