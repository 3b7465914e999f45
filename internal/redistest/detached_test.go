package redistest

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestStartDetached: a detached server outlives the test that started it
// (nothing is registered with t) until Close, which stops it and removes
// its directory; the kinds it cannot start are refused with an error.
func TestStartDetached(t *testing.T) {
	var s *Server
	t.Run("start", func(t *testing.T) {
		var err error
		s, err = StartDetached(Options{Password: "pw"})
		if err != nil {
			t.Fatal(err)
		}
	})
	if s == nil {
		t.Fatal("no server")
	}
	// The subtest has ended; a server tied to it would be stopped by now.
	if got, err := s.Do("PING"); err != nil || got != "PONG" {
		t.Fatalf("PING after the starting subtest ended: %q %v", got, err)
	}
	if !strings.HasPrefix(s.URL(), "redis://:pw@127.0.0.1:") {
		t.Fatalf("URL() = %q", s.URL())
	}
	dir := s.Dir()
	s.Close()
	if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		t.Fatal("server still accepts connections after Close")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("directory %s after Close: %v", dir, err)
	}
	s.Close() // idempotent

	for _, o := range []Options{{TLS: true}, {Cluster: true}} {
		if s, err := StartDetached(o); err == nil {
			s.Close()
			t.Errorf("StartDetached(%+v) started a server, want an error", o)
		}
	}
	if _, err := StartDetached(Options{Binary: "/nonexistent/redis-server"}); err == nil || !strings.Contains(err.Error(), "redis-server") {
		t.Errorf("missing binary: %v, want an error naming redis-server", err)
	}
}
