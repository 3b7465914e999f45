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

func newT(t *testing.T, o redis.Options) *redis.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if o.DialTimeout == 0 {
		o.DialTimeout = 2 * time.Second
	}
	s, err := redis.New(ctx, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestTLS(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{TLS: true})
	storetest.Run(t, func(t *testing.T) store.Store {
		return newT(t, redis.Options{URL: srv.URL(), TLSCAFile: srv.CAFile()})
	}, storetest.SharedBackend())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Without our CA the certificate is not trusted: New fails.
	if _, err := redis.New(ctx, redis.Options{URL: srv.URL(), DialTimeout: time.Second}); err == nil {
		t.Fatal("New trusted a certificate from an unknown CA")
	}
	// The test-only escape hatch does connect.
	if err := newT(t, redis.Options{URL: srv.URL(), TLSInsecureSkipVerify: true}).Ping(ctx); err != nil {
		t.Fatalf("Ping with TLSInsecureSkipVerify: %v", err)
	}
	// A plain redis:// client cannot talk to a TLS-only server.
	plain := strings.Replace(srv.URL(), "rediss://", "redis://", 1)
	if _, err := redis.New(ctx, redis.Options{URL: plain, DialTimeout: time.Second}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("New over plain TCP to a TLS server = %v, want ErrUnavailable", err)
	}
	if _, err := redis.New(ctx, redis.Options{URL: srv.URL(), TLSCAFile: "/nonexistent/ca.pem"}); err == nil {
		t.Fatal("New with a missing CA file succeeded")
	}
}

func TestCluster(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Cluster: true})
	storetest.Run(t, func(t *testing.T) store.Store {
		return newT(t, redis.Options{URL: srv.URL()})
	}, storetest.SharedBackend())
}

func TestSentinel(t *testing.T) {
	master := redistest.Start(t, redistest.Options{Password: "master-pw"})
	sn := redistest.StartSentinel(t, master, "gwmaster")
	url := "redis+sentinel://:master-pw@" + sn.Addr() + "/gwmaster?db=2"
	storetest.Run(t, func(t *testing.T) store.Store {
		return newT(t, redis.Options{URL: url})
	}, storetest.SharedBackend())

	// Writes went to the master's database 2, found through the Sentinel.
	s := newT(t, redis.Options{URL: url})
	ctx := context.Background()
	if err := s.Set(ctx, "via-sentinel", []byte("yes"), 0); err != nil {
		t.Fatalf("Set: %v", err)
	}
	direct := newT(t, redis.Options{URL: "redis://:master-pw@" + master.Addr() + "/2"})
	if v, err := direct.Get(ctx, "via-sentinel"); err != nil || string(v) != "yes" {
		t.Fatalf("Get on the master's db 2 = %q, %v", v, err)
	}
}
