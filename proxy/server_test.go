package proxy

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// runServer starts s and returns a stop function that shuts it down and
// returns Run's result.
func runServer(t *testing.T, s *Server) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func TestServerRefusesHugeHeaderWith431(t *testing.T) {
	s := newStack(t, nil, nil)
	l := listen(t)
	srv, err := NewServer(ServerOptions{Listener: l, Handler: s.gw})
	if err != nil {
		t.Fatal(err)
	}
	runServer(t, srv)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The server answers and hangs up while we are still writing, so the
	// write may fail; only the answer matters.
	go func() {
		_, _ = io.WriteString(c, "GET /x HTTP/1.1\r\nHost: gw\r\nX-Big: "+strings.Repeat("a", 1<<20)+"\r\n\r\n")
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("1 MB header: status %d, want 431", resp.StatusCode)
	}
	if s.backend.count() != 0 {
		t.Error("huge header reached upstream")
	}
	// A normal request still works on the same server.
	resp, _ = raw(t, l.Addr().String(), "GET /x HTTP/1.1\r\nHost: gw\r\nCookie: "+strings.Repeat("c", 8000)+"\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Errorf("8 KB cookie: %d", resp.StatusCode)
	}
}

func TestGracefulShutdownDrainsInFlight(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	s := newStack(t, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "finished")
	}, nil)
	l := listen(t)
	srv, err := NewServer(ServerOptions{Listener: l, Handler: s.gw, ShutdownTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	stop := runServer(t, srv)
	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + l.Addr().String() + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	// New connections are refused once shutdown began.
	for {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(time.Millisecond)
	}
	close(release)
	r := <-got
	if r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request: %q %v", r.body, r.err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestShutdownDeadlineCutsStragglers(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	s := newStack(t, func(w http.ResponseWriter, r *http.Request) { close(entered); <-release }, nil)
	l := listen(t)
	srv, err := NewServer(ServerOptions{Listener: l, Handler: s.gw, ShutdownTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	stop := runServer(t, srv)
	go func() {
		if resp, err := http.Get("http://" + l.Addr().String() + "/slow"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	if err := stop(); err == nil || !strings.Contains(err.Error(), "shutdown") {
		t.Fatalf("Run = %v, want a shutdown deadline error", err)
	}
}

func writeCert(t *testing.T, dir, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	// Distinct mtimes even on coarse file systems.
	stamp := time.Now().Add(time.Duration(len(cn)) * time.Second)
	_ = os.Chtimes(certPath, stamp, stamp)
	_ = os.Chtimes(keyPath, stamp, stamp)
}

func peerCN(t *testing.T, addr string, minV, maxV uint16) (string, error) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: minV, MaxVersion: maxV}) //nolint:gosec // test reads the served certificate
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

func TestTLSCertificateReloadAndMinVersion(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir, "first")
	s := newStack(t, nil, nil)
	l := listen(t)
	rl := listen(t)
	srv, err := NewServer(ServerOptions{
		Listener: l, Handler: s.gw,
		CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"),
		RedirectListener: rl, RedirectTo: "https://bi.example.com:8443",
	})
	if err != nil {
		t.Fatal(err)
	}
	runServer(t, srv)
	if cn, err := peerCN(t, l.Addr().String(), tls.VersionTLS12, tls.VersionTLS13); err != nil || cn != "first" {
		t.Fatalf("first cert: %q %v", cn, err)
	}
	writeCert(t, dir, "second-renewed")
	if cn, err := peerCN(t, l.Addr().String(), tls.VersionTLS12, tls.VersionTLS13); err != nil || cn != "second-renewed" {
		t.Fatalf("after rewrite: %q %v", cn, err)
	}
	// A half-written pair keeps the previous certificate.
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cn, err := peerCN(t, l.Addr().String(), tls.VersionTLS12, tls.VersionTLS13); err != nil || cn != "second-renewed" {
		t.Fatalf("broken key: %q %v", cn, err)
	}
	if _, err := peerCN(t, l.Addr().String(), tls.VersionTLS10, tls.VersionTLS11); err == nil {
		t.Error("TLS 1.1 accepted")
	}
	// The plain listener only redirects, to the configured public URL.
	resp, _ := raw(t, rl.Addr().String(), "POST /login/?next=%2F HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 0\r\n\r\n")
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://bi.example.com:8443/login/?next=%2F" {
		t.Errorf("redirect %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if s.backend.count() != 0 {
		t.Error("redirect listener proxied")
	}
}

func TestNewServerValidates(t *testing.T) {
	h := http.NotFoundHandler()
	dir := t.TempDir()
	bad := []ServerOptions{
		{Addr: ":0"},
		{Handler: h},
		{Addr: ":0", Handler: h, CertFile: "x"},
		{Addr: ":0", Handler: h, CertFile: filepath.Join(dir, "none"), KeyFile: filepath.Join(dir, "none")},
		{Addr: ":0", Handler: h, RedirectAddr: ":0", RedirectTo: "https://x"},
	}
	for i, o := range bad {
		if _, err := NewServer(o); err == nil {
			t.Errorf("case %d accepted", i)
		}
	}
	writeCert(t, dir, "x")
	if _, err := NewServer(ServerOptions{Addr: ":0", Handler: h, CertFile: filepath.Join(dir, "cert.pem"),
		KeyFile: filepath.Join(dir, "key.pem"), RedirectAddr: ":0", RedirectTo: "http://plain"}); err == nil {
		t.Error("plain redirect target accepted")
	}
}

func TestCertLoadedReportsExpiryOnLoadAndReload(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir, "first")
	var mu sync.Mutex
	var seen []time.Time
	s := newStack(t, nil, nil)
	l := listen(t)
	srv, err := NewServer(ServerOptions{
		Listener: l, Handler: s.gw,
		CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"),
		CertLoaded: func(na time.Time) { mu.Lock(); seen = append(seen, na); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	runServer(t, srv)
	writeCert(t, dir, "second-renewed")
	if _, err := peerCN(t, l.Addr().String(), tls.VersionTLS12, tls.VersionTLS13); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 {
		t.Fatalf("CertLoaded called %d times, want 2 (load, reload)", len(seen))
	}
	for _, na := range seen {
		if d := time.Until(na); d < 50*time.Minute || d > 70*time.Minute {
			t.Fatalf("expiry %v is not the certificate's NotAfter (an hour from now)", na)
		}
	}
}
