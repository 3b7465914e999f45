package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the bare proxy, as the real binary
// does when the harness re-runs itself with "bareproxy".
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "bareproxy" {
		if err := runBareProxy(context.Background(), os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const wrkReport = `Running 5s test @ http://127.0.0.1:40000/api/v1/chart/1
  2 threads and 128 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    10.62ms    5.01ms  66.35ms   75.00%
    Req/Sec     6.12k   512.33     7.20k    70.00%
  Latency Distribution
     50%  812.00us
     75%   12.00ms
     90%   16.00ms
     99%    1.02s
  60917 requests in 5.01s, 137.17MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:  12158.94
Transfer/sec:     27.38MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkReport)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{Requests: 60917, RPS: 12158.94, P50: 0.812, P99: 1020, Non2xx3xx: 3, SocketErrors: 3}
	if r != want {
		t.Fatalf("got %+v\nwant %+v", r, want)
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused"); err == nil {
		t.Fatal("parsed a report without numbers")
	}
}

func TestParseWrkDuration(t *testing.T) {
	for in, want := range map[string]float64{"5.00us": 0.005, "1.50ms": 1.5, "2.00s": 2000, "1.00m": 60000} {
		got, err := parseWrkDuration(in)
		if err != nil || fmt.Sprintf("%.6f", got) != fmt.Sprintf("%.6f", want) {
			t.Errorf("%s = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseWrkDuration("3.00parsecs"); err == nil {
		t.Error("unknown unit accepted")
	}
}

func TestParseProcStat(t *testing.T) {
	// A command name with spaces and a parenthesis, as nginx's
	// "nginx: worker process" is not, but a renamed process may be.
	line := "4242 (odd) name) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 4 0 100 0 0\n"
	s, err := parseProcStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if s.ppid != 17 || s.utime != 250 || s.stime != 75 {
		t.Fatalf("%+v", s)
	}
	self, err := readProcStat(os.Getpid())
	if err != nil || self.ppid != os.Getppid() {
		t.Fatalf("own stat: %+v %v", self, err)
	}
}

func TestParseVmHWM(t *testing.T) {
	v, err := parseVmHWM([]byte("Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    2048 kB\nVmRSS:\t 1000 kB\n"))
	if err != nil || v != 2048<<10 {
		t.Fatalf("%d %v", v, err)
	}
	if rss, err := peakRSS([]int{os.Getpid()}); err != nil || rss <= 0 {
		t.Fatalf("own peak RSS %d %v", rss, err)
	}
}

func TestSummarizeMediansAndRatios(t *testing.T) {
	c := config{targets: []string{"direct", "bare", "nginx", "gateway"}, paths: []string{"json"}, conns: []int{128}}
	mk := func(target string, round int, rps, p99, cpu float64) sample {
		s := sample{Target: target, Path: "json", Conns: 128, Round: round, CPUPerReq: cpu}
		s.RPS, s.P99, s.Requests = rps, p99, int64(rps*5)
		if target != "direct" {
			s.PeakRSS = 10 << 20
		}
		return s
	}
	var samples []sample
	for i, f := range []float64{1, 0.5, 1.1} { // the middle value of each is the median
		samples = append(samples,
			mk("direct", i, 30000*f, 5*f, 0),
			mk("bare", i, 10000*f, 20*f, 100*f),
			mk("nginx", i, 25000*f, 10*f, 25*f),
			mk("gateway", i, 12000*f, 16*f, 80*f))
	}
	rows := summarize(samples, c)
	if len(rows) != 4 {
		t.Fatalf("%d rows", len(rows))
	}
	g := rows[3]
	if g.Target != "gateway" || g.RPS != 12000 || g.RPSvsBare != 1.2 || g.CPUvsBare != 0.8 || g.P99vsBare != 0.8 || g.RPSvsNginx != 0.48 || g.CPUvsNginx != 3.2 {
		t.Fatalf("gateway row %+v", g)
	}
	if d := rows[0]; d.CPUvsBare != 0 || d.RPSvsBare != 3 {
		t.Fatalf("direct row %+v (no CPU ratio: it has no proxy process)", d)
	}
	var out bytes.Buffer
	printTable(&out, rows)
	printVerdict(&out, rows)
	if !strings.Contains(out.String(), "rps 1.20× (≥1.20 ok), CPU 0.80× (≤0.80 ok)") {
		t.Fatalf("verdict missing:\n%s", out.String())
	}
}

func TestFlags(t *testing.T) {
	if _, err := parseFlags([]string{"-targets", "bare,apache"}); err == nil {
		t.Error("unknown target accepted")
	}
	if _, err := parseFlags([]string{"-conns", "0"}); err == nil {
		t.Error("zero connections accepted")
	}
	c, err := parseFlags(nil)
	if err != nil || len(c.targets) != 7 || len(c.paths) != 2 || len(c.conns) != 2 {
		t.Fatalf("defaults: %+v %v", c, err)
	}
}

// TestHarnessEndToEnd runs a tiny bench against the stub, the bare proxy and
// nginx with the real wrk and nginx (both installed by .ci/run), and checks
// that every cell was measured and that the proxies reused their upstream
// connections.
func TestHarnessEndToEnd(t *testing.T) {
	out := filepath.Join(t.TempDir(), "results", "latest.json")
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := run(ctx, []string{
		"-targets", "direct,bare,nginx,gateway", "-gateway", filepath.Join(t.TempDir(), "missing"),
		"-paths", "json", "-conns", "4", "-duration", "1s", "-warmup", "0", "-rounds", "1", "-out", out,
	}, &buf)
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	var doc struct {
		Summary []row             `json:"summary"`
		Skipped map[string]string `json:"skipped"`
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc.Skipped["gateway"]; !ok {
		t.Errorf("a missing gateway binary is not reported as skipped: %v", doc.Skipped)
	}
	if len(doc.Summary) != 3 {
		t.Fatalf("%d summary rows, want 3:\n%s", len(doc.Summary), buf.String())
	}
	for _, r := range doc.Summary {
		if r.Requests < 100 || r.Errors != 0 {
			t.Errorf("%s: %d requests, %d errors", r.Target, r.Requests, r.Errors)
		}
		if r.Target != "direct" && (r.CPUPerReq <= 0 || r.PeakRSS <= 0) {
			t.Errorf("%s: CPU %v µs/req, RSS %d: proxy process not measured", r.Target, r.CPUPerReq, r.PeakRSS)
		}
		// Pooled proxies open about as many upstream connections as wrk
		// has (nginx: per worker), never one per request.
		if r.Target != "direct" && r.NewStubConns > 4*4 {
			t.Errorf("%s opened %d upstream connections for %d requests", r.Target, r.NewStubConns, r.Requests)
		}
	}
	if !strings.Contains(buf.String(), "rps/bare") {
		t.Errorf("no table printed:\n%s", buf.String())
	}
}

func TestSumCounter(t *testing.T) {
	text := `# HELP superset_gateway_requests_total x
# TYPE superset_gateway_requests_total counter
superset_gateway_requests_total{class="api",code="2xx"} 1000
superset_gateway_requests_total{class="api",code="4xx"} 2
superset_gateway_requests_total_other 5
superset_gateway_requests_totalx{a="b"} 7
`
	if v, ok := sumCounter(text, "superset_gateway_requests_total"); !ok || v != 1002 {
		t.Fatalf("sum = %v %v, want 1002", v, ok)
	}
	if _, ok := sumCounter("", "superset_gateway_requests_total"); ok {
		t.Fatal("found in empty text")
	}
}

// TestCredentialGateways builds the gateway and runs the credential
// targets: signed in (the bench signs in through it), a Superset API JWT and
// a guest token; every measured request must be answered (no errors).
func TestCredentialGateways(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gateway binary")
	}
	bin := filepath.Join(t.TempDir(), "superset-gateway")
	build := exec.Command("go", "build", "-o", bin, "github.com/superset-gateway/superset-gateway/cmd/superset-gateway")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out := filepath.Join(t.TempDir(), "latest.json")
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := run(ctx, []string{
		"-targets", "bare,gateway-session,gateway-jwt,gateway-guest", "-gateway", bin,
		"-paths", "json", "-conns", "4", "-duration", "1s", "-warmup", "0", "-rounds", "1", "-out", out,
	}, &buf)
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	var doc struct {
		Summary []row             `json:"summary"`
		Skipped map[string]string `json:"skipped"`
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Skipped) != 0 || len(doc.Summary) != 4 {
		t.Fatalf("skipped %v, %d rows:\n%s", doc.Skipped, len(doc.Summary), buf.String())
	}
	// Every measured request of the credential targets was answered 2xx:
	// a refused credential would count as errors.
	for i, want := range []string{"gateway-session", "gateway-jwt", "gateway-guest"} {
		s := doc.Summary[i+1]
		if s.Target != want || s.Requests == 0 || s.Errors != 0 {
			t.Fatalf("%s row %+v\n%s", want, s, buf.String())
		}
	}
	if !strings.Contains(buf.String(), "signed-in gateway (session cache hit) vs bare proxy") {
		t.Errorf("no verdict for the signed-in gateway:\n%s", buf.String())
	}
}
