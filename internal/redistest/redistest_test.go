package redistest

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// do sends one command and returns the raw first reply line.
func do(t *testing.T, addr string, args ...string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	b.WriteString("*" + itoa(len(args)) + "\r\n")
	for _, a := range args {
		b.WriteString("$" + itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatalf("write: %v", err)
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if strings.HasPrefix(line, "$") && !strings.HasPrefix(line, "$-1") {
		line, err = r.ReadString('\n')
		if err != nil {
			t.Fatalf("read bulk: %v", err)
		}
	}
	return strings.TrimSpace(line)
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestStartURLAndStop(t *testing.T) {
	s := Start(t, Options{})
	if !strings.HasPrefix(s.URL(), "redis://127.0.0.1:") || !strings.HasSuffix(s.URL(), "/0") {
		t.Fatalf("URL() = %q", s.URL())
	}
	if got := do(t, s.Addr(), "PING"); got != "+PONG" {
		t.Fatalf("PING = %q", got)
	}
	if got := do(t, s.Addr(), "CONFIG", "GET", "save"); got != "*2" {
		t.Fatalf("CONFIG GET save = %q", got)
	}
	s.Stop()
	if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		t.Fatal("server still accepts connections after Stop")
	}
	s.Stop() // idempotent
}

func TestKillRestartKeepsAOFWrites(t *testing.T) {
	s := Start(t, Options{AppendOnly: true})
	if got := do(t, s.Addr(), "SET", "k", "v"); got != "+OK" {
		t.Fatalf("SET = %q", got)
	}
	s.Kill()
	if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		t.Fatal("server still accepts connections after Kill")
	}
	s.Restart(t)
	if got := do(t, s.Addr(), "GET", "k"); got != "v" {
		t.Fatalf("GET after kill+restart = %q, want v", got)
	}
}

func TestEphemeralLosesWritesOnKill(t *testing.T) {
	s := Start(t, Options{})
	do(t, s.Addr(), "SET", "k", "v")
	s.Kill()
	s.Restart(t)
	if got := do(t, s.Addr(), "GET", "k"); got != "$-1" {
		t.Fatalf("GET after kill+restart without persistence = %q, want nil", got)
	}
}

func TestPasswordAndUsers(t *testing.T) {
	s := Start(t, Options{Password: "p@ss word", Users: []string{"alice on >wonder ~* &* +@all"}})
	if !strings.Contains(s.URL(), ":p%40ss%20word@") {
		t.Fatalf("URL() does not carry the escaped password: %q", s.URL())
	}
	if got := do(t, s.Addr(), "GET", "x"); !strings.HasPrefix(got, "-NOAUTH") {
		t.Fatalf("unauthenticated GET = %q, want NOAUTH", got)
	}
	if got := do(t, s.Addr(), "AUTH", "alice", "wonder"); got != "+OK" {
		t.Fatalf("AUTH alice = %q", got)
	}
}

func TestTLS(t *testing.T) {
	s := Start(t, Options{TLS: true})
	if !strings.HasPrefix(s.URL(), "rediss://") || s.CAFile() == "" {
		t.Fatalf("URL() = %q, CAFile() = %q", s.URL(), s.CAFile())
	}
	if got, err := s.Do("PING"); err != nil || got != "PONG" {
		t.Fatalf("PING over TLS = %q, %v", got, err)
	}
	// Plain TCP is refused: the server speaks TLS only.
	conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	_, _ = conn.Write([]byte("PING\r\n"))
	buf := make([]byte, 16)
	if n, _ := conn.Read(buf); strings.Contains(string(buf[:n]), "PONG") {
		t.Fatal("TLS server answered plain-text PING")
	}
}

func TestClusterAndSentinel(t *testing.T) {
	c := Start(t, Options{Cluster: true})
	if !strings.HasPrefix(c.URL(), "redis+cluster://") {
		t.Fatalf("cluster URL() = %q", c.URL())
	}
	if info, err := c.Do("CLUSTER", "INFO"); err != nil || !strings.Contains(info, "cluster_slots_assigned:16384") {
		t.Fatalf("CLUSTER INFO = %q, %v", info, err)
	}

	m := Start(t, Options{Password: "mpw"})
	sn := StartSentinel(t, m, "mymaster")
	got, err := sn.Do("SENTINEL", "get-master-addr-by-name", "mymaster")
	if err != nil {
		t.Fatalf("SENTINEL get-master-addr-by-name: %v", err)
	}
	// Do returns only the first line of an array reply; the host is enough.
	if got == "" {
		t.Fatalf("sentinel does not report the master")
	}
}
