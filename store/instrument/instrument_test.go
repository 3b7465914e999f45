package instrument_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/store/bolt"
	"github.com/superset-gateway/superset-gateway/store/instrument"
	"github.com/superset-gateway/superset-gateway/store/storetest"
)

type call struct {
	op  string
	d   time.Duration
	err error
}

type recorder struct {
	mu    sync.Mutex
	calls []call
}

func (r *recorder) ObserveStoreOp(op string, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call{op, d, err})
}

func (r *recorder) take() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

func openBolt(t *testing.T) store.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "gw.db"), bolt.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestEveryOpReported(t *testing.T) {
	rec := &recorder{}
	s := instrument.Wrap(openBolt(t), rec)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	steps := []struct {
		op string
		do func() error
	}{
		{"get", func() error { _, err := s.Get(ctx, "absent"); return err }},
		{"set", func() error { return s.Set(ctx, "k", []byte("v"), 0) }},
		{"set_nx", func() error { _, err := s.SetNX(ctx, "k", []byte("v"), 0); return err }},
		{"delete", func() error { return s.Delete(ctx, "k") }},
		{"max_int64", func() error { _, err := s.MaxInt64(ctx, "n", 3); return err }},
		{"get_int64", func() error { _, err := s.GetInt64(ctx, "n"); return err }},
		{"sadd", func() error { return s.SAdd(ctx, "s", "a") }},
		{"srem", func() error { return s.SRem(ctx, "s", "a") }},
		{"smembers", func() error { _, err := s.SMembers(ctx, "s"); return err }},
		{"lpush_trim", func() error { return s.LPushTrim(ctx, "l", []byte("e"), 3) }},
		{"lrange", func() error { _, err := s.LRange(ctx, "l", 3); return err }},
		{"publish", func() error { return s.Publish(ctx, "c", []byte("p")) }},
		{"subscribe", func() error { _, err := s.Subscribe(ctx, "c"); return err }},
		{"ping", func() error { return s.Ping(ctx) }},
	}
	for _, st := range steps {
		err := st.do()
		got := rec.take()
		if len(got) != 1 || got[0].op != st.op {
			t.Fatalf("after %s: observer saw %+v, want one %q", st.op, got, st.op)
		}
		if !errors.Is(got[0].err, err) && got[0].err != err {
			t.Fatalf("%s: observer got err %v, caller got %v", st.op, got[0].err, err)
		}
		if got[0].d < 0 {
			t.Fatalf("%s: negative duration %v", st.op, got[0].d)
		}
	}
	// The first step was a miss: reported as ErrNotFound, for the
	// observer to count as success.
	if _, err := s.Get(ctx, "absent"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(absent) through wrapper = %v", err)
	}
	if got := rec.take(); !errors.Is(got[0].err, store.ErrNotFound) {
		t.Fatalf("observer got %v for a miss, want ErrNotFound", got[0].err)
	}

	// Durability and Close pass through without a report.
	if d, err := s.Durability(ctx); err != nil || d.Backend != "bolt" {
		t.Fatalf("Durability = %+v, %v", d, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("Durability/Close were reported: %+v", got)
	}

	// Failures reach the observer unchanged.
	err := s.Ping(ctx)
	got := rec.take()
	if !errors.Is(err, store.ErrUnavailable) || len(got) != 1 || !errors.Is(got[0].err, store.ErrUnavailable) {
		t.Fatalf("Ping after Close: caller %v, observer %+v", err, got)
	}
}

func TestWrapNilObserver(t *testing.T) {
	s := openBolt(t)
	if got := instrument.Wrap(s, nil); got != s {
		t.Fatalf("Wrap(s, nil) = %T, want s itself", got)
	}
}

// The wrapper must not change behaviour: it passes the whole suite.
func TestConformanceThroughWrapper(t *testing.T) {
	rec := &recorder{}
	storetest.Run(t, func(t *testing.T) store.Store {
		return instrument.Wrap(openBolt(t), rec)
	})
	ops := map[string]bool{}
	for _, c := range rec.take() {
		ops[c.op] = true
	}
	var names []string
	for op := range ops {
		names = append(names, op)
	}
	slices.Sort(names)
	if len(names) != 14 {
		t.Fatalf("suite exercised ops %v through the wrapper, want all 14", names)
	}
}
