// Package storetest is the one conformance suite every store.Store
// implementation must pass. Backends call Run from their own tests against a
// real backend (a redis-server started by internal/redistest, a bbolt file in
// t.TempDir), so both are held to exactly the same behaviour.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/store"
)

// Option adjusts Run for what a backend can do.
type Option func(*config)

type config struct {
	shared bool
}

// SharedBackend declares that every call to open within one test reaches the
// same backend (two Redis clients on one server). Run then also checks that a
// message published through one Store reaches a subscriber of another, which
// is how replicas hear each other. Without it, pub/sub is checked with two
// subscribers on one instance.
func SharedBackend() Option { return func(c *config) { c.shared = true } }

// Timeouts for polling. They bound how long a broken backend can hang the
// suite; a working one finishes far sooner. Nothing asserts speed.
const (
	waitFor  = 5 * time.Second
	pollGap  = 10 * time.Millisecond
	shortTTL = 200 * time.Millisecond
	// liveTTL is for keys the suite must still find a moment after writing
	// them: long enough that a loaded CI machine cannot expire them first.
	liveTTL = 2 * time.Second
)

// Run exercises every method of store.Store. open must return a ready Store
// whose keys do not collide with other calls' keys in a way that matters:
// Run namespaces every key by subtest name, except store.GenerationKey,
// which only the Generation subtest touches. open should register its own
// cleanup (Close) with t.Cleanup; Run may also Close a store it opened.
func Run(t *testing.T, open func(t *testing.T) store.Store, opts ...Option) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	t.Run("GetSetReplace", func(t *testing.T) { testGetSet(t, open(t)) })
	t.Run("TTL", func(t *testing.T) { testTTL(t, open(t)) })
	t.Run("SetNX", func(t *testing.T) { testSetNX(t, open(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, open(t)) })
	t.Run("MaxInt64", func(t *testing.T) { testMaxInt64(t, open(t)) })
	t.Run("MaxInt64Concurrent", func(t *testing.T) { testMaxInt64Concurrent(t, open, c.shared) })
	t.Run("GetInt64", func(t *testing.T) { testGetInt64(t, open(t)) })
	t.Run("Sets", func(t *testing.T) { testSets(t, open(t)) })
	t.Run("Lists", func(t *testing.T) { testLists(t, open(t)) })
	t.Run("PubSub", func(t *testing.T) { testPubSub(t, open, c.shared) })
	t.Run("SubscribeCancel", func(t *testing.T) { testSubscribeCancel(t, open(t)) })
	t.Run("Ping", func(t *testing.T) { testPing(t, open(t)) })
	t.Run("Durability", func(t *testing.T) { testDurability(t, open(t)) })
	t.Run("Generation", func(t *testing.T) { testGeneration(t, open, c.shared) })
	t.Run("CancelledContext", func(t *testing.T) { testCancelled(t, open(t)) })
	t.Run("ClosedIsUnavailable", func(t *testing.T) {
		s := open(t)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		AssertUnavailable(t, s)
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v (Close must be safe to repeat)", err)
		}
	})
}

// AssertUnavailable checks that every method of s fails with an error
// wrapping store.ErrUnavailable, and never with ErrNotFound: a store that is
// gone must not look like a store that is empty. Backends call it after
// killing their server or closing the store.
func AssertUnavailable(t *testing.T, s store.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*waitFor)
	defer cancel()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s: err = %v, want store.ErrUnavailable", op, err)
		}
		if errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: err = %v also matches ErrNotFound; down must not look like absent", op, err)
		}
	}
	_, err := s.Get(ctx, "unavail:k")
	check("Get", err)
	check("Set", s.Set(ctx, "unavail:k", []byte("v"), 0))
	_, err = s.SetNX(ctx, "unavail:k", []byte("v"), 0)
	check("SetNX", err)
	check("Delete", s.Delete(ctx, "unavail:k"))
	_, err = s.MaxInt64(ctx, "unavail:n", 1)
	check("MaxInt64", err)
	_, err = s.GetInt64(ctx, "unavail:n")
	check("GetInt64", err)
	check("SAdd", s.SAdd(ctx, "unavail:s", "a"))
	check("SRem", s.SRem(ctx, "unavail:s", "a"))
	_, err = s.SMembers(ctx, "unavail:s")
	check("SMembers", err)
	check("LPushTrim", s.LPushTrim(ctx, "unavail:l", []byte("v"), 3))
	_, err = s.LRange(ctx, "unavail:l", 3)
	check("LRange", err)
	check("Publish", s.Publish(ctx, "unavail:c", []byte("v")))
	_, err = s.Subscribe(ctx, "unavail:c")
	check("Subscribe", err)
	check("Ping", s.Ping(ctx))
	_, err = s.Durability(ctx)
	check("Durability", err)
}

// key namespaces k by the running test so that subtests sharing one backend
// never see each other's data.
func key(t *testing.T, k string) string {
	return "storetest:" + t.Name() + ":" + k
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 6*waitFor)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or waitFor passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v", what, waitFor)
		}
		time.Sleep(pollGap)
	}
}

func mustGet(t *testing.T, s store.Store, k string) []byte {
	t.Helper()
	v, err := s.Get(ctxFor(t), k)
	if err != nil {
		t.Fatalf("Get(%q): %v", k, err)
	}
	return v
}

func wantNotFound(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("%s: err = %v, want store.ErrNotFound", op, err)
	}
	if errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("%s: err = %v also matches ErrUnavailable", op, err)
	}
}

func absent(t *testing.T, s store.Store, k string) bool {
	t.Helper()
	_, err := s.Get(ctxFor(t), k)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q): %v", k, err)
	}
	return err != nil
}

func testGetSet(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	k := key(t, "k")
	_, err := s.Get(ctx, k)
	wantNotFound(t, "Get(absent)", err)

	in := []byte("v1\x00\xff binary")
	if err := s.Set(ctx, k, in, 0); err != nil {
		t.Fatalf("Set: %v", err)
	}
	in[0] = 'X' // the store must have copied the value
	if got := mustGet(t, s, k); !bytes.Equal(got, []byte("v1\x00\xff binary")) {
		t.Fatalf("Get = %q, want %q", got, "v1\x00\xff binary")
	}
	got := mustGet(t, s, k)
	got[0] = 'Y' // nor may the caller's copy alias the stored one
	if again := mustGet(t, s, k); again[0] != 'v' {
		t.Fatalf("mutating a returned value changed the stored one: %q", again)
	}

	if err := s.Set(ctx, k, []byte("v2"), 0); err != nil {
		t.Fatalf("Set replace: %v", err)
	}
	if got := mustGet(t, s, k); string(got) != "v2" {
		t.Fatalf("Get after replace = %q, want v2", got)
	}

	// A negative TTL is a caller bug, refused (go-redis would read -1 as
	// KEEPTTL and silently keep the old expiry).
	for _, err := range []error{
		s.Set(ctx, k, []byte("v3"), -time.Second),
		func() error { _, err := s.SetNX(ctx, key(t, "neg"), []byte("v"), -time.Second); return err }(),
	} {
		if err == nil || errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotFound) {
			t.Fatalf("write with negative TTL: err = %v, want a plain error", err)
		}
	}
	if got := mustGet(t, s, k); string(got) != "v2" {
		t.Fatalf("refused write changed the value to %q", got)
	}

	empty := key(t, "empty")
	if err := s.Set(ctx, empty, nil, 0); err != nil {
		t.Fatalf("Set empty: %v", err)
	}
	if got := mustGet(t, s, empty); len(got) != 0 {
		t.Fatalf("Get empty = %q, want empty", got)
	}
}

func testTTL(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	gone, kept, clock := key(t, "gone"), key(t, "kept"), key(t, "clock")

	if err := s.Set(ctx, gone, []byte("x"), liveTTL); err != nil {
		t.Fatalf("Set ttl: %v", err)
	}
	if got := mustGet(t, s, gone); string(got) != "x" {
		t.Fatalf("Get before expiry = %q, want x", got)
	}
	eventually(t, "key with TTL expires", func() bool { return absent(t, s, gone) })

	// A Set without TTL replaces the previous TTL. "clock" expires at the
	// time "kept" would have, so once it is gone "kept" must still be there.
	if err := s.Set(ctx, kept, []byte("a"), shortTTL); err != nil {
		t.Fatalf("Set ttl: %v", err)
	}
	if err := s.Set(ctx, clock, []byte("c"), shortTTL); err != nil {
		t.Fatalf("Set clock: %v", err)
	}
	if err := s.Set(ctx, kept, []byte("b"), 0); err != nil {
		t.Fatalf("Set no ttl: %v", err)
	}
	eventually(t, "clock key expires", func() bool { return absent(t, s, clock) })
	time.Sleep(2 * pollGap)
	if got := mustGet(t, s, kept); string(got) != "b" {
		t.Fatalf("Get after replaced TTL = %q, want b", got)
	}

	// And a Set with a TTL gives a key without one an expiry.
	if err := s.Set(ctx, kept, []byte("c"), shortTTL); err != nil {
		t.Fatalf("Set ttl again: %v", err)
	}
	eventually(t, "key given a TTL expires", func() bool { return absent(t, s, kept) })
}

func testSetNX(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	k := key(t, "lease")
	ok, err := s.SetNX(ctx, k, []byte("a"), 0)
	if err != nil || !ok {
		t.Fatalf("SetNX(absent) = %v, %v; want true, nil", ok, err)
	}
	ok, err = s.SetNX(ctx, k, []byte("b"), 0)
	if err != nil || ok {
		t.Fatalf("SetNX(present) = %v, %v; want false, nil", ok, err)
	}
	if got := mustGet(t, s, k); string(got) != "a" {
		t.Fatalf("losing SetNX overwrote the value: %q", got)
	}
	if err := s.Delete(ctx, k); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	ok, err = s.SetNX(ctx, k, []byte("c"), 0)
	if err != nil || !ok {
		t.Fatalf("SetNX after Delete = %v, %v; want true, nil", ok, err)
	}

	// A lease with a TTL can be taken again once it expires.
	lease := key(t, "ttl-lease")
	ok, err = s.SetNX(ctx, lease, []byte("holder1"), shortTTL)
	if err != nil || !ok {
		t.Fatalf("SetNX(ttl) = %v, %v; want true, nil", ok, err)
	}
	eventually(t, "SetNX lease expires", func() bool { return absent(t, s, lease) })
	ok, err = s.SetNX(ctx, lease, []byte("holder2"), 0)
	if err != nil || !ok {
		t.Fatalf("SetNX after lease expiry = %v, %v; want true, nil", ok, err)
	}
	if got := mustGet(t, s, lease); string(got) != "holder2" {
		t.Fatalf("Get after re-lease = %q, want holder2", got)
	}

	// Exactly one of many racing SetNX calls wins.
	race := key(t, "race")
	var wins sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range 16 {
		wins.Go(func() {
			ok, err := s.SetNX(ctx, race, fmt.Appendf(nil, "%d", i), 0)
			if err != nil {
				t.Errorf("racing SetNX: %v", err)
			}
			if ok {
				mu.Lock()
				won++
				mu.Unlock()
			}
		})
	}
	wins.Wait()
	if won != 1 {
		t.Fatalf("%d racing SetNX calls won, want exactly 1", won)
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	a, b, c := key(t, "a"), key(t, "b"), key(t, "c")
	set, list := key(t, "set"), key(t, "list")
	for _, k := range []string{a, b} {
		if err := s.Set(ctx, k, []byte("v"), 0); err != nil {
			t.Fatalf("Set: %v", err)
		}
	}
	if err := s.SAdd(ctx, set, "m"); err != nil {
		t.Fatalf("SAdd: %v", err)
	}
	if err := s.LPushTrim(ctx, list, []byte("e"), 5); err != nil {
		t.Fatalf("LPushTrim: %v", err)
	}
	if err := s.Delete(ctx); err != nil {
		t.Fatalf("Delete(): %v", err)
	}
	if err := s.Delete(ctx, a, b, c, set, list); err != nil {
		t.Fatalf("Delete(a, b, absent, set, list): %v", err)
	}
	for _, k := range []string{a, b, c} {
		_, err := s.Get(ctx, k)
		wantNotFound(t, "Get after Delete", err)
	}
	if m, err := s.SMembers(ctx, set); err != nil || len(m) != 0 {
		t.Fatalf("SMembers after Delete = %v, %v; want empty", m, err)
	}
	if l, err := s.LRange(ctx, list, 5); err != nil || len(l) != 0 {
		t.Fatalf("LRange after Delete = %q, %v; want empty", l, err)
	}
	if err := s.Delete(ctx, a); err != nil {
		t.Fatalf("Delete(absent): %v", err)
	}
}

func testMaxInt64(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	k := key(t, "epoch")
	steps := []struct{ in, want int64 }{
		{-5, -5}, // absent counts as MinInt64, so any value wins
		{-7, -5},
		{0, 0},
		{1 << 62, 1 << 62},
		// Beyond 2^53 a float64 comparison would call these equal.
		{1<<62 + 1, 1<<62 + 1},
		{1 << 62, 1<<62 + 1},
		{math.MaxInt64, math.MaxInt64},
		{math.MinInt64, math.MaxInt64},
	}
	for _, st := range steps {
		got, err := s.MaxInt64(ctx, k, st.in)
		if err != nil {
			t.Fatalf("MaxInt64(%d): %v", st.in, err)
		}
		if got != st.want {
			t.Fatalf("MaxInt64(%d) = %d, want %d", st.in, got, st.want)
		}
		if n, err := s.GetInt64(ctx, k); err != nil || n != st.want {
			t.Fatalf("GetInt64 after MaxInt64(%d) = %d, %v; want %d", st.in, n, err, st.want)
		}
	}
	// The value is stored as a decimal string, the same on every backend.
	if got := mustGet(t, s, k); string(got) != "9223372036854775807" {
		t.Fatalf("Get of MaxInt64 key = %q", got)
	}

	neg := key(t, "min")
	if got, err := s.MaxInt64(ctx, neg, math.MinInt64); err != nil || got != math.MinInt64 {
		t.Fatalf("MaxInt64(absent, MinInt64) = %d, %v", got, err)
	}
	if got, err := s.MaxInt64(ctx, neg, -10); err != nil || got != -10 {
		t.Fatalf("MaxInt64(-10 over MinInt64) = %d, %v", got, err)
	}
	if got, err := s.MaxInt64(ctx, neg, -11); err != nil || got != -10 {
		t.Fatalf("MaxInt64(-11 over -10) = %d, %v", got, err)
	}

	// MaxInt64 stores with no expiry, even over a key that had one.
	ttlKey, clock := key(t, "had-ttl"), key(t, "clock")
	if err := s.Set(ctx, ttlKey, []byte("5"), liveTTL); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if err := s.Set(ctx, clock, []byte("c"), liveTTL); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if got, err := s.MaxInt64(ctx, ttlKey, 3); err != nil || got != 5 {
		t.Fatalf("MaxInt64(3 over 5) = %d, %v; want 5", got, err)
	}
	eventually(t, "clock key expires", func() bool { return absent(t, s, clock) })
	time.Sleep(2 * pollGap)
	if n, err := s.GetInt64(ctx, ttlKey); err != nil || n != 5 {
		t.Fatalf("GetInt64 after TTL would have passed = %d, %v; want 5 (MaxInt64 must clear the TTL)", n, err)
	}

	// A value that is not an integer is an error, neither absent nor down.
	bad := key(t, "bad")
	if err := s.Set(ctx, bad, []byte("twelve"), 0); err != nil {
		t.Fatalf("Set: %v", err)
	}
	_, err := s.MaxInt64(ctx, bad, 1)
	if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("MaxInt64 over non-integer: err = %v, want a plain error", err)
	}
	if got := mustGet(t, s, bad); string(got) != "twelve" {
		t.Fatalf("failed MaxInt64 changed the value to %q", got)
	}
}

// testMaxInt64Concurrent races writers (on two Store instances when the
// backend is shared, like two replicas) and checks the stored value never
// moves backwards and ends at the maximum written.
func testMaxInt64Concurrent(t *testing.T, open func(*testing.T) store.Store, shared bool) {
	stores := []store.Store{open(t)}
	if shared {
		stores = append(stores, open(t))
	}
	ctx := ctxFor(t)
	k := key(t, "epoch")
	const writers, perWriter = 8, 40

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		want = int64(math.MinInt64)
		stop = make(chan struct{})
	)
	// A reader checks monotonicity as others see it.
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		last := int64(math.MinInt64)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, err := stores[len(stores)-1].GetInt64(ctx, k)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				t.Errorf("GetInt64: %v", err)
				return
			}
			if n < last {
				t.Errorf("GetInt64 went backwards: %d after %d", n, last)
				return
			}
			last = n
		}
	}()
	for w := range writers {
		s := stores[w%len(stores)]
		rng := rand.New(rand.NewPCG(uint64(w), 42))
		wg.Go(func() {
			last := int64(math.MinInt64)
			for range perWriter {
				v := rng.Int64N(1<<62) + 1<<60
				got, err := s.MaxInt64(ctx, k, v)
				if err != nil {
					t.Errorf("MaxInt64: %v", err)
					return
				}
				if got < v {
					t.Errorf("MaxInt64(%d) returned smaller %d", v, got)
				}
				if got < last {
					t.Errorf("MaxInt64 went backwards for one writer: %d after %d", got, last)
				}
				last = got
				mu.Lock()
				want = max(want, v)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(stop)
	<-readerDone
	n, err := stores[0].GetInt64(ctx, k)
	if err != nil || n != want {
		t.Fatalf("final GetInt64 = %d, %v; want max of all writes %d", n, err, want)
	}
}

func testGetInt64(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	_, err := s.GetInt64(ctx, key(t, "absent"))
	wantNotFound(t, "GetInt64(absent)", err)

	// Set of a decimal string is readable too (an operator may write one).
	k := key(t, "set")
	if err := s.Set(ctx, k, []byte("-42"), 0); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if n, err := s.GetInt64(ctx, k); err != nil || n != -42 {
		t.Fatalf("GetInt64 = %d, %v; want -42", n, err)
	}
	bad := key(t, "bad")
	if err := s.Set(ctx, bad, []byte("4.2"), 0); err != nil {
		t.Fatalf("Set: %v", err)
	}
	_, err = s.GetInt64(ctx, bad)
	if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("GetInt64 of non-integer: err = %v, want a plain error", err)
	}
}

func sortedMembers(t *testing.T, s store.Store, k string) []string {
	t.Helper()
	m, err := s.SMembers(ctxFor(t), k)
	if err != nil {
		t.Fatalf("SMembers: %v", err)
	}
	if m == nil {
		m = []string{}
	}
	slices.Sort(m)
	return m
}

func testSets(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	k := key(t, "sessions")
	if m := sortedMembers(t, s, k); len(m) != 0 {
		t.Fatalf("SMembers(absent) = %v, want empty", m)
	}
	if err := s.SAdd(ctx, k, "a", "b", "a"); err != nil {
		t.Fatalf("SAdd: %v", err)
	}
	if err := s.SAdd(ctx, k, "c"); err != nil {
		t.Fatalf("SAdd: %v", err)
	}
	if err := s.SAdd(ctx, k); err != nil {
		t.Fatalf("SAdd(no members): %v", err)
	}
	if m := sortedMembers(t, s, k); !slices.Equal(m, []string{"a", "b", "c"}) {
		t.Fatalf("SMembers = %v, want [a b c]", m)
	}
	if err := s.SRem(ctx, k, "b", "zz"); err != nil {
		t.Fatalf("SRem: %v", err)
	}
	if err := s.SRem(ctx, k); err != nil {
		t.Fatalf("SRem(no members): %v", err)
	}
	if m := sortedMembers(t, s, k); !slices.Equal(m, []string{"a", "c"}) {
		t.Fatalf("SMembers after SRem = %v, want [a c]", m)
	}
	if err := s.SRem(ctx, k, "a", "c"); err != nil {
		t.Fatalf("SRem all: %v", err)
	}
	if m := sortedMembers(t, s, k); len(m) != 0 {
		t.Fatalf("SMembers after removing all = %v, want empty", m)
	}
	if err := s.SRem(ctx, key(t, "absent"), "x"); err != nil {
		t.Fatalf("SRem(absent set): %v", err)
	}
}

func lrange(t *testing.T, s store.Store, k string, n int) []string {
	t.Helper()
	l, err := s.LRange(ctxFor(t), k, n)
	if err != nil {
		t.Fatalf("LRange(%d): %v", n, err)
	}
	out := []string{}
	for _, e := range l {
		out = append(out, string(e))
	}
	return out
}

func testLists(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	k := key(t, "events")
	if l := lrange(t, s, k, 10); len(l) != 0 {
		t.Fatalf("LRange(absent) = %v, want empty", l)
	}
	for i := 1; i <= 5; i++ {
		if err := s.LPushTrim(ctx, k, fmt.Appendf(nil, "e%d", i), 3); err != nil {
			t.Fatalf("LPushTrim: %v", err)
		}
	}
	if l := lrange(t, s, k, 10); !slices.Equal(l, []string{"e5", "e4", "e3"}) {
		t.Fatalf("LRange(10) = %v, want newest three [e5 e4 e3]", l)
	}
	if l := lrange(t, s, k, 2); !slices.Equal(l, []string{"e5", "e4"}) {
		t.Fatalf("LRange(2) = %v, want [e5 e4]", l)
	}
	if l := lrange(t, s, k, 0); len(l) != 0 {
		t.Fatalf("LRange(0) = %v, want empty", l)
	}
	// A larger max lets the list grow again; a smaller one trims at once.
	if err := s.LPushTrim(ctx, k, []byte("e6"), 10); err != nil {
		t.Fatalf("LPushTrim: %v", err)
	}
	if l := lrange(t, s, k, 10); !slices.Equal(l, []string{"e6", "e5", "e4", "e3"}) {
		t.Fatalf("LRange after max 10 = %v", l)
	}
	if err := s.LPushTrim(ctx, k, []byte("e7"), 1); err != nil {
		t.Fatalf("LPushTrim: %v", err)
	}
	if l := lrange(t, s, k, 10); !slices.Equal(l, []string{"e7"}) {
		t.Fatalf("LRange after max 1 = %v, want [e7]", l)
	}
	if err := s.LPushTrim(ctx, k, []byte("x"), 0); err == nil {
		t.Fatal("LPushTrim(max 0) = nil, want an error")
	}
}

func receive(t *testing.T, ch <-chan store.Message, who string) store.Message {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatalf("%s: subscription closed early", who)
		}
		return m
	case <-time.After(waitFor):
		t.Fatalf("%s: no message after %v", who, waitFor)
	}
	return store.Message{}
}

func testPubSub(t *testing.T, open func(*testing.T) store.Store, shared bool) {
	s := open(t)
	ctx, cancel := context.WithCancel(ctxFor(t))
	defer cancel()
	c1, c2 := key(t, "c1"), key(t, "c2")

	sub1, err := s.Subscribe(ctx, c1)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	sub2, err := s.Subscribe(ctx, c1, c2)
	if err != nil {
		t.Fatalf("Subscribe two channels: %v", err)
	}
	subs := map[string]<-chan store.Message{"sub1": sub1, "sub2": sub2}
	if shared {
		other, err := open(t).Subscribe(ctx, c1)
		if err != nil {
			t.Fatalf("Subscribe on second instance: %v", err)
		}
		subs["other-instance"] = other
	}

	payload := []byte("revoke:42")
	if err := s.Publish(ctx, c1, payload); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	payload[0] = 'X' // the store must not alias the caller's slice
	for who, ch := range subs {
		m := receive(t, ch, who)
		if m.Channel != c1 || string(m.Payload) != "revoke:42" {
			t.Fatalf("%s got %q on %q, want revoke:42 on %q", who, m.Payload, m.Channel, c1)
		}
	}

	if err := s.Publish(ctx, c2, []byte("two")); err != nil {
		t.Fatalf("Publish c2: %v", err)
	}
	if m := receive(t, sub2, "sub2"); m.Channel != c2 || string(m.Payload) != "two" {
		t.Fatalf("sub2 got %q on %q, want two on %q", m.Payload, m.Channel, c2)
	}
	// sub1 is not on c2: the next thing it sees must be the next c1 message.
	if err := s.Publish(ctx, c1, []byte("three")); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if m := receive(t, sub1, "sub1"); m.Channel != c1 || string(m.Payload) != "three" {
		t.Fatalf("sub1 got %q on %q, want three on %q (a c2 message leaked?)", m.Payload, m.Channel, c1)
	}
	if err := s.Publish(ctx, key(t, "nobody"), []byte("x")); err != nil {
		t.Fatalf("Publish with no subscribers: %v", err)
	}
}

func testSubscribeCancel(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(ctxFor(t))
	ch, err := s.Subscribe(ctx, key(t, "c"))
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	cancel()
	deadline := time.After(waitFor)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("subscription channel still open %v after ctx cancel", waitFor)
		}
	}
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(ctxFor(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testDurability(t *testing.T, s store.Store) {
	d, err := s.Durability(ctxFor(t))
	if err != nil {
		t.Fatalf("Durability: %v", err)
	}
	if d.Backend != "redis" && d.Backend != "bolt" {
		t.Fatalf("Durability.Backend = %q", d.Backend)
	}
	if d.Durable && (!d.AppendOnly || d.AppendFsync != "always") {
		t.Fatalf("Durability claims durable without appendonly+always: %+v", d)
	}
	if d.Detail == "" {
		t.Fatalf("Durability.Detail is empty: %+v", d)
	}
}

func testGeneration(t *testing.T, open func(*testing.T) store.Store, shared bool) {
	s := open(t)
	ctx := ctxFor(t)
	if err := s.Delete(ctx, store.GenerationKey); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fresh, gen, err := store.EnsureGeneration(ctx, s, now)
	if err != nil || !fresh || gen == "" {
		t.Fatalf("EnsureGeneration on empty store = %v, %q, %v; want fresh", fresh, gen, err)
	}
	fresh, again, err := store.EnsureGeneration(ctx, s, now.Add(time.Hour))
	if err != nil || fresh || again != gen {
		t.Fatalf("EnsureGeneration again = %v, %q, %v; want not fresh, %q", fresh, again, err, gen)
	}
	if shared {
		fresh, other, err := store.EnsureGeneration(ctx, open(t), now)
		if err != nil || fresh || other != gen {
			t.Fatalf("EnsureGeneration from second instance = %v, %q, %v; want not fresh, %q", fresh, other, err, gen)
		}
	}
	// A wipe (FLUSHALL, deleted file) loses the marker: the next start must
	// see a fresh store with a new generation.
	if err := s.Delete(ctx, store.GenerationKey); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	fresh, wiped, err := store.EnsureGeneration(ctx, s, now)
	if err != nil || !fresh || wiped == gen || wiped == "" {
		t.Fatalf("EnsureGeneration after wipe = %v, %q, %v; want fresh and not %q", fresh, wiped, err, gen)
	}

	// Many replicas starting on a wiped store at once: exactly one is fresh
	// (and stamps the epoch), all agree on the generation.
	if err := s.Delete(ctx, store.GenerationKey); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		nFresh int
		gens   = map[string]bool{}
	)
	for range 8 {
		wg.Go(func() {
			f, g, err := store.EnsureGeneration(ctx, s, now)
			if err != nil {
				t.Errorf("racing EnsureGeneration: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if f {
				nFresh++
			}
			gens[g] = true
		})
	}
	wg.Wait()
	if nFresh != 1 || len(gens) != 1 {
		t.Fatalf("racing EnsureGeneration: %d fresh, %d generations; want 1 and 1", nFresh, len(gens))
	}
	if strings.ContainsAny(wiped, " \n") {
		t.Fatalf("generation %q has whitespace", wiped)
	}
}

func testCancelled(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Get(ctx, key(t, "k"))
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get with cancelled ctx: err = %v, want a failure that is not ErrNotFound", err)
	}
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Get with cancelled ctx: err = %v, want ErrUnavailable", err)
	}
	if err := s.Set(ctx, key(t, "k"), []byte("v"), 0); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Set with cancelled ctx: err = %v, want ErrUnavailable", err)
	}
}
