// Command sgw-demo is `make demo`: it starts a local Superset 6.1.0 from the
// cached virtual environment (make superset-env installs it), bootstraps the
// demo users and an embedded dashboard, starts superset-gateway in front of
// it on the embedded store, prints the URL and the users, and on Ctrl-C
// stops everything it started.
//
// The Superset home is kept under the cache directory, so a second demo
// skips the bootstrap and keeps its users, passwords and data.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/superset-gateway/superset-gateway/e2e/harness"
)

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
	listen := flag.String("listen", "127.0.0.1:8080", "gateway listen address")
	flag.Parse()
	if *home == "" {
		*home = filepath.Join(filepath.Dir(filepath.Clean(*venv)), "demo", "superset")
	}
	if _, err := os.Stat(*gateway); err != nil {
		return fmt.Errorf("gateway binary: %w (run make build)", err)
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
	g, err := harness.StartGateway(ctx, harness.GatewayOptions{
		Binary:    *gateway,
		Superset:  s,
		Upstreams: []string{c.Nodes[0].URL},
		DataDir:   gwDir,
		Listen:    *listen,
	})
	if err != nil {
		return err
	}
	defer func() {
		step("stopping superset-gateway")
		g.Stop()
	}()

	tg := c.Target
	fmt.Printf(`
Superset %s behind superset-gateway is ready (%ds).

  Open:      %s/login/
  Users:     %-6s / %s   (Admin)
             %-6s / %s   (Alpha, SQL Lab)
             %-6s / %s   (Gamma)
  Tokens:    %s/-/tokens   (scoped access tokens, any signed-in user)
  Admin:     %s/-/admin/   (every token, revoke a user; Admin role)
  Sessions:  %s/-/sessions
  Embedded:  %s/embedded/%s  (needs a guest token)
  Superset:  %s  (direct, bypassing the gateway)
  Logs:      %s
             %s/logs/
Press Ctrl-C to stop.
`, harness.Version, int(time.Since(t0).Seconds()), g.URL,
		tg.Admin.Username, tg.Admin.Password, tg.Alpha.Username, tg.Alpha.Password,
		tg.Gamma.Username, tg.Gamma.Password, g.URL, g.URL, g.URL, g.URL, tg.EmbedUUID, tg.BaseURL, g.LogPath, s.Home())

	select {
	case <-ctx.Done():
		fmt.Println()
		return nil
	case <-g.Done():
		return fmt.Errorf("superset-gateway exited; see %s", g.LogPath)
	}
}
