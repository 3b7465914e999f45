package harness

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// GatewayOptions shapes one superset-gateway process in front of a
// Superset started by this package.
type GatewayOptions struct {
	// Binary is the superset-gateway executable. Required.
	Binary string
	// Superset provides the secrets files and audience.
	Superset *Superset
	// Upstreams are the Superset node URLs to proxy to. Required.
	Upstreams []string
	// DataDir holds the embedded store and cookie keys. Required.
	DataDir string
	// Listen is host:port; empty means a free loopback port.
	Listen string
	// Output receives the gateway's stdout and stderr (logs, audit); nil
	// means a log file in DataDir.
	Output io.Writer
	// RedisURL selects the Redis store; empty means the embedded store.
	RedisURL string
	// CookieKeysFile is shared by replicas so that a cookie issued by one
	// opens on the others; empty means keys generated into DataDir.
	CookieKeysFile string
	// TLSCertFile and TLSKeyFile, when set, make the gateway serve TLS
	// with an https public_url (Secure, __Host- cookie). waitHealthy does
	// not verify the certificate: it is the test's own, on loopback.
	TLSCertFile, TLSKeyFile string
	// AuditOutput is audit.output: a file path, or "" for stdout.
	AuditOutput string
	// RateLimits keeps the gateway's rate limits on (their defaults plus
	// a rate_limits line in Extra). Off otherwise: the suite signs in and
	// calls from 127.0.0.1 far more often than any one user would; the
	// rate-limit tests (e2e/ratelimit_test.go) turn them on.
	RateLimits bool
	// Extra lines are appended to the YAML config verbatim (top-level keys
	// not written above, e.g. "session: {cache_ttl: 500ms}").
	Extra []string
	// SupersetExtra are keys added to the superset: section, e.g.
	// "refuse_mismatched_upstream_secret: true".
	SupersetExtra []string
}

// Gateway is a running superset-gateway process.
type Gateway struct {
	URL        string // http://<listen>
	MetricsURL string // http://<metrics listen>/metrics
	ConfigPath string
	LogPath    string // "" when Output was given
	cmd        *exec.Cmd
	done       chan struct{}
	waitErr    error
}

// StartGateway writes a config (DESIGN §6 keys) into DataDir, starts
// `superset-gateway serve --config FILE` in its own process group and waits
// until /-/healthz answers 200.
func StartGateway(ctx context.Context, o GatewayOptions) (*Gateway, error) {
	if o.Binary == "" || o.Superset == nil || len(o.Upstreams) == 0 || o.DataDir == "" {
		return nil, fmt.Errorf("harness: GatewayOptions: Binary, Superset, Upstreams and DataDir are required")
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	listen := o.Listen
	if listen == "" {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	mport, err := freePort()
	if err != nil {
		return nil, err
	}
	scheme := "http"
	if o.TLSCertFile != "" {
		scheme = "https"
	}
	g := &Gateway{URL: scheme + "://" + listen, ConfigPath: filepath.Join(o.DataDir, "gateway.yaml"), done: make(chan struct{}),
		MetricsURL: "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(mport)) + "/metrics"}
	cfg := gatewayConfig(o, listen, net.JoinHostPort("127.0.0.1", strconv.Itoa(mport)))
	if err := os.WriteFile(g.ConfigPath, cfg, 0o600); err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	out := o.Output
	if out == nil {
		g.LogPath = filepath.Join(o.DataDir, "gateway.log")
		f, err := os.OpenFile(g.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("harness: %w", err)
		}
		defer f.Close()
		out = f
	}
	g.cmd = exec.Command(o.Binary, "serve", "--config", g.ConfigPath)
	g.cmd.Stdout, g.cmd.Stderr = out, out
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := g.cmd.Start(); err != nil {
		return nil, fmt.Errorf("harness: start gateway: %w", err)
	}
	go func() {
		g.waitErr = g.cmd.Wait()
		close(g.done)
	}()
	if err := g.waitHealthy(ctx); err != nil {
		g.Stop()
		return nil, fmt.Errorf("%w\n%s", err, g.LogTail())
	}
	return g, nil
}

// gatewayConfig is the YAML config (DESIGN §6 keys) for o.
func gatewayConfig(o GatewayOptions, listen, metricsListen string) []byte {
	q := strconv.Quote // a Go-quoted ASCII string is a valid YAML double-quoted scalar
	publicURL, tlsYAML := "http://"+listen, ""
	if o.TLSCertFile != "" {
		publicURL = "https://" + listen
		tlsYAML = "tls: {cert_file: " + q(o.TLSCertFile) + ", key_file: " + q(o.TLSKeyFile) + "}\n"
	}
	auditOut := "stdout"
	if o.AuditOutput != "" {
		auditOut = o.AuditOutput
	}
	var ups []string
	for _, u := range o.Upstreams {
		ups = append(ups, q(u))
	}
	return []byte(strings.Join([]string{
		"# Written by e2e/harness for a test or the demo.",
		"listen: " + q(listen),
		"public_url: " + q(publicURL),
		"upstreams: [" + strings.Join(ups, ", ") + "]",
		"health_check: {path: /health, interval: 2s}",
		"superset:",
		"  secret_key_file: " + q(o.Superset.SecretKeyFile()),
		"  guest_token_secret_file: " + q(o.Superset.GuestTokenSecretFile()),
		"  guest_token_audience: " + q(o.Superset.GuestTokenAudience()),
		"  service_user_id: " + strconv.Itoa(o.Superset.AdminID()),
	}, "\n") + "\n" + supersetExtra(o) + strings.Join([]string{
		"store:",
		"  data_dir: " + q(o.DataDir),
		"  redis_url: " + q(o.RedisURL),
		"metrics:",
		"  listen: " + q(metricsListen),
		"audit:",
		"  output: " + q(auditOut),
	}, "\n") + "\n" + tlsYAML + sessionYAML(o) + rateLimitsYAML(o) + strings.Join(o.Extra, "\n") + "\n")
}

// supersetExtra indents GatewayOptions.SupersetExtra into the superset:
// section.
func supersetExtra(o GatewayOptions) string {
	var b strings.Builder
	for _, l := range o.SupersetExtra {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

func (g *Gateway) waitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		// The test's own certificate on loopback (TLSCertFile).
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	defer client.CloseIdleConnections()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.URL+"/-/healthz", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-g.done:
			return fmt.Errorf("harness: gateway exited: %v", g.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("harness: gateway %s/-/healthz: %w", g.URL, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM (the gateway drains and exits), then SIGKILL after
// ten seconds, and waits.
func (g *Gateway) Stop() {
	select {
	case <-g.done:
		return
	default:
	}
	pgid := g.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-g.done
	}
}

// Done is closed when the gateway process has exited.
func (g *Gateway) Done() <-chan struct{} { return g.done }

// LogTail returns the end of the gateway's log file ("" with Output).
func (g *Gateway) LogTail() string {
	if g.LogPath == "" {
		return ""
	}
	b, err := os.ReadFile(g.LogPath)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("--- %s (last 8 KiB) ---\n%s", g.LogPath, tail(b, 8<<10))
}

func sessionYAML(o GatewayOptions) string {
	if o.CookieKeysFile == "" {
		return ""
	}
	return "session:\n  cookie_keys_file: " + strconv.Quote(o.CookieKeysFile) + "\n"
}

// rateLimitsYAML turns the rate limits off unless o.RateLimits.
func rateLimitsYAML(o GatewayOptions) string {
	if o.RateLimits {
		return ""
	}
	return "rate_limits: {enabled: false}\n"
}
