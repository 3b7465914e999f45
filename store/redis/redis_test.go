package redis_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/store/redis"
	"github.com/superset-gateway/superset-gateway/store/storetest"
)

func open(t *testing.T, url string) *redis.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := redis.New(ctx, redis.Options{URL: url, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, srv.URL()) }, storetest.SharedBackend())
}

func TestUnavailableAfterKill(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := open(t, srv.URL())
	ctx := context.Background()
	if err := s.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatalf("Set: %v", err)
	}
	srv.Kill()
	storetest.AssertUnavailable(t, s)

	// The same client recovers once Redis is back (go-redis redials in the
	// background, so allow it a moment); nothing was persisted, so the key is
	// now absent, and absent again looks like ErrNotFound.
	srv.Restart(t)
	deadline := time.Now().Add(10 * time.Second)
	for err := s.Ping(ctx); err != nil; err = s.Ping(ctx) {
		if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("Ping after restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after restart without persistence: %v, want ErrNotFound", err)
	}
}

func TestNewUnreachableIsUnavailable(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Password: "hunter2-secret"})
	url := srv.URL()
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := redis.New(ctx, redis.Options{URL: url, DialTimeout: time.Second})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("New(unreachable) = %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error echoes the password: %v", err)
	}
}

func TestDurableAcrossKill(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	s := open(t, srv.URL())
	ctx := context.Background()
	d, err := s.Durability(ctx)
	if err != nil {
		t.Fatalf("Durability: %v", err)
	}
	want := store.Durability{Backend: "redis", AppendOnly: true, AppendFsync: "always", Durable: true}
	want.Detail = d.Detail
	if d != want || !strings.Contains(d.Detail, "always") {
		t.Fatalf("Durability = %+v, want %+v", d, want)
	}
	if got, err := s.MaxInt64(ctx, "epoch:u1", 1<<62+7); err != nil || got != 1<<62+7 {
		t.Fatalf("MaxInt64 = %d, %v", got, err)
	}
	if err := s.Set(ctx, "revoked", []byte("yes"), 0); err != nil {
		t.Fatalf("Set: %v", err)
	}
	srv.Kill()
	srv.Restart(t)
	if n, err := s.GetInt64(ctx, "epoch:u1"); err != nil || n != 1<<62+7 {
		t.Fatalf("GetInt64 after kill -9 and restart = %d, %v; want %d", n, err, int64(1<<62+7))
	}
	if v, err := s.Get(ctx, "revoked"); err != nil || string(v) != "yes" {
		t.Fatalf("Get after kill -9 and restart = %q, %v", v, err)
	}
}

func TestDurabilityEphemeral(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	d, err := open(t, srv.URL()).Durability(context.Background())
	if err != nil {
		t.Fatalf("Durability: %v", err)
	}
	if d.Durable || d.AppendOnly || d.Backend != "redis" || !strings.Contains(d.Detail, "appendonly no") {
		t.Fatalf("Durability of a server without AOF = %+v", d)
	}
}

func TestPasswordAndACL(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{
		Password: "default-pw",
		Users: []string{
			// Everything but CONFIG: Durability must say "unknown", not fail.
			"gateway on >gw-s3cret ~* &* +@all -config",
			"reader on >read-pw ~* &* -@all +get +ping +hello +auth",
		},
	})
	ctx := context.Background()

	// The default user through the URL's password.
	if err := open(t, srv.URL()).Ping(ctx); err != nil {
		t.Fatalf("Ping as default user: %v", err)
	}

	// An ACL user: everything works, Durability is unknown.
	gw := open(t, "redis://gateway:gw-s3cret@"+srv.Addr()+"/0")
	if err := gw.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatalf("Set as ACL user: %v", err)
	}
	d, err := gw.Durability(ctx)
	if err != nil {
		t.Fatalf("Durability without CONFIG permission: %v", err)
	}
	if d.Detail != "unknown" || d.Durable || d.Backend != "redis" {
		t.Fatalf("Durability without CONFIG permission = %+v, want Detail unknown", d)
	}

	// A permission error is a plain error: neither absent nor down.
	rd := open(t, "redis://reader:read-pw@"+srv.Addr())
	if v, err := rd.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get as reader = %q, %v", v, err)
	}
	err = rd.Set(ctx, "k", []byte("w"), 0)
	if err == nil || errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Set without permission: err = %v, want a plain NOPERM error", err)
	}

	// Wrong password: New fails, without echoing either password.
	for _, url := range []string{
		"redis://gateway:wrong-pw-xyz@" + srv.Addr(),
		"redis://" + srv.Addr(), // no password at all
	} {
		_, err := redis.New(ctx, redis.Options{URL: url, DialTimeout: time.Second})
		if err == nil {
			t.Fatalf("New with bad credentials succeeded")
		}
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("New with bad credentials: %v, want ErrUnavailable", err)
		}
		if strings.Contains(err.Error(), "wrong-pw-xyz") {
			t.Fatalf("error echoes the password: %v", err)
		}
	}
}

func TestString(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Password: "pw-to-hide"})
	s := open(t, srv.URL())
	if strings.Contains(s.String(), "pw-to-hide") || !strings.Contains(s.String(), srv.Addr()) {
		t.Fatalf("String() = %q", s.String())
	}
}

func BenchmarkGet(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	ctx := context.Background()
	s, err := redis.New(ctx, redis.Options{URL: srv.URL()})
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	defer s.Close()
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
