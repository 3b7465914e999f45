// Package redistest starts a real redis-server for one test: its own
// loopback port, its own temporary directory, stopped by t.Cleanup. Tests use
// it instead of mocks so that the store behaves as it will in production.
//
// A missing redis-server binary fails the test; it never skips, so a CI
// machine without Redis cannot pass by testing nothing.
package redistest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/internal/proctest"
)

// Options shapes the server. The zero value is an ephemeral server with no
// persistence at all (save "" and appendonly no), no password and no TLS.
type Options struct {
	// AppendOnly turns on the AOF with appendfsync always: every
	// acknowledged write is fsynced, so it survives Kill.
	AppendOnly bool
	// Save is the RDB save directive; empty means `save ""` (no snapshots).
	Save string
	// Password sets requirepass, the password of the default user.
	Password string
	// Users are ACL rules, one user per entry, in redis.conf `user` syntax
	// without the leading keyword, e.g. "alice on >secret ~* &* +@all -config".
	Users []string
	// TLS serves TLS only, with a certificate for 127.0.0.1 signed by a CA
	// generated for this server (CAFile); URL then says rediss://.
	TLS bool
	// clusterMember (StartCluster) leaves the slots to redis-cli --cluster
	// create, and sets a short cluster-node-timeout for failover tests.
	clusterMember bool
	// Cluster runs a one-node Redis Cluster owning every slot, for
	// redis+cluster:// tests.
	Cluster bool
	// ReplicaOf starts the server as a replica of another (replicaof),
	// for Sentinel failover tests.
	ReplicaOf *Server
	// Binary is the redis-server path; empty means /usr/bin/redis-server, or
	// redis-server from PATH if that does not exist.
	Binary string
	// StartTimeout bounds how long Start and Restart wait for PING; zero means
	// 10s, generous because CI machines are slow, not because Redis is.
	StartTimeout time.Duration
}

// Server is one running redis-server. Its methods are safe for use by one
// test goroutine at a time.
type Server struct {
	t    testing.TB
	opts Options
	bin  string
	dir  string
	conf string
	log  string
	port int

	// sentinel is set for servers started by StartSentinel: the master
	// name, monitored master and mode flag change the config and URL.
	sentinel *sentinelOf
	tlsConf  *tls.Config

	mu   sync.Mutex
	proc *proctest.Proc
}

// Start launches redis-server and waits until it answers PING. It fails the
// test with t.Fatalf if the binary is missing or the server does not come up.
// The server is stopped, and on failure its log printed, by t.Cleanup.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := newServer(t, opts)
	if opts.TLS {
		tc, err := writeCerts(s.dir)
		if err != nil {
			t.Fatalf("redistest: TLS certificates: %v", err)
		}
		s.tlsConf = tc
	}
	s.launch(t)
	if opts.Cluster && !opts.clusterMember {
		s.claimAllSlots(t)
	}
	return s
}

func newServer(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := findBinary(opts.Binary)
	if err != nil {
		t.Fatalf("redistest: %v (install the redis-server package)", err)
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 10 * time.Second
	}
	// MkdirTemp rather than t.TempDir: the directory holds the log we print
	// from Cleanup, and t.TempDir's removal is registered before ours runs.
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		t.Fatalf("redistest: temp dir: %v", err)
	}
	s := &Server{
		t:    t,
		opts: opts,
		bin:  bin,
		dir:  dir,
		conf: filepath.Join(dir, "redis.conf"),
		log:  filepath.Join(dir, "redis.log"),
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			s.dumpLog()
		}
		_ = os.RemoveAll(dir)
	})
	return s
}

func (s *Server) launch(t testing.TB) {
	t.Helper()
	if err := s.launchErr(); err != nil {
		t.Fatalf("redistest: %v", err)
	}
}

// launchErr is launch reporting its failure instead of failing a test.
func (s *Server) launchErr() error {
	err := proctest.OnFreePort(func(port int) error {
		s.port = port
		if err := s.writeConfig(); err != nil {
			return err
		}
		if err := s.start(); err != nil {
			s.Kill()
			return err
		}
		return nil
	}, func() bool { return s.logContains("Address already in use") })
	if err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	return nil
}

// URL is the redis:// URL of the server's database 0, with the default
// user's password if one is set.
func (s *Server) URL() string {
	u := url.URL{Scheme: "redis", Host: s.Addr(), Path: "/0"}
	if s.opts.TLS {
		u.Scheme = "rediss"
	}
	if s.opts.Cluster {
		u.Scheme, u.Path = "redis+cluster", ""
	}
	if s.opts.Password != "" {
		u.User = url.UserPassword("", s.opts.Password)
	}
	return u.String()
}

// Addr is host:port on 127.0.0.1.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// CAFile is the PEM file of the CA that signed the server's certificate;
// empty unless Options.TLS.
func (s *Server) CAFile() string {
	if !s.opts.TLS {
		return ""
	}
	return filepath.Join(s.dir, "ca.pem")
}

// Dir is the server's working directory (AOF and RDB files live there).
func (s *Server) Dir() string { return s.dir }

// Kill sends SIGKILL and waits for the process to die: nothing is flushed,
// as in a crash. Killing a stopped server is a no-op.
func (s *Server) Kill() {
	s.signal(syscall.SIGKILL, 0)
}

// Stop shuts the server down gracefully (SIGTERM), falling back to SIGKILL
// after five seconds. Stopping a stopped server is a no-op.
func (s *Server) Stop() {
	s.signal(syscall.SIGTERM, 5*time.Second)
}

// Restart starts the server again on the same port and directory, so the
// same URL reaches it and any AOF/RDB is reloaded, and waits until it
// answers PING (which Redis refuses while still loading). A running server
// is stopped first.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		t.Fatalf("redistest: restart redis-server: %v", err)
	}
}

func (s *Server) signal(sig syscall.Signal, grace time.Duration) {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.Stop(sig, grace)
	}
}

func (s *Server) start() error {
	args := []string{s.conf}
	if s.sentinel != nil {
		args = append(args, "--sentinel")
	}
	// Config errors go to stderr before the logfile is opened, hence the
	// shared output file.
	p, err := proctest.Start(proctest.Spec{Bin: s.bin, Args: args, Dir: s.dir, Log: s.out(),
		Ready: s.ping, Timeout: s.opts.StartTimeout, Poll: 20 * time.Millisecond})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// ping speaks just enough RESP to authenticate and PING, so this package
// does not depend on the client library it is used to test.
func (s *Server) ping() error {
	_, err := s.Do("PING")
	return err
}

// Do sends one command as the default user and returns its reply if it is
// a simple string, integer or bulk string; error replies become errors.
// It is for test set-up (CLUSTER ADDSLOTS, DEBUG), not for the code under
// test, which should use its own client.
func (s *Server) Do(args ...string) (string, error) {
	d := net.Dialer{Timeout: time.Second}
	var conn net.Conn
	var err error
	if s.tlsConf != nil {
		conn, err = tls.DialWithDialer(&d, "tcp", s.Addr(), s.tlsConf)
	} else {
		conn, err = d.Dial("tcp", s.Addr())
	}
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	r := bufio.NewReader(conn)
	if s.opts.Password != "" {
		if _, err := roundTrip(conn, r, "AUTH", s.opts.Password); err != nil {
			return "", err
		}
	}
	return roundTrip(conn, r, args...)
}

func roundTrip(conn net.Conn, r *bufio.Reader, args ...string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	switch {
	case line == "":
		return "", errors.New("empty reply")
	case line[0] == '-':
		// Redis never puts AUTH's password in its reply, so this is safe.
		return "", fmt.Errorf("%s: %s", args[0], line[1:])
	case line[0] == '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", nil // nil bulk
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	default:
		return line[1:], nil
	}
}

func (s *Server) writeConfig() error {
	var b strings.Builder
	if s.opts.TLS {
		fmt.Fprintf(&b, "port 0\ntls-port %d\n", s.port)
		fmt.Fprintf(&b, "tls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\ntls-auth-clients no\n",
			filepath.Join(s.dir, "server.pem"), filepath.Join(s.dir, "server.key"), filepath.Join(s.dir, "ca.pem"))
	} else {
		fmt.Fprintf(&b, "port %d\n", s.port)
	}
	fmt.Fprintf(&b, "bind 127.0.0.1\ndir %s\nlogfile %s\n", s.dir, s.log)
	if s.sentinel != nil {
		m := s.sentinel
		fmt.Fprintf(&b, "sentinel monitor %s 127.0.0.1 %d %d\n", m.name, m.master.port, max(m.quorum, 1))
		if m.downAfter > 0 {
			fmt.Fprintf(&b, "sentinel down-after-milliseconds %s %d\n", m.name, m.downAfter.Milliseconds())
			// A failover that stalls is retried after twice this; the
			// default (3 minutes) is for production, not a test.
			fmt.Fprintf(&b, "sentinel failover-timeout %s %d\n", m.name, 4*m.downAfter.Milliseconds())
		}
		if m.master.opts.Password != "" {
			fmt.Fprintf(&b, "sentinel auth-pass %s %s\n", m.name, strconv.Quote(m.master.opts.Password))
		}
		return os.WriteFile(s.conf, []byte(b.String()), 0o600)
	}
	if s.opts.Cluster {
		b.WriteString("cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-announce-ip 127.0.0.1\n")
		if s.opts.clusterMember {
			// Fail over within about a second of a master's death.
			b.WriteString("cluster-node-timeout 1000\n")
		}
	}
	// Replicas sync at once (the default waits 5s for more to join).
	b.WriteString("daemonize no\nprotected-mode no\nrepl-diskless-sync-delay 0\n")
	if s.opts.Save == "" {
		b.WriteString("save \"\"\n")
	} else {
		fmt.Fprintf(&b, "save %s\n", s.opts.Save)
	}
	if s.opts.AppendOnly {
		b.WriteString("appendonly yes\nappendfsync always\n")
	} else {
		b.WriteString("appendonly no\n")
	}
	if s.opts.Password != "" {
		fmt.Fprintf(&b, "requirepass %s\n", strconv.Quote(s.opts.Password))
	}
	if m := s.opts.ReplicaOf; m != nil {
		fmt.Fprintf(&b, "replicaof 127.0.0.1 %d\n", m.port)
		if m.opts.Password != "" {
			fmt.Fprintf(&b, "masterauth %s\n", strconv.Quote(m.opts.Password))
		}
	}
	for _, u := range s.opts.Users {
		fmt.Fprintf(&b, "user %s\n", u)
	}
	if err := os.WriteFile(s.conf, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write redis.conf: %w", err)
	}
	return nil
}

func (s *Server) logContains(sub string) bool {
	for _, p := range []string{s.out(), s.log} {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), sub) {
			return true
		}
	}
	return false
}

func (s *Server) out() string { return filepath.Join(s.dir, "redis.out") }

func (s *Server) dumpLog() {
	for _, p := range []string{s.out(), s.log} {
		if b, err := os.ReadFile(p); err == nil && len(b) > 0 {
			s.t.Logf("redistest: %s of redis-server on %s:\n%s", filepath.Base(p), s.Addr(), b)
		}
	}
}

func findBinary(explicit string) (string, error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", fmt.Errorf("redis-server binary: %w", err)
		}
		return explicit, nil
	}
	if _, err := os.Stat("/usr/bin/redis-server"); err == nil {
		return "/usr/bin/redis-server", nil
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redis-server not found: %w", err)
	}
	return p, nil
}
