package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

type sentinelOf struct {
	name      string
	master    *Server
	quorum    int
	downAfter time.Duration
}

// StartSentinel starts a Sentinel monitoring master under the given master
// name, for redis+sentinel:// tests. Its URL is redis://; callers build the
// sentinel URL from Addr. It is stopped by t.Cleanup like any Server.
func StartSentinel(t testing.TB, master *Server, name string) *Server {
	t.Helper()
	return startSentinel(t, &sentinelOf{name: name, master: master, quorum: 1})
}

// StartSentinels starts n Sentinels monitoring master with quorum, each
// taking it for down after downAfter without an answer (and failing over),
// for failover tests: the master is killed and a replica promoted.
func StartSentinels(t testing.TB, master *Server, name string, n, quorum int, downAfter time.Duration) []*Server {
	t.Helper()
	out := make([]*Server, n)
	for i := range out {
		out[i] = startSentinel(t, &sentinelOf{name: name, master: master, quorum: quorum, downAfter: downAfter})
	}
	return out
}

func startSentinel(t testing.TB, of *sentinelOf) *Server {
	t.Helper()
	master, name := of.master, of.name
	if master.opts.TLS {
		t.Fatalf("redistest: StartSentinel does not support a TLS master")
	}
	s := newServer(t, Options{Binary: master.opts.Binary, StartTimeout: master.opts.StartTimeout})
	s.sentinel = of
	s.launch(t)
	// Sentinel answers PING before it has looked at the master; wait until
	// it reports the master's address, which is what clients ask first.
	deadline := time.Now().Add(s.opts.StartTimeout)
	for {
		got, err := s.Do("SENTINEL", "get-master-addr-by-name", name)
		if err == nil && got != "" && got != "-1" {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: sentinel does not know master %q: %v", name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StartCluster starts a Redis Cluster of masters masters, each with
// replicas replicas (AOF always), created with redis-cli --cluster create,
// and waits until every node reports cluster_state:ok. Its URL is the
// first node's; every node is in the returned slice, masters first.
func StartCluster(t testing.TB, masters, replicas int) []*Server {
	t.Helper()
	n := masters * (1 + replicas)
	nodes := make([]*Server, n)
	addrs := make([]string, n)
	for i := range nodes {
		nodes[i] = Start(t, Options{Cluster: true, clusterMember: true, AppendOnly: true})
		addrs[i] = nodes[i].Addr()
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redistest: redis-cli (Debian's redis-tools): %v", err)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range nodes {
		for {
			info, err := s.Do("CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster not ok on %s: %v %q", s.Addr(), err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nodes
}

// claimAllSlots makes a lone cluster node own every slot and waits until it
// reports cluster_state:ok. After a restart nodes.conf already holds them.
func (s *Server) claimAllSlots(t testing.TB) {
	t.Helper()
	if _, err := s.Do("CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil {
		t.Fatalf("redistest: CLUSTER ADDSLOTSRANGE: %v", err)
	}
	deadline := time.Now().Add(s.opts.StartTimeout)
	for {
		info, err := s.Do("CLUSTER", "INFO")
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: cluster not ok: %v %q", err, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeCerts writes ca.pem, server.pem and server.key into dir and returns
// a client config trusting the CA.
func writeCerts(dir string) (*tls.Config, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "redistest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	for name, block := range map[string]*pem.Block{
		"ca.pem":     {Type: "CERTIFICATE", Bytes: caDER},
		"server.pem": {Type: "CERTIFICATE", Bytes: der},
		"server.key": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
