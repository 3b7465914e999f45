package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/superset-gateway/superset-gateway/gateway"
)

// syncBuffer is a bytes.Buffer safe for the logger's goroutines and the
// test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runCmd runs the command line and returns the exit code and both outputs.
func runCmd(t *testing.T, ctx context.Context, env []string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr syncBuffer
	code := run(ctx, args, env, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// strongSecret is a secret that passes policy.CheckSecret.
const strongSecret = "kU4n9Qx2Lr7Vt1Zp8Hc3Wm6Yb0Ds5Fg2Je7Ta4Nq"

func TestUsage(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		args       []string
		code       int
		stdout     string
		stderrLine string // the whole stderr, one line, when set
	}{
		{nil, exitUsage, "", ""},
		{[]string{"help"}, exitOK, "usage: superset-gateway", ""},
		{[]string{"version"}, exitOK, "superset-gateway ", ""},
		{[]string{"frobnicate"}, exitUsage, "", `superset-gateway: unknown command "frobnicate" (try: superset-gateway help)`},
		{[]string{"serve"}, exitUsage, "", "superset-gateway: serve: --config FILE is required"},
		{[]string{"check-config", "--bogus"}, exitUsage, "", "superset-gateway: check-config: flag provided but not defined: -bogus"},
		{[]string{"check-config", "--config", "a.yaml", "extra"}, exitUsage, "", `superset-gateway: check-config: unexpected argument "extra"`},
		{[]string{"check-config", "--config", "/nonexistent/gw.yaml"}, exitUsage, "", "superset-gateway: config: open /nonexistent/gw.yaml: no such file or directory"},
		{[]string{"serve", "-h"}, exitOK, "usage: superset-gateway", ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := runCmd(t, ctx, nil, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tt.code, errOut)
			}
			if !strings.HasPrefix(out, tt.stdout) {
				t.Fatalf("stdout %q, want prefix %q", out, tt.stdout)
			}
			if tt.stderrLine != "" && errOut != tt.stderrLine+"\n" {
				t.Fatalf("stderr %q, want the one line %q", errOut, tt.stderrLine)
			}
		})
	}
}

func TestBadConfigExits2NamingTheKey(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		yaml, env, want string
	}{
		{"upstreams: [http://a, ftp://x]\n", "", `superset-gateway: config: upstreams[1]: "ftp://x" is not an http(s) URL`},
		{"health_check: {intervall: 5s}\n", "", "superset-gateway: config: health_check.intervall (line 1): unknown key"},
		{"listen: 127.0.0.1:8080\n", "SG_STORE_REDIS=x", "superset-gateway: config: unknown environment variable SG_STORE_REDIS"},
		{"superset: {secret_key_file: /nonexistent/sk}\n", "", "superset-gateway: config: superset.secret_key_file: open /nonexistent/sk"},
	} {
		p := writeFile(t, dir, "gw.yaml", tt.yaml)
		var env []string
		if tt.env != "" {
			env = []string{tt.env}
		}
		for _, cmd := range []string{"check-config", "serve"} {
			code, _, errOut := runCmd(t, context.Background(), env, cmd, "--config", p)
			if code != exitUsage {
				t.Fatalf("%s %q: exit %d, want 2 (%s)", cmd, tt.yaml, code, errOut)
			}
			if !strings.HasPrefix(errOut, tt.want) || strings.Count(errOut, "\n") != 1 {
				t.Fatalf("%s: stderr %q, want one line starting %q", cmd, errOut, tt.want)
			}
		}
	}
}

func TestCheckConfigOK(t *testing.T) {
	dir := t.TempDir()
	sk := writeFile(t, dir, "sk", strongSecret+"\n")
	p := writeFile(t, dir, "gw.yaml", "superset: {secret_key_file: "+sk+"}\n")
	code, out, errOut := runCmd(t, context.Background(), nil, "check-config", "--config", p)
	if code != exitOK || out != "OK\n" {
		t.Fatalf("exit %d stdout %q stderr %q", code, out, errOut)
	}
	if strings.Contains(out+errOut, strongSecret) {
		t.Fatal("the secret was printed")
	}
}

func TestWeakSupersetSecretRefusedUnlessOptedOut(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, value, key, why string
	}{
		{"placeholder", "CHANGE_ME_TO_A_COMPLEX_RANDOM_SECRET", "secret_key_file", "is a published default or placeholder value"},
		{"helm default", "thisISaSECRET_1234", "secret_key_file", "is a published default or placeholder value"},
		{"guest default", "test-guest-secret-change-me", "guest_token_secret_file", "is a published default or placeholder value"},
		{"short", "s3cr3t-but-short", "jwt_secret_file", "is shorter than 32 bytes"},
		{"repeated", strings.Repeat("abc123", 8), "secret_key_file", "has too little entropy"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := writeFile(t, dir, "secret", tt.value+"\n")
			sk := writeFile(t, dir, "sk", strongSecret)
			y := fmt.Sprintf("superset: {secret_key_file: %s, %s: %s}\n", sk, tt.key, f)
			if tt.key == "secret_key_file" {
				y = fmt.Sprintf("superset: {secret_key_file: %s}\n", f)
			}
			p := writeFile(t, dir, "gw.yaml", y)
			code, _, errOut := runCmd(t, context.Background(), nil, "check-config", "--config", p)
			want := "superset-gateway: config: superset." + tt.key + ": " + tt.why
			if code != exitUsage || !strings.HasPrefix(errOut, want) {
				t.Fatalf("exit %d stderr %q, want 2 and %q", code, errOut, want)
			}
			if strings.Contains(errOut, tt.value) {
				t.Fatal("the refused secret was printed")
			}
			code, out, errOut := runCmd(t, context.Background(), []string{"SG_SUPERSET_ALLOW_WEAK_SECRETS=true"}, "check-config", "--config", p)
			if code != exitOK || out != "OK\n" {
				t.Fatalf("with the opt-out: exit %d stdout %q stderr %q", code, out, errOut)
			}
		})
	}
	// An empty secret is refused even with the opt-out.
	empty := writeFile(t, dir, "empty", "\n")
	p := writeFile(t, dir, "gw.yaml", "superset: {secret_key_file: "+empty+", allow_weak_secrets: true}\n")
	code, _, errOut := runCmd(t, context.Background(), nil, "check-config", "--config", p)
	if code != exitUsage || !strings.HasPrefix(errOut, "superset-gateway: config: superset.secret_key_file: is empty") {
		t.Fatalf("exit %d stderr %q", code, errOut)
	}
}

func cookieKeyLine(hash, block []byte) string {
	return base64.StdEncoding.EncodeToString(hash) + " " + base64.StdEncoding.EncodeToString(block) + "\n"
}

func TestCookieKeysFileChecks(t *testing.T) {
	dir := t.TempDir()
	good := cookieKeyLine([]byte(strongSecret+"Xq9"+strings.ToLower(strongSecret)), []byte(strongSecret[:32]))
	tests := []struct {
		name, content, want string
	}{
		{"good, two generations", "# comment\n" + good + good, ""},
		{"short hash key", cookieKeyLine([]byte("short-hash-key"), []byte(strongSecret[:32])), "hash key: is shorter than 32 bytes"},
		{"placeholder hash key", cookieKeyLine([]byte("CHANGE_ME_TO_A_COMPLEX_RANDOM_SECRET"), []byte(strongSecret[:32])), "hash key: is a published default or placeholder value"},
		{"zero encryption key", cookieKeyLine([]byte(strongSecret), make([]byte, 32)), "encryption key: has too little entropy"},
		{"short encryption key", cookieKeyLine([]byte(strongSecret), []byte("0123456789abcdef")), "the encryption key must be 32 bytes, got 16"},
		{"one field", "abc\n", `want "<hash key> <encryption key>" in base64`},
		{"not base64", "!!! ???\n", "keys must be standard base64"},
		{"empty", "# nothing\n", "session.cookie_keys_file: holds no keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := writeFile(t, dir, "keys", tt.content)
			p := writeFile(t, dir, "gw.yaml", supersetYAML(t)+"session: {cookie_keys_file: "+keys+"}\n")
			code, _, errOut := runCmd(t, context.Background(), nil, "check-config", "--config", p)
			if tt.want == "" {
				if code != exitOK {
					t.Fatalf("exit %d: %s", code, errOut)
				}
				return
			}
			if code != exitUsage || !strings.Contains(errOut, tt.want) || !strings.Contains(errOut, "session.cookie_keys_file") {
				t.Fatalf("exit %d stderr %q, want 2 and %q", code, errOut, tt.want)
			}
		})
	}
}

func TestAdminTokensChecks(t *testing.T) {
	dir := t.TempDir()
	h := func(s string) string { x := sha256.Sum256([]byte(s)); return hex.EncodeToString(x[:]) }
	tests := []struct {
		name, content, want string
	}{
		{"good", "ci " + h(strongSecret) + "\nops " + h(strongSecret+"x") + "\n", ""},
		{"hash of admin", "ci " + h("admin") + "\n", "admin.tokens_file line 1: is the hash of a well-known weak token"},
		{"hash of empty", "ci " + h("") + "\n", "is the hash of a well-known weak token"},
		{"made-up hash", "ci " + strings.Repeat("0", 64) + "\n", "has too little entropy"},
		{"not hex", "ci xyz\n", "the hash must be 64 hex digits"},
		{"name twice", "ci " + h(strongSecret) + "\nci " + h(strongSecret+"y") + "\n", "admin.tokens_file line 2: the name of line 1 is given again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := writeFile(t, dir, "tokens", tt.content)
			p := writeFile(t, dir, "gw.yaml", supersetYAML(t)+"admin: {tokens_file: "+f+"}\n")
			code, _, errOut := runCmd(t, context.Background(), nil, "check-config", "--config", p)
			if tt.want == "" {
				if code != exitOK {
					t.Fatalf("exit %d: %s", code, errOut)
				}
				return
			}
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d stderr %q, want 2 and %q", code, errOut, tt.want)
			}
		})
	}
}

func TestRedisUnreachableIsAnErrorWithoutFallback(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	p := writeFile(t, dir, "gw.yaml", supersetYAML(t)+fmt.Sprintf("listen: %s\nmetrics: {listen: \"\"}\nstore: {redis_url: \"redis://:pw@%s/0\", data_dir: %s}\n",
		freePort(t), port, filepath.Join(dir, "data")))
	code, _, errOut := runCmd(t, context.Background(), nil, "serve", "--config", p)
	if code != exitFailure {
		t.Fatalf("exit %d, want 1: %s", code, errOut)
	}
	if !strings.Contains(errOut, "store.redis_url") || !strings.Contains(errOut, "does not fall back") {
		t.Fatalf("stderr %q", errOut)
	}
	if strings.Contains(errOut, ":pw@") {
		t.Fatal("the Redis password was printed")
	}
	// go-redis's own complaints arrive as JSON records of the gateway's
	// log, not as plain text beside it.
	if !strings.Contains(errOut, `"logger":"redis","msg":"connection pool: failed to dial`) {
		t.Errorf("go-redis's dial failures are not in the gateway's log: %s", errOut)
	}
	for l := range strings.SplitSeq(strings.TrimSpace(errOut), "\n") {
		if !json.Valid([]byte(l)) && !strings.HasPrefix(l, "superset-gateway: ") {
			t.Errorf("a stderr line is neither a JSON record nor the final error: %q", l)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data", gateway.BoltFileName)); err == nil {
		t.Fatal("an embedded store was created as a fallback")
	}
	// A malformed URL is a config error.
	p = writeFile(t, dir, "gw.yaml", "store: {redis_url: \"redis://h:notaport\", data_dir: "+filepath.Join(dir, "data2")+"}\n")
	code, _, errOut = runCmd(t, context.Background(), nil, "serve", "--config", p)
	if code != exitUsage || !strings.HasPrefix(errOut, "superset-gateway: config: store.redis_url") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("exit %d stderr %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "data2")); err == nil {
		t.Fatal("a bad config still created data_dir")
	}
}

// freePort returns a loopback address nothing listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestCheckConfigDryRunsTLS(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "cert.pem", "not a certificate")
	p := writeFile(t, dir, "gw.yaml", supersetYAML(t)+"public_url: https://gw.example\ntls: {cert_file: "+bad+", key_file: "+bad+"}\n")
	code, _, errOut := runCmd(t, context.Background(), nil, "check-config", "--config", p)
	if code != exitUsage || !strings.HasPrefix(errOut, "superset-gateway: config: tls.cert_file, tls.key_file: tls: failed to find any PEM data") {
		t.Fatalf("exit %d stderr %q", code, errOut)
	}
	certFile, keyFile, _ := selfSigned(t, dir)
	p = writeFile(t, dir, "gw.yaml", supersetYAML(t)+"public_url: https://gw.example\ntls: {cert_file: "+certFile+", key_file: "+keyFile+"}\n")
	if code, out, errOut := runCmd(t, context.Background(), nil, "check-config", "--config", p); code != exitOK || out != "OK\n" {
		t.Fatalf("exit %d %q %q", code, out, errOut)
	}
}

// supersetYAML is the superset section every runnable config needs: a
// strong SECRET_KEY in a file.
func supersetYAML(t *testing.T) string {
	t.Helper()
	sk := writeFile(t, t.TempDir(), "superset-secret", fmt.Sprintf("%x", sha256.Sum256([]byte(t.Name()))))
	return "superset: {secret_key_file: \"" + sk + "\"}\n"
}

func TestSupersetSecretKeyIsRequired(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "gw.yaml", "listen: 127.0.0.1:0\n")
	for _, cmd := range []string{"check-config", "serve"} {
		code, _, errOut := runCmd(t, context.Background(), nil, cmd, "--config", p)
		if code != exitUsage || !strings.HasPrefix(errOut, "superset-gateway: config: superset.secret_key_file: required") {
			t.Fatalf("%s: exit %d stderr %q, want 2 naming superset.secret_key_file", cmd, code, errOut)
		}
	}
}

// inspectFaultEnv makes the test binary's `store inspect` die by a signal.
const inspectFaultEnv = "SGW_TEST_INSPECT_FAULT"

// TestMain lets the test binary stand in for the program where the command
// runs itself in a child process (store inspect, for files a fault in the
// store reader may crash): os.Executable is this binary then.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "store" && os.Args[2] == "inspect" {
		if os.Getenv(inspectFaultEnv) == "1" {
			// Dies as a reader faulting on a corrupt page does.
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
		os.Exit(run(context.Background(), os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
