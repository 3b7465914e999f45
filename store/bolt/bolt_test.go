package bolt

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/internal/testkit"

	bbolt "go.etcd.io/bbolt"

	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/store/storetest"
)

func openT(t testing.TB, path string, o Options) *Store {
	t.Helper()
	s, err := Open(path, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		// A short sweep interval so the sweeper runs alongside the suite.
		return openT(t, filepath.Join(t.TempDir(), "gw.db"), Options{SweepInterval: 50 * time.Millisecond})
	})
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "gw.db")
	openT(t, path, Options{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode = %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatalf("stat dir: %v", err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode = %v, want 0700", di.Mode().Perm())
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.db")
	ctx := context.Background()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := s.MaxInt64(ctx, "epoch:u1", 1<<62+3); err != nil {
		t.Fatalf("MaxInt64: %v", err)
	}
	if err := s.Set(ctx, "k", []byte("v"), time.Hour); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if err := s.SAdd(ctx, "sess:u1", "a", "b"); err != nil {
		t.Fatalf("SAdd: %v", err)
	}
	if err := s.LPushTrim(ctx, "audit", []byte("e1"), 10); err != nil {
		t.Fatalf("LPushTrim: %v", err)
	}
	if err := s.LPushTrim(ctx, "audit", []byte("e2"), 10); err != nil {
		t.Fatalf("LPushTrim: %v", err)
	}
	fresh, gen, err := store.EnsureGeneration(ctx, s, time.Now())
	if err != nil || !fresh {
		t.Fatalf("EnsureGeneration = %v, %v", fresh, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openT(t, path, Options{})
	if n, err := s.GetInt64(ctx, "epoch:u1"); err != nil || n != 1<<62+3 {
		t.Fatalf("GetInt64 after reopen = %d, %v", n, err)
	}
	if v, err := s.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get after reopen = %q, %v", v, err)
	}
	if m, err := s.SMembers(ctx, "sess:u1"); err != nil || len(m) != 2 {
		t.Fatalf("SMembers after reopen = %v, %v", m, err)
	}
	if l, err := s.LRange(ctx, "audit", 5); err != nil || len(l) != 2 || string(l[0]) != "e2" {
		t.Fatalf("LRange after reopen = %q, %v", l, err)
	}
	again, gen2, err := store.EnsureGeneration(ctx, s, time.Now())
	if err != nil || again || gen2 != gen {
		t.Fatalf("EnsureGeneration after reopen = %v, %q, %v; want not fresh, %q", again, gen2, err, gen)
	}
	// Deleting the file is a wipe: a new file is a fresh generation.
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatalf("remove: %v", err)
	}
	s = openT(t, path, Options{})
	if fresh, gen3, err := store.EnsureGeneration(ctx, s, time.Now()); err != nil || !fresh || gen3 == gen {
		t.Fatalf("EnsureGeneration on a new file = %v, %q, %v", fresh, gen3, err)
	}
}

func TestSecondOpenIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.db")
	openT(t, path, Options{})
	_, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("second Open of a locked file = %v, want ErrUnavailable", err)
	}
}

func TestTTLWithFakeClock(t *testing.T) {
	clk := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := openT(t, filepath.Join(t.TempDir(), "gw.db"), Options{Now: clk.Now, SweepInterval: -1})
	ctx := context.Background()

	if err := s.Set(ctx, "sess", []byte("v"), time.Hour); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if ok, err := s.SetNX(ctx, "lease", []byte("a"), 30*time.Second); err != nil || !ok {
		t.Fatalf("SetNX = %v, %v", ok, err)
	}
	if err := s.Set(ctx, "forever", []byte("f"), 0); err != nil {
		t.Fatalf("Set: %v", err)
	}

	clk.Advance(30*time.Second - time.Nanosecond)
	if ok, err := s.SetNX(ctx, "lease", []byte("b"), time.Minute); err != nil || ok {
		t.Fatalf("SetNX on a live lease = %v, %v; want false", ok, err)
	}
	clk.Advance(time.Nanosecond) // exactly at expiry: gone
	if ok, err := s.SetNX(ctx, "lease", []byte("b"), time.Minute); err != nil || !ok {
		t.Fatalf("SetNX on an expired lease = %v, %v; want true", ok, err)
	}
	if v, err := s.Get(ctx, "sess"); err != nil || string(v) != "v" {
		t.Fatalf("Get before expiry = %q, %v", v, err)
	}

	clk.Advance(time.Hour)
	if _, err := s.Get(ctx, "sess"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after expiry = %v, want ErrNotFound", err)
	}
	if _, err := s.GetInt64(ctx, "sess"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetInt64 after expiry = %v, want ErrNotFound", err)
	}
	// An expired value counts as absent for MaxInt64 too.
	if err := s.Set(ctx, "n", []byte("100"), time.Second); err != nil {
		t.Fatalf("Set: %v", err)
	}
	clk.Advance(time.Second)
	if n, err := s.MaxInt64(ctx, "n", 5); err != nil || n != 5 {
		t.Fatalf("MaxInt64 over an expired 100 = %d, %v; want 5", n, err)
	}

	// The sweeper removes expired records from the file, and only those.
	if got := rawKeys(t, s, bucketKV); len(got) != 4 {
		t.Fatalf("kv before sweep = %q, want 4 records (sess, lease, forever, n)", got)
	}
	n, err := s.sweep()
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	if n != 2 { // sess (expired) and lease (expired one minute after its retake)
		t.Fatalf("sweep deleted %d records, want 2", n)
	}
	if got := rawKeys(t, s, bucketKV); len(got) != 2 || got[0] != "forever" || got[1] != "n" {
		t.Fatalf("kv after sweep = %q, want [forever n]", got)
	}
	if got := rawKeys(t, s, bucketExp); len(got) != 0 {
		t.Fatalf("expiry index after sweep has %d entries, want 0", len(got))
	}
	if v, err := s.Get(ctx, "forever"); err != nil || string(v) != "f" {
		t.Fatalf("Get(forever) = %q, %v", v, err)
	}
}

func TestSweeperRunsInBackground(t *testing.T) {
	clk := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := openT(t, filepath.Join(t.TempDir(), "gw.db"), Options{Now: clk.Now, SweepInterval: 10 * time.Millisecond})
	ctx := context.Background()
	if err := s.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatalf("Set: %v", err)
	}
	clk.Advance(time.Hour)
	deadline := time.Now().Add(5 * time.Second)
	for len(rawKeys(t, s, bucketKV)) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("background sweeper did not remove the expired key")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Close(); err != nil { // Close stops the sweeper
		t.Fatalf("Close: %v", err)
	}
}

func TestSlowSubscriberDoesNotBlockPublish(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "gw.db"), Options{SubscriberBuffer: 2})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow, err := s.Subscribe(ctx, "c")
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	for i := range 10 {
		if err := s.Publish(ctx, "c", []byte{byte(i)}); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	// The buffer kept the first two; the rest were dropped, not queued.
	for want := range 2 {
		if m := <-slow; m.Payload[0] != byte(want) {
			t.Fatalf("got message %d, want %d", m.Payload[0], want)
		}
	}
	select {
	case m := <-slow:
		t.Fatalf("got message %d beyond the buffer", m.Payload[0])
	default:
	}
}

func TestEmptyKeyIsPlainError(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "gw.db"), Options{})
	err := s.Set(context.Background(), "", []byte("v"), 0)
	if err == nil || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Set(\"\") = %v, want a plain error", err)
	}
}

func rawKeys(t *testing.T, s *Store, bucket []byte) []string {
	t.Helper()
	var out []string
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	if err != nil {
		t.Fatalf("view: %v", err)
	}
	return out
}

func BenchmarkGet(b *testing.B) {
	s := openT(b, filepath.Join(b.TempDir(), "gw.db"), Options{})
	ctx := context.Background()
	if err := s.Set(ctx, "bench", make([]byte, 512), 0); err != nil {
		b.Fatalf("Set: %v", err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Get(ctx, "bench"); err != nil {
				b.Errorf("Get: %v", err)
				return
			}
		}
	})
}
