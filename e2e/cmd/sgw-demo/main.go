// Command sgw-demo is `make demo`: it starts a local Superset 6.1.0 from the
// cached virtual environment (make superset-env installs it), bootstraps the
// demo users and an embedded dashboard, starts superset-gateway in front of
// it on the embedded store, serves a small embedding app (a host page that
// embeds the dashboard with Superset's embedded SDK, fetching guest tokens
// through the gateway), prints the URLs and the users, and on Ctrl-C stops
// everything it started and exits 0.
//
// The listen address comes from -listen (make: DEMO_LISTEN); a port already
// taken is reported in one line before anything else, and -check-listen
// does only that check.
//
// The Superset home is kept under the cache directory, so a second demo
// skips the bootstrap and keeps its users, passwords and data.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/superset-gateway/superset-gateway/e2e/embedded"
	"github.com/superset-gateway/superset-gateway/e2e/harness"
)

// DefaultListen is the gateway's address unless -listen or DEMO_LISTEN says.
const DefaultListen = "127.0.0.1:8080"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sgw-demo:", err)
		os.Exit(1)
	}
}

func defaultVenv() string {
	if v := os.Getenv("SUPERSET_VENV"); v != "" {
		return v
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = filepath.Join(os.TempDir(), "cache")
	}
	return filepath.Join(cache, "superset-gateway", "superset-"+harness.Version, "venv")
}

func run() error {
	gateway := flag.String("gateway", "bin/superset-gateway", "superset-gateway binary (make build)")
	venv := flag.String("venv", defaultVenv(), "Superset virtual environment (make superset-env; env SUPERSET_VENV)")
	home := flag.String("home", "", "demo Superset home, kept between runs (default: next to the venv)")
	listen := flag.String("listen", defaultListen(), "gateway listen address (env DEMO_LISTEN)")
	checkOnly := flag.Bool("check-listen", false, "only check that the listen address is free")
	sdk := flag.String("sdk", embedded.SDKBundle, "Superset's embedded SDK bundle (make embedded-sdk)")
	flag.Parse()
	// Before anything long: a taken port is one line and exit 1.
	if err := CheckListen(*listen); err != nil {
		return err
	}
	if *checkOnly {
		return nil
	}
	if *home == "" {
		*home = filepath.Join(filepath.Dir(filepath.Clean(*venv)), "demo", "superset")
	}
	if _, err := os.Stat(*gateway); err != nil {
		return fmt.Errorf("gateway binary: %w (run make build)", err)
	}
	sdkJS, err := embedded.ReadSDK(*sdk)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	t0 := time.Now()
	step := func(format string, args ...any) {
		fmt.Printf("== demo [%ds] %s\n", int(time.Since(t0).Seconds()), fmt.Sprintf(format, args...))
	}
	step("bootstrapping Superset %s in %s", harness.Version, *home)
	s, err := harness.Bootstrap(ctx, harness.Options{Venv: *venv, Home: *home, Log: os.Stdout})
	if err != nil {
		if errors.Is(err, harness.ErrNoVenv) {
			return fmt.Errorf("%w (make demo runs make superset-env first)", err)
		}
		return err
	}
	step("starting Superset (gunicorn)")
	c, err := s.Start(ctx, 1)
	if err != nil {
		return err
	}
	defer func() {
		step("stopping Superset")
		c.Stop()
	}()
	step("starting superset-gateway %s", *gateway)
	gwDir := filepath.Join(filepath.Dir(*home), "gateway")
	// The embedding app listens first: the gateway's frame_ancestors
	// names its origin.
	hostLn, hostURL, err := listenHost(*listen)
	if err != nil {
		return err
	}
	defer hostLn.Close()
	pepper, err := EnsurePepper(gwDir)
	if err != nil {
		return err
	}
	g, err := harness.StartGateway(ctx, harness.GatewayOptions{
		Binary:    *gateway,
		Superset:  s,
		Upstreams: []string{c.Nodes[0].URL},
		DataDir:   gwDir,
		Listen:    *listen,
		Extra:     DemoConfig(pepper, hostURL),
	})
	if err != nil {
		return err
	}
	defer func() {
		step("stopping superset-gateway")
		g.Stop()
	}()

	tg := c.Target
	host, err := embedded.NewHost(embedded.HostOptions{
		SDK: sdkJS, Gateway: g.URL, EmbedUUID: tg.EmbedUUID,
		Mint: embedded.GatewayMinter(g.URL, tg.Admin.Username, tg.Admin.Password, tg.EmbedUUID),
	})
	if err != nil {
		return err
	}
	hostSrv := &http.Server{Handler: host, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hostSrv.Serve(hostLn) }()
	defer hostSrv.Close()

	fmt.Printf(`
Superset %s behind superset-gateway is ready (%ds).

  Open:      %s/login/
  Users:     %-6s / %s   (Admin)
             %-6s / %s   (Alpha, SQL Lab)
             %-6s / %s   (Gamma)
  Tokens:    %s/-/tokens   (scoped access tokens, any signed-in user)
  Admin:     %s/-/admin/   (every token, revoke a user; Admin role)
  Sessions:  %s/-/sessions
             (all three are in Superset's Settings menu once signed in)
  Embedded:  %s   (an embedding app: the dashboard through the gateway,
             guest tokens fetched through the gateway; revoke them on the
             admin page and watch the embed stop)
  Superset:  %s  (direct, bypassing the gateway)
  Logs:      %s
             %s/logs/
Press Ctrl-C to stop.
`, harness.Version, int(time.Since(t0).Seconds()), g.URL,
		tg.Admin.Username, tg.Admin.Password, tg.Alpha.Username, tg.Alpha.Password,
		tg.Gamma.Username, tg.Gamma.Password, g.URL, g.URL, g.URL, hostURL, tg.BaseURL, g.LogPath, s.Home())

	select {
	case <-ctx.Done():
		fmt.Println()
		return nil
	case <-g.Done():
		return fmt.Errorf("superset-gateway exited; see %s", g.LogPath)
	}
}

func defaultListen() string {
	if v := os.Getenv("DEMO_LISTEN"); v != "" {
		return v
	}
	return DefaultListen
}

// CheckListen fails, in one line that says what to do, when addr cannot
// be listened on (taken, or not an address of this machine).
func CheckListen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("%s is already in use (another demo or gateway?): stop it, or pick another address: make demo DEMO_LISTEN=127.0.0.1:8090", addr)
		}
		return fmt.Errorf("cannot listen on %s (DEMO_LISTEN): %w", addr, err)
	}
	return ln.Close()
}

// listenHost opens the embedding app's listener on a free port of the
// gateway's host, and names it by the other loopback name (localhost for
// 127.0.0.1 and the reverse) so that it is another site, as an embedding
// app is.
func listenHost(gatewayListen string) (net.Listener, string, error) {
	h, _, err := net.SplitHostPort(gatewayListen)
	if err != nil {
		return nil, "", fmt.Errorf("listen address %q: %w", gatewayListen, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("embedding app: %w", err)
	}
	name := "localhost"
	if h == "localhost" {
		name = "127.0.0.1"
	}
	return ln, "http://" + net.JoinHostPort(name, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)), nil
}

// PepperFileName, in the gateway's data directory, holds the demo's
// access-token pepper: made once, kept, since a new pepper invalidates
// every token.
const PepperFileName = "access-token-pepper"

// EnsurePepper returns the path of dir's pepper file, creating it (48
// random bytes, base64, 0600) if absent.
func EnsurePepper(dir string) (string, error) {
	path := filepath.Join(dir, PepperFileName)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("pepper: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("pepper: %w", err)
	}
	var b [48]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("pepper: %w", err)
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(b[:])+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("pepper: %w", err)
	}
	return path, nil
}

// DemoConfig is what the demo adds to the harness's gateway config: its
// own access-token pepper (no derived-pepper warning) and the embedding
// app's origin among the frame ancestors of /embedded/.
func DemoConfig(pepperFile, hostOrigin string) []string {
	return []string{
		"access_tokens: {pepper_file: " + strconv.Quote(pepperFile) + "}",
		"headers: {frame_ancestors: " + strconv.Quote("'self' "+hostOrigin) + "}",
	}
}
