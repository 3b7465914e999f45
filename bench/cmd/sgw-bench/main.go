// Command sgw-bench measures, in one run on loopback, the gateway against
// the stub upstream reached directly, a bare httputil.ReverseProxy and nginx,
// with wrk. For each target, path and connection count it reports rps,
// p50/p99 latency, CPU microseconds per request and peak RSS of the proxy
// process, the stub's new connections (connection reuse), and ratios to the
// bare proxy and to nginx. Rounds are interleaved across targets so that
// noise from other work on the machine spreads over all of them; the table
// shows medians over rounds.
//
//	go run ./bench/cmd/sgw-bench -gateway bin/superset-gateway
//	go run ./bench/cmd/sgw-bench -targets bare,nginx -paths json -conns 128 -rounds 1
//
// "sgw-bench bareproxy -listen ADDR -upstream URL" runs the bare proxy; the
// harness starts itself that way so the proxy's CPU is its own process's.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/superset-gateway/superset-gateway/bench/bareproxy"
	"github.com/superset-gateway/superset-gateway/bench/stub"
)

func main() {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "bareproxy" {
		err = runBareProxy(ctx, os.Args[2:])
	} else {
		err = run(ctx, os.Args[1:], os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sgw-bench:", err)
		os.Exit(1)
	}
}

func runBareProxy(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bareproxy", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	upstream := fs.String("upstream", "", "upstream base URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*upstream)
	if err != nil || u.Host == "" {
		return fmt.Errorf("bareproxy: -upstream %q: not a URL", *upstream)
	}
	srv := &http.Server{Addr: *listen, Handler: bareproxy.New(u)}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type config struct {
	gateway      string
	wrk          string
	nginx        string
	nginxWorkers string
	targets      []string
	paths        []string
	conns        []int
	threads      int
	duration     time.Duration
	warmup       time.Duration
	rounds       int
	out          string
}

var pathsByName = map[string]string{"json": stub.JSONPath, "static": stub.StaticPath}

func parseFlags(args []string) (config, error) {
	var c config
	var targets, paths, conns string
	fs := flag.NewFlagSet("sgw-bench", flag.ContinueOnError)
	fs.StringVar(&c.gateway, "gateway", "bin/superset-gateway", "gateway binary")
	fs.StringVar(&c.wrk, "wrk", "/usr/bin/wrk", "wrk binary")
	fs.StringVar(&c.nginx, "nginx", "/usr/sbin/nginx", "nginx binary")
	fs.StringVar(&c.nginxWorkers, "nginx-workers", "auto", "nginx worker_processes (auto = one per core, as Go uses every core)")
	fs.StringVar(&targets, "targets", "direct,bare,nginx,gateway,gateway-session,gateway-limits,gateway-jwt,gateway-guest,gateway-token",
		"comma-separated targets (gateway-session: signed in, session cache hit; gateway-limits: signed in with rate limits on; gateway-jwt: Superset API JWT; gateway-guest: guest token; gateway-token: scoped access token; gateway-traced, not run by default: tracing on, every request exported)")
	fs.StringVar(&paths, "paths", "json,static", "comma-separated paths: json (~2 KB), static (20 KB)")
	fs.StringVar(&conns, "conns", "16,128", "comma-separated wrk connection counts")
	fs.IntVar(&c.threads, "threads", 2, "wrk threads")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "measured wrk run per cell (whole seconds)")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured wrk run before each cell; 0 for none")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds over all cells; the table shows medians")
	fs.StringVar(&c.out, "out", "bench/results/latest.json", "JSON results file; empty for none")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	known := map[string]bool{}
	for _, t := range allTargets() {
		known[t.name] = true
	}
	for _, t := range splitList(targets) {
		if !known[t] {
			return c, fmt.Errorf("-targets: unknown %q", t)
		}
		c.targets = append(c.targets, t)
	}
	for _, p := range splitList(paths) {
		if _, ok := pathsByName[p]; !ok {
			return c, fmt.Errorf("-paths: unknown %q (json, static)", p)
		}
		c.paths = append(c.paths, p)
	}
	for _, s := range splitList(conns) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return c, fmt.Errorf("-conns: %q is not a positive number", s)
		}
		c.conns = append(c.conns, n)
	}
	if len(c.targets) == 0 || len(c.paths) == 0 || len(c.conns) == 0 || c.rounds < 1 || c.duration < time.Second {
		return c, errors.New("need at least one target, path, connection count, round and a duration of 1s or more")
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// sample is one measured wrk run of one cell.
type sample struct {
	Target       string  `json:"target"`
	Path         string  `json:"path"`
	Conns        int     `json:"conns"`
	Round        int     `json:"round"`
	URLPath      string  `json:"url_path"` // what wrk requested (see running.paths)
	wrkResult            // requests, rps, p50, p99, errors
	CPUPerReq    float64 `json:"cpu_us_per_req"`      // proxy process tree; 0 for direct
	StubCPUPer   float64 `json:"stub_cpu_us_per_req"` // the stub (this process)
	PeakRSS      int64   `json:"peak_rss_bytes"`      // VmHWM of the proxy so far
	NewStubConns int64   `json:"new_stub_conns"`      // accepted by the stub during warm-up + run

	WarmupRequests int64 `json:"warmup_requests"`
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	c, err := parseFlags(args)
	if err != nil {
		return err
	}
	for _, bin := range []string{c.wrk} {
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("%s: %w (apt-get install wrk)", bin, err)
		}
	}
	dir, err := os.MkdirTemp("", "sgw-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	st, err := stub.Start()
	if err != nil {
		return err
	}
	defer st.Close(context.Background())
	e := &env{dir: dir, stub: st, self: self, gateway: c.gateway, nginx: c.nginx, nginxWorkers: c.nginxWorkers}
	hz := clockTicks()

	type live struct {
		name string
		r    *running
	}
	var lives []live
	skipped := map[string]string{}
	defer func() {
		for _, l := range lives {
			_ = l.r.stop()
		}
	}()
	for _, t := range allTargets() {
		if !slices.Contains(c.targets, t.name) {
			continue
		}
		r, err := t.start(ctx, e)
		if err != nil {
			skipped[t.name] = err.Error()
			fmt.Fprintf(stdout, "skip %s: %v\n", t.name, err)
			continue
		}
		lives = append(lives, live{t.name, r})
	}
	if len(lives) == 0 {
		return errors.New("no target started")
	}

	fmt.Fprintf(stdout, "sgw-bench: %d CPUs, wrk -t%d, %s per cell after %s warm-up, %d round(s), nginx worker_processes %s\n",
		runtime.NumCPU(), c.threads, c.duration, c.warmup, c.rounds, c.nginxWorkers)
	var samples []sample
	for round := 1; round <= c.rounds; round++ {
		for _, p := range c.paths {
			for _, n := range c.conns {
				for _, l := range lives {
					s, err := measure(ctx, c, st, l.r, hz, l.r.path(p), n)
					if err != nil {
						return fmt.Errorf("%s %s c=%d: %w", l.name, p, n, err)
					}
					s.Target, s.Path, s.Conns, s.Round, s.URLPath = l.name, p, n, round, l.r.path(p)
					samples = append(samples, s)
					cpu := "     —"
					if l.r.pid != 0 {
						cpu = fmt.Sprintf("%6.1f", s.CPUPerReq)
					}
					fmt.Fprintf(stdout, "  round %d %-15s %-6s c=%-3d %8.0f rps  p99 %6.2f ms  %s µs/req (proxy)  new stub conns %d\n",
						round, l.name, p, n, s.RPS, s.P99, cpu, s.NewStubConns)
				}
			}
		}
	}
	rows := summarize(samples, c)
	fmt.Fprintln(stdout)
	printTable(stdout, rows)
	for _, l := range lives {
		for _, p := range c.paths {
			if _, ok := l.r.paths[p]; ok {
				fmt.Fprintf(stdout, "%s: %s\n", l.name, l.r.pathNote)
				break
			}
		}
	}
	printVerdict(stdout, rows)
	fmt.Fprintln(stdout)
	for _, l := range lives {
		if l.r.metrics != "" {
			fmt.Fprintln(stdout, checkCounted(ctx, l.name, l.r.metrics, samples))
		}
	}
	for name, why := range skipped {
		fmt.Fprintf(stdout, "\nnot measured: %s: %s\n", name, firstLine(why))
	}
	if c.out != "" {
		if err := writeJSON(c, rows, samples, skipped); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nresults: %s\n", c.out)
	}
	return nil
}

// measure runs one cell: warm-up, then the measured run bracketed by CPU
// readings of the proxy's process tree and of this process (the stub).
func measure(ctx context.Context, c config, st *stub.Server, r *running, hz int64, path string, conns int) (sample, error) {
	var s sample
	url := r.url + path
	conns0 := st.Accepted()
	if c.warmup > 0 {
		w, _, err := runWrk(ctx, c.wrk, url, c.threads, conns, c.warmup, r.headers)
		if err != nil {
			return s, err
		}
		s.WarmupRequests = w.Requests
	}
	var pids []int
	if r.pid != 0 {
		pids = tree(r.pid)
	}
	cpu0, err := cpuTicks(pids)
	if err != nil {
		return s, err
	}
	self0, err := cpuTicks([]int{os.Getpid()})
	if err != nil {
		return s, err
	}
	w, _, err := runWrk(ctx, c.wrk, url, c.threads, conns, c.duration, r.headers)
	if err != nil {
		return s, err
	}
	cpu1, err := cpuTicks(pids)
	if err != nil {
		return s, err
	}
	self1, _ := cpuTicks([]int{os.Getpid()})
	s.wrkResult = w
	s.NewStubConns = st.Accepted() - conns0
	if w.Requests > 0 {
		s.CPUPerReq = float64(cpu1-cpu0) * 1e6 / float64(hz) / float64(w.Requests)
		s.StubCPUPer = float64(self1-self0) * 1e6 / float64(hz) / float64(w.Requests)
	}
	if len(pids) > 0 {
		if s.PeakRSS, err = peakRSS(pids); err != nil {
			return s, err
		}
	}
	return s, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

func writeJSON(c config, rows []row, samples []sample, skipped map[string]string) error {
	doc := map[string]any{
		"time":          time.Now().UTC().Format(time.RFC3339),
		"cpus":          runtime.NumCPU(),
		"go":            runtime.Version(),
		"wrk_threads":   c.threads,
		"duration_s":    c.duration.Seconds(),
		"warmup_s":      c.warmup.Seconds(),
		"rounds":        c.rounds,
		"nginx_workers": c.nginxWorkers,
		"summary":       rows,
		"samples":       samples,
		"skipped":       skipped,
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(c.out, append(b, '\n'), 0o644)
}

// Metric names the bench reads.
const (
	requestsTotal      = "superset_gateway_requests_total"
	sessionLookups     = "superset_gateway_session_lookups_total"
	accessTokenResults = "superset_gateway_access_token_requests_total"
)

// countSlack bounds how many more requests than wrk completed a gateway may
// count besides one in-flight request per connection of each wrk run: the
// readiness probes (one per 100 ms while starting) and the setup requests.
const countSlack = 400

// checkCounted compares the gateway's superset_gateway_requests_total with
// the requests wrk completed against it. The gateway may count a few more:
// the readiness probes and setup requests, and requests cut off when wrk
// stops (499), at most one per connection and run; fewer, or more than
// that, is a MISMATCH. For an access-token gateway it also checks that
// every token request was allowed: a refused one is answered, and wrk
// would have measured refusals.
func checkCounted(ctx context.Context, name, metricsURL string, samples []sample) string {
	var sent, inFlight int64
	for _, s := range samples {
		if s.Target == name {
			sent += s.Requests + s.WarmupRequests
			runs := int64(1)
			if s.WarmupRequests > 0 {
				runs = 2
			}
			inFlight += runs * int64(s.Conns)
		}
	}
	body, err := scrape(ctx, metricsURL)
	if err != nil {
		return fmt.Sprintf("%s metrics: %v", name, err)
	}
	counted, found := sumCounter(body, requestsTotal)
	if !found {
		return fmt.Sprintf("%s metrics: no %s at %s", name, requestsTotal, metricsURL)
	}
	verdict := "ok"
	if counted < float64(sent) || counted > float64(sent+inFlight+countSlack) {
		verdict = "MISMATCH"
	}
	line := fmt.Sprintf("%s metrics: %s = %.0f; wrk completed %d (warm-ups included): %s", name, requestsTotal, counted, sent, verdict)
	if lookups, ok := sumCounter(body, sessionLookups); ok && lookups > 0 {
		hits, _ := sumCounter(body, sessionLookups+`{result="hit"}`)
		line += fmt.Sprintf("; session lookups %.0f, cache hits %.0f", lookups, hits)
	}
	if all, ok := sumCounter(body, accessTokenResults); ok && all > 0 {
		allowed, _ := sumCounter(body, accessTokenResults+`{outcome="allowed"`)
		verdict := "ok"
		if allowed != all || allowed < float64(sent) {
			verdict = "REFUSALS MEASURED"
		}
		line += fmt.Sprintf("; access-token requests %.0f, allowed %.0f: %s", all, allowed, verdict)
	}
	return line
}

// accessTokenCounts returns the gateway's allowed and refused access-token
// requests so far.
func accessTokenCounts(ctx context.Context, metricsURL string) (allowed, refused float64, err error) {
	body, err := scrape(ctx, metricsURL)
	if err != nil {
		return 0, 0, err
	}
	all, _ := sumCounter(body, accessTokenResults)
	allowed, _ = sumCounter(body, accessTokenResults+`{outcome="allowed"`)
	return allowed, all - allowed, nil
}

// scrape returns the Prometheus text at metricsURL.
func scrape(ctx context.Context, metricsURL string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s answered %d", metricsURL, resp.StatusCode)
	}
	return string(body), nil
}

// sumCounter adds up every series of a counter in the Prometheus text
// format. name is a metric name, optionally followed by its first labels
// in the exposition's (sorted) order: `m{a="x"}` is the series with exactly
// that label set, `m{a="x"` every series whose labels start with a="x".
func sumCounter(text, name string) (float64, bool) {
	var sum float64
	found := false
	open := strings.HasSuffix(name, `"`) // labels left open: more may follow
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" {
			continue
		}
		switch {
		case open && (rest[0] == ',' || rest[0] == '}'):
		case !open && (rest[0] == '{' || rest[0] == ' '):
		default:
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}
