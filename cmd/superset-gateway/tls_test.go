package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, dir, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, dir, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServeTLSWithRedirectListener(t *testing.T) {
	dir := t.TempDir()
	be := backend(t, "node-a")
	certFile, keyFile, roots := selfSigned(t, dir)
	listen, redirect := freePort(t), freePort(t)
	y := baseYAML(t, listen, "", be.URL, filepath.Join(dir, "data")) + fmt.Sprintf(
		"public_url: https://%s\ntls: {cert_file: %s, key_file: %s, redirect_http_listen: \"%s\"}\n", listen, certFile, keyFile, redirect)
	cfg := writeFile(t, dir, "gw.yaml", y)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr syncBuffer
	go func() { done <- run(ctx, []string{"serve", "--config", cfg}, nil, io.Discard, &stderr) }()
	defer func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("exit %d: %s", code, stderr.String())
		}
	}()

	client := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	deadline := time.Now().Add(15 * time.Second)
	var resp *http.Response
	for {
		var err error
		resp, err = client.Get("https://" + listen + "/x")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("TLS listener not up: %v\n%s", err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "node-a GET /x" || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("over TLS: %q %+v", body, resp.TLS)
	}
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatal("no HSTS with an https public_url")
	}
	// TLS 1.1 is refused.
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11}}}
	if _, err := old.Get("https://" + listen + "/x"); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
	// The plain listener only redirects, to public_url rather than to the
	// Host header the client sent.
	req, _ := http.NewRequest(http.MethodGet, "http://"+redirect+"/dashboard/1/?a=b", nil)
	req.Host = "evil.example"
	r, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusPermanentRedirect || r.Header.Get("Location") != "https://"+listen+"/dashboard/1/?a=b" {
		t.Fatalf("redirect %d %q", r.StatusCode, r.Header.Get("Location"))
	}
}
