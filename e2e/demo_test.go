//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/e2e/browser"
	"github.com/superset-gateway/superset-gateway/e2e/harness"
)

// TestDemo (issue 19) runs `make demo`'s program as make does, against its
// own Superset home: a taken port is one line and exit 1 before anything
// else; the demo's gateway config passes check-config and the gateway
// starts without a warning (its own pepper_file); the embedding app serves
// its host page and gets guest tokens through the gateway, which the
// gateway accepts and, once revoked, refuses; Chromium embeds the
// dashboard from it; SIGINT (Ctrl-C) stops everything with exit 0.
func TestDemo(t *testing.T) {
	venv := os.Getenv("SUPERSET_VENV")
	dir := t.TempDir()
	demo := filepath.Join(dir, "sgw-demo")
	build := exec.Command("go", "build", "-o", demo, "./e2e/cmd/sgw-demo")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./e2e/cmd/sgw-demo: %v\n%s", err, out)
	}
	gw := buildGateway(t)
	sdk, err := filepath.Abs(sdkBundle)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("PortTaken", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		for _, args := range [][]string{
			{"-check-listen", "-listen", ln.Addr().String()},
			// The whole demo: the port is checked before any bootstrap log.
			{"-gateway", gw, "-venv", venv, "-home", filepath.Join(dir, "unused"), "-sdk", sdk, "-listen", ln.Addr().String()},
		} {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(demo, args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			t0 := time.Now()
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("%v: %v, want exit 1", args, err)
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if stdout.Len() != 0 || len(lines) != 1 || !strings.Contains(lines[0], ln.Addr().String()+" is already in use") ||
				!strings.Contains(lines[0], "DEMO_LISTEN") {
				t.Errorf("%v: want one line naming the address and DEMO_LISTEN; stdout %q stderr %q", args, stdout.String(), stderr.String())
			}
			if d := time.Since(t0); d > 5*time.Second {
				t.Errorf("%v: the taken port was reported after %s", args, d)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "unused")); err == nil {
			t.Error("the demo bootstrapped a Superset home although its port was taken")
		}
	})

	// The demo proper, on a free port.
	p, err := freePortT()
	if err != nil {
		t.Fatal(err)
	}
	listen := "127.0.0.1:" + p
	home := filepath.Join(dir, "demo", "superset")
	cmd := exec.Command(demo, "-gateway", gw, "-venv", venv, "-home", home, "-sdk", sdk)
	cmd.Env = append(os.Environ(), "DEMO_LISTEN="+listen)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &lockedBuffer{}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = io.MultiWriter(out, pw), out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); pw.Close() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-exited:
			case <-time.After(60 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
		}
		if t.Failed() {
			t.Logf("demo output:\n%s", out.String())
		}
	})

	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "Press Ctrl-C to stop.") {
				close(ready)
				break
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case <-ready:
	case err := <-exited:
		t.Fatalf("the demo exited before it was ready: %v", err)
	case <-time.After(10 * time.Minute):
		t.Fatal("the demo was not ready within 10 minutes")
	}
	banner := out.String()
	base := "http://" + listen
	if !strings.Contains(banner, "Open:      "+base+"/login/") {
		t.Fatalf("the banner does not open DEMO_LISTEN's address %s", base)
	}
	hostURL := regexp.MustCompile(`Embedded:  (http://\S+)`).FindStringSubmatch(banner)
	admin := regexp.MustCompile(`Users:     (\S+)\s*/ (\S+)`).FindStringSubmatch(banner)
	if hostURL == nil || admin == nil {
		t.Fatalf("banner lacks the embedding app or the admin user:\n%s", banner)
	}

	gwDir := filepath.Join(dir, "demo", "gateway")
	t.Run("ConfigWithoutWarnings", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		check := exec.Command(gw, "check-config", "--config", filepath.Join(gwDir, "gateway.yaml"))
		check.Stdout, check.Stderr = &stdout, &stderr
		if err := check.Run(); err != nil || stdout.String() != "OK\n" || stderr.Len() != 0 {
			t.Errorf("check-config: %v, stdout %q, stderr %q", err, stdout.String(), stderr.String())
		}
		cfg, _ := os.ReadFile(filepath.Join(gwDir, "gateway.yaml"))
		if !strings.Contains(string(cfg), "pepper_file:") {
			t.Errorf("the demo config sets no access_tokens.pepper_file:\n%s", cfg)
		}
		log, _ := os.ReadFile(filepath.Join(gwDir, "gateway.log"))
		for _, l := range strings.Split(string(log), "\n") {
			if strings.Contains(l, `"level":"warn"`) || strings.Contains(l, "store_wiped") {
				t.Errorf("the demo's gateway warns: %s", l)
			}
		}
	})

	t.Run("EmbeddingApp", func(t *testing.T) {
		page := httpGet(t, hostURL[1]+"/")
		if !strings.Contains(page, "supersetEmbeddedSdk.embedDashboard") || !strings.Contains(page, base) {
			t.Fatalf("host page: %.300q", page)
		}
		if js := httpGet(t, hostURL[1]+"/sdk.js"); !strings.Contains(js, "embedDashboard") {
			t.Fatalf("/sdk.js is not the SDK: %.200q", js)
		}
		var tok struct{ Token string }
		if err := json.Unmarshal([]byte(httpGet(t, hostURL[1]+"/guest-token")), &tok); err != nil || tok.Token == "" {
			t.Fatalf("/guest-token: %v %q", err, tok.Token)
		}
		claims := jwtClaims(t, tok.Token)
		a, err := harness.NewAPI(context.Background(), base, admin[1], admin[2])
		if err != nil {
			t.Fatal(err)
		}
		var emb struct {
			Result struct {
				DashboardID json.RawMessage `json:"dashboard_id"`
				UUID        string          `json:"uuid"`
			}
		}
		uuid := strings.TrimPrefix(regexp.MustCompile(`id: "([0-9a-f-]+)"`).FindString(page), `id: "`)
		uuid = strings.TrimSuffix(uuid, `"`)
		if err := a.Do(context.Background(), http.MethodGet, "/api/v1/embedded_dashboard/"+uuid, nil, &emb); err != nil {
			t.Fatalf("embedded dashboard %q: %v", uuid, err)
		}
		if !strings.Contains(string(claims), uuid) {
			t.Errorf("the guest token is not for the demo's dashboard %s: %s", uuid, claims)
		}
		// The gateway checks and passes the token; Superset answers.
		if r := guestGet(t, base, tok.Token, "/api/v1/dashboard/"+strings.Trim(string(emb.Result.DashboardID), `"`)); r.code != http.StatusOK {
			t.Fatalf("guest token from the embedding app, through the gateway: %d %.200s", r.code, r.body)
		}

		// Chromium: the host page embeds the dashboard with a token it got.
		b := browser.ForTest(t, browser.Options{})
		if err := b.Navigate(hostURL[1] + "/"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for hostEval[int](t, b, "window.guestTokens") < 1 {
			if time.Now().After(deadline) {
				t.Fatalf("the host page got no guest token (errors: %v)", hostEval[[]string](t, b, "window.embedErrors"))
			}
			time.Sleep(250 * time.Millisecond)
		}
		if n := hostEval[int](t, b, `document.querySelectorAll("#mount iframe").length`); n != 1 {
			t.Errorf("the host page mounted %d iframes, want 1", n)
		}

		// What the newcomer tries: revoke the dashboard's guest tokens as
		// the admin (the admin API with the admin's own Superset sign-in),
		// and the token the embed holds is refused; a new one works.
		var rev map[string]any
		if err := a.Do(context.Background(), http.MethodPost, "/-/admin/api/v1/dashboards/"+uuid+"/guest-tokens/revoke", map[string]any{}, &rev); err != nil {
			t.Fatalf("revoke the demo dashboard's guest tokens as admin: %v", err)
		}
		if r := guestGet(t, base, tok.Token, "/api/v1/dashboard/"+strings.Trim(string(emb.Result.DashboardID), `"`)); r.code != http.StatusUnauthorized {
			t.Errorf("revoked guest token: %d, want 401", r.code)
		}
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(1100 * time.Millisecond)))
		if err := json.Unmarshal([]byte(httpGet(t, hostURL[1]+"/guest-token")), &tok); err != nil {
			t.Fatal(err)
		}
		if r := guestGet(t, base, tok.Token, "/api/v1/dashboard/"+strings.Trim(string(emb.Result.DashboardID), `"`)); r.code != http.StatusOK {
			t.Errorf("a guest token fetched after the revocation: %d %.200s", r.code, r.body)
		}
	})

	// Ctrl-C: everything stops and the demo exits 0 (make reports no error).
	stopped = true
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("after SIGINT the demo exited with %v, want 0", err)
		}
	case <-time.After(60 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatal("the demo did not stop within 60s of SIGINT")
	}
	if _, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
		t.Error("the gateway still listens after the demo stopped")
	}
}

// freePortT is a free loopback port, as a string.
func freePortT() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, p, err := net.SplitHostPort(ln.Addr().String())
	return p, err
}

// httpGet returns the body of a 200 answer to GET url.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 90 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %.300s", url, resp.StatusCode, b)
	}
	return string(b)
}

// jwtClaims returns a JWT's payload, unverified (the gateway verifies).
func jwtClaims(t *testing.T, tok string) []byte {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.40q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lockedBuffer is a bytes.Buffer safe for a writer and readers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
