package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/bench/stub"
	"github.com/superset-gateway/superset-gateway/store/bolt"
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
	if err != nil || len(c.targets) != 9 || len(c.paths) != 2 || len(c.conns) != 2 {
		t.Fatalf("defaults: %+v %v", c, err)
	}
}

// TestHarnessEndToEnd runs a tiny bench against the stub, the bare proxy and
// nginx with the real wrk and nginx (both installed by .ci/run), and checks
// that every cell was measured and that the proxies reused their upstream
// connections.
func TestHarnessEndToEnd(t *testing.T) {
	doc, buf := runBench(t, filepath.Join(t.TempDir(), "results", "latest.json"),
		"-targets", "direct,bare,nginx,gateway", "-gateway", filepath.Join(t.TempDir(), "missing"),
		"-paths", "json", "-conns", "4", "-duration", "1s", "-warmup", "0", "-rounds", "1")
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
	// Labels left open select the series that start with them.
	tokens := `superset_gateway_access_token_requests_total{outcome="allowed",scope="api:read"} 90
superset_gateway_access_token_requests_total{outcome="allowed",scope="charts:read"} 10
superset_gateway_access_token_requests_total{outcome="unknown",scope="none"} 3
superset_gateway_access_token_requests_total{outcome="allowedx",scope="none"} 1000
`
	if v, ok := sumCounter(tokens, `superset_gateway_access_token_requests_total{outcome="allowed"`); !ok || v != 100 {
		t.Fatalf("allowed = %v %v, want 100", v, ok)
	}
	if v, _ := sumCounter(tokens, "superset_gateway_access_token_requests_total"); v != 1103 {
		t.Fatalf("all = %v, want 1103", v)
	}
	if v, ok := sumCounter(text, `superset_gateway_requests_total{class="api",code="4xx"}`); !ok || v != 2 {
		t.Fatalf("one closed series = %v %v, want 2", v, ok)
	}
}

// createdPage is the part of accesstoken/templates/tokens.html the bench
// reads, as rendered after a creation.
const createdPage = `<h2>Your new token “sgw-bench”</h2>
<p><label for="new-token">Token</label><input type="text" id="new-token" readonly value="%s" size="66" autocomplete="off" spellcheck="false">
<form method="post" action="/-/tokens/create">
<div class="check"><input type="checkbox" id="scope-charts:read" name="scope" value="charts:read">
<div class="check"><input type="checkbox" id="scope-api:read" name="scope" value="api:read" checked>
<select id="ttl" name="ttl">
<option value="604800">7 days</option>
<option value="86400" selected>1 day</option>
</select>
<td>nightly import<br><span class="hint">from 203.0.113.0/24</span></td>
`

func TestTokenPageParsing(t *testing.T) {
	tok, _, _, err := accesstoken.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	page := fmt.Sprintf(createdPage, tok)
	if got, err := extractToken(page + "<script>var t = '" + tok + "'</script>"); err != nil || got != tok {
		t.Fatalf("extractToken = %q, %v; want the page's token (shown twice)", got, err)
	}
	if got := ttlChoices(page); len(got) != 2 || got[0] != "604800" || got[1] != "86400" {
		t.Fatalf("ttlChoices = %q", got)
	}
	if ttlChoices(strings.ReplaceAll(page, `name="ttl"`, `name="expiry"`)) != nil {
		t.Fatal("options of another select read as expiries")
	}
	if !offersScope(page, "api:read") || offersScope(page, "sqllab:execute") {
		t.Fatal("offersScope")
	}
	other, _, _, _ := accesstoken.Generate(nil)
	for name, bad := range map[string]string{
		"none":         fmt.Sprintf(createdPage, ""),
		"two":          page + other,
		"bad checksum": fmt.Sprintf(createdPage, tok[:len(tok)-8]+"00000000"),
	} {
		if got, err := extractToken(bad); err == nil {
			t.Errorf("%s: extracted %q", name, got)
		}
	}
}

// TestCreateAccessTokenOnRealPage runs the bench's token setup against the
// gateway's own tokens page (accesstoken.Manager.Page over a bolt store):
// it must pass the page's cross-origin protection, choose an offered
// expiry and come back with a token of scope api:read.
func TestCreateAccessTokenOnRealPage(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "gw.db"), bolt.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	m, err := accesstoken.NewManager(accesstoken.ManagerOptions{Store: st, Pepper: bytes.Repeat([]byte("p"), accesstoken.MinPepperLen)})
	if err != nil {
		t.Fatal(err)
	}
	owner := accesstoken.Owner{ID: stub.BenchUserID, Username: "bench"}
	page, err := m.Page(accesstoken.PageOptions{Identify: func(r *http.Request) (accesstoken.Owner, bool, error) {
		c, err := r.Cookie("sg_session")
		return owner, err == nil && c.Value == "signed-in", nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(accesstoken.PagePath, page)
	mux.Handle(accesstoken.PagePath+"/", page)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tok, err := createAccessToken(context.Background(), srv.URL, "sg_session=signed-in")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := accesstoken.Parse(tok); err != nil {
		t.Fatal(err)
	}
	list, err := m.List(context.Background(), owner.ID)
	if err != nil || len(list) != 1 {
		t.Fatalf("tokens %+v, %v", list, err)
	}
	if got := list[0]; got.Name != "sgw-bench" || len(got.Scopes) != 1 || got.Scopes[0] != tokenScope || len(got.CIDRs) != 0 ||
		got.Expires.Sub(got.Created) != 24*time.Hour || got.Status != "active" {
		t.Fatalf("created %+v; want sgw-bench, [%s], no CIDRs, the page's default of 1 day", got, tokenScope)
	}
	if _, err := createAccessToken(context.Background(), srv.URL, "sg_session=anonymous"); err == nil || !strings.Contains(err.Error(), "302") {
		t.Fatalf("not signed in: %v, want the page's redirect to the login", err)
	}
}

// TestCredentialGateways builds the gateway and runs the credential
// targets: signed in (the bench signs in through it), a Superset API JWT, a
// guest token and an access token (created on the gateway's page); every
// measured request must be answered (no errors), and every access-token
// request allowed by the gateway's guard (not passed through anonymously).
func TestCredentialGateways(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gateway binary")
	}
	bin := filepath.Join(t.TempDir(), "superset-gateway")
	build := exec.Command("go", "build", "-o", bin, "github.com/superset-gateway/superset-gateway/cmd/superset-gateway")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	doc, buf := runBench(t, filepath.Join(t.TempDir(), "latest.json"),
		"-targets", "bare,gateway-session,gateway-jwt,gateway-guest,gateway-token", "-gateway", bin,
		"-paths", "json,static", "-conns", "4", "-duration", "1s", "-warmup", "0", "-rounds", "1")
	targets := []string{"bare", "gateway-session", "gateway-jwt", "gateway-guest", "gateway-token"}
	if len(doc.Skipped) != 0 || len(doc.Summary) != 2*len(targets) {
		t.Fatalf("skipped %v, %d rows:\n%s", doc.Skipped, len(doc.Summary), buf.String())
	}
	// Every measured request of the credential targets was answered 2xx:
	// a refused credential would count as errors.
	for i, s := range doc.Summary {
		path, want := []string{"json", "static"}[i/len(targets)], targets[i%len(targets)]
		if s.Target != want || s.Path != path || s.Requests == 0 || s.Errors != 0 {
			t.Fatalf("%s %s row %+v\n%s", want, path, s, buf.String())
		}
		wantURL := pathsByName[path]
		if want == "gateway-token" && path == "static" {
			wantURL = stub.LargeJSONPath // tokens never open non-API paths
		}
		if s.URLPath != wantURL {
			t.Errorf("%s %s measured %s, want %s", want, path, s.URLPath, wantURL)
		}
	}
	for _, want := range []string{
		"signed-in gateway (session cache hit) vs bare proxy",
		"access-token gateway (checksum, record and scope check, cache hit, minted JWT cached) vs bare proxy, targets of issue 8",
		"static (" + stub.LargeJSONPath + ") c=4: rps",
		"gateway-token: static = " + stub.LargeJSONPath,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, buf.String())
		}
	}
	var tokenLine string
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(l, "gateway-token metrics:") {
			tokenLine = l
		}
		if strings.Contains(l, "MISMATCH") || strings.Contains(l, "REFUSALS") {
			t.Errorf("%s", l)
		}
	}
	if !strings.Contains(tokenLine, "access-token requests") || !strings.HasSuffix(tokenLine, ": ok") {
		t.Errorf("the access-token gateway's metrics do not show every token request allowed: %q", tokenLine)
	}
}

// benchDoc is the JSON results file of a run.
type benchDoc struct {
	Summary []row             `json:"summary"`
	Skipped map[string]string `json:"skipped"`
}

// runBench runs the harness with args, writing its results to out, and
// returns them and what it printed.
func runBench(t *testing.T, out string, args ...string) (benchDoc, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, append(args, "-out", out), &buf); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	var doc benchDoc
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc, &buf
}
