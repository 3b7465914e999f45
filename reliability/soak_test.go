package reliability_test

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/reliability"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

var (
	soakFor    = flag.Duration("soak", 20*time.Second, "how long TestSoak runs (make soak: 30m)")
	soakRate   = flag.Int("soak-rate", 40, "requests per second of TestSoak's traffic, all kinds together")
	soakReport = flag.String("soak-report", "", "write TestSoak's figures (markdown) to this file")
)

const (
	soakSecret      = "soak-superset-secret-key-0123456789abcdef0123456789"
	soakGuestSecret = "soak-guest-token-secret-9876543210fedcba9876543210"
)

// replica is one superset-gateway process of the soak.
type replica struct {
	base, metrics string
	cmd           *exec.Cmd
	cfg           string
	log           *syncBuffer
}

// syncBuffer is a replica's output, written by exec's copying goroutine
// and read while the process runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// soakRateLimits turns every rate-limit class off: the soak signs in from
// one address far more often than any one client would. (With
// rate_limits.enabled false the vault's own per-replica limit of new
// anonymous sessions per address still applies, and the soak's form
// logins reached it.)
const soakRateLimits = `rate_limits: {enabled: true, address: {rate: 0}, login_address: {rate: 0}, login_username: {rate: 0},
  login_failures: {rate: 0}, api: {rate: 0}, guest_token: {rate: 0}, anonymous_session: {rate: 0}}`

// replicaOpts is what a replica's config holds besides its own addresses.
type replicaOpts struct {
	upstreams              []string
	redisURL, keys, tokens string
	// secretKeyFile is Superset's SECRET_KEY; "" writes soakSecret (the
	// Go fake Superset's).
	secretKeyFile string
	// superset holds more keys of the superset section (", k: v, …");
	// serviceUser is superset.service_user_id (0 means 1).
	superset    string
	serviceUser int
	// extra is appended to the config (more top-level sections).
	extra string
	// env is added to the process's environment (GODEBUG=gctrace=1).
	env []string
}

func startReplica(t *testing.T, bin, dir string, o replicaOpts) *replica {
	t.Helper()
	sk := o.secretKeyFile
	if sk == "" {
		sk = filepath.Join(dir, "sk")
		if err := os.WriteFile(sk, []byte(soakSecret), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := &replica{base: "http://" + freeAddr(t), metrics: freeAddr(t), cfg: filepath.Join(dir, "gw.yaml"), log: &syncBuffer{}}
	y := fmt.Sprintf(`listen: %s
upstreams: [%s]
store: {data_dir: %q, redis_url: %q}
metrics: {listen: %q}
superset: {secret_key_file: %q, service_user_id: %d%s}
session: {cookie_keys_file: %q, cache_ttl: 1s}
admin: {tokens_file: %q}
audit: {output: %q}
log: {level: warn}
%s
%s`, strings.TrimPrefix(r.base, "http://"), strings.Join(o.upstreams, ", "), filepath.Join(dir, "data"), o.redisURL, r.metrics, sk,
		max(o.serviceUser, 1), o.superset, o.keys, o.tokens, filepath.Join(dir, "audit.log"), soakRateLimits, o.extra)
	if err := os.WriteFile(r.cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(bin, "serve", "--config", r.cfg)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if o.env != nil {
		r.cmd.Env = append(os.Environ(), o.env...)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		_ = r.cmd.Wait()
		if t.Failed() {
			t.Logf("replica %s log:\n%s", r.base, r.log.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(r.base + "/-/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica not ready: %v\n%s", err, r.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sample is one reading of a replica's resources.
type sample struct {
	rss, fds, goroutines int64
	// rssAnon and rssFile split RSS: anonymous memory (the Go heap,
	// stacks, the runtime's) and pages of files, the executable's code
	// and data mostly, paged in as code paths first run.
	rssAnon, rssFile int64
	// From the Go runtime (the metrics endpoint's go_memstats_*): the
	// heap in use and its live objects, the idle heap not yet returned
	// to the OS (counted in RSS), and all memory the runtime obtained.
	heapInuse, heapObjects, heapRetained, goSys int64
}

func (r *replica) sample(t *testing.T) sample {
	pid := r.cmd.Process.Pid
	var s sample
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			name, v, _ := strings.Cut(sc.Text(), ":")
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			switch name {
			case "VmRSS":
				s.rss = kb * 1024
			case "RssAnon":
				s.rssAnon = kb * 1024
			case "RssFile":
				s.rssFile = kb * 1024
			}
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.fds = int64(len(ents))
	}
	if resp, err := http.Get("http://" + r.metrics + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for l := range strings.SplitSeq(string(b), "\n") {
			name, v, _ := strings.Cut(l, " ")
			f, _ := strconv.ParseFloat(v, 64)
			switch name {
			case "go_goroutines":
				s.goroutines = int64(f)
			case "go_memstats_heap_inuse_bytes":
				s.heapInuse = int64(f)
			case "go_memstats_heap_objects":
				s.heapObjects = int64(f)
			case "go_memstats_heap_idle_bytes":
				s.heapRetained += int64(f)
			case "go_memstats_heap_released_bytes":
				s.heapRetained -= int64(f)
			case "go_memstats_sys_bytes":
				s.goSys = int64(f)
			}
		}
	}
	return s
}

// TestSoak runs two gateway replicas on one Redis in front of the Go fake
// Superset under mixed traffic at a bounded rate (soakTraffic: API logins,
// form logins and their cookie sessions, API JWTs, access tokens, guest
// tokens, revocations of each kind made on one replica and timed until
// the other refuses, SIGHUP reloads of both), and checks that nothing
// leaks (RSS, goroutines, open files and store keys end where the first
// fifth of the run left them, within a margin), that no request failed
// outside what the test itself caused, and, over the whole history, that
// no credential was accepted after an acknowledged revocation plus
// session.cache_ttl. The short form runs in make unit; make soak runs 30m.
func TestSoak(t *testing.T) {
	pr := startPair(t)
	// Credentials are issued a second after the start's global stamp.
	nextSecond()
	s := newSoakTraffic(pr.a, pr.b, pr.token,
		soakUser{"1", "admin", fakesuperset.AdminPassword},
		soakUser{"2", "alice", fakesuperset.AlicePassword},
		soakUser{"3", "bob", fakesuperset.BobPassword}, "1")
	runSoak(t, s, pr.redis, *soakFor, *soakRate, *soakReport,
		"by `make soak`: two replicas on one Redis in front of the Go fake Superset")
}

// runSoak drives s for d at rate requests per second (plus the rounds of
// revocations, back to back), samples both replicas and the store every
// 5s, checks the history and the curves, and writes the report (if
// report is not empty) headed by what.
func runSoak(t *testing.T, s *soakTraffic, rs *redistest.Server, d time.Duration, rate int, report, what string) {
	ctx, stop := context.WithTimeout(context.Background(), d)
	defer stop()
	reps := []*replica{s.a, s.b}
	var wg sync.WaitGroup
	wg.Go(func() { s.steadyTraffic(ctx, rate) })
	for _, f := range s.more {
		wg.Go(func() { f(ctx) })
	}
	wg.Go(func() {
		for n := 0; ctx.Err() == nil; n++ {
			s.round(ctx, n)
			time.Sleep(time.Second)
		}
	})
	// Reloads: SIGHUP to each replica every 10s.
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Second):
			}
			_ = reps[i%2].cmd.Process.Signal(syscall.SIGHUP)
		}
	})
	// Resources: a sample of both replicas and the store every 5s.
	type point struct {
		at   time.Duration
		reps []sample
		keys storeKeys
	}
	var points []point
	var mu sync.Mutex
	start := time.Now()
	wg.Go(func() {
		for {
			p := point{at: time.Since(start)}
			for _, r := range reps {
				p.reps = append(p.reps, r.sample(t))
			}
			if k, err := sampleKeys(rs); err == nil {
				p.keys = k
			} else {
				s.fail(err.Error())
			}
			mu.Lock()
			points = append(points, p)
			mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Second):
			}
		}
	})
	wg.Wait()

	if len(s.errs) > 0 {
		t.Errorf("errors outside the injected ones: %v", s.errs)
	}
	ops := s.h.Ops()
	violations := reliability.Check(ops, time.Second)
	for _, x := range violations[:min(len(violations), 5)] {
		t.Errorf("history: %s", x)
	}
	if len(violations) > 0 {
		t.Errorf("history: %d violations in %d operations", len(violations), len(ops))
	}
	var all []time.Duration
	kinds := slices.Sorted(maps.Keys(s.props))
	for _, k := range kinds {
		all = append(all, s.props[k]...)
	}
	// Every kind of revocation must have been timed at least once.
	for _, k := range []string{"by id: access token", "user: API JWT", "user: cookie session", "user: access token", "dashboard: guest token"} {
		if len(s.props[k]) == 0 {
			t.Errorf("no revocation of kind %q propagated", k)
		}
	}
	if len(all) == 0 {
		t.Fatal("no revocation propagated")
	}
	pcts := func(ds []time.Duration) string {
		ds = slices.Sorted(slices.Values(ds))
		q := func(f float64) time.Duration {
			return ds[min(len(ds)-1, int(f*float64(len(ds))))].Round(time.Millisecond)
		}
		return fmt.Sprintf("p50 %s, p99 %s, max %s", q(0.5), q(0.99), ds[len(ds)-1].Round(time.Millisecond))
	}
	// Flat: after warm-up (the first fifth), the last sample is within
	// margins of the first (RSS +50%, goroutines +20, files +10, live
	// session records +20, other keys +100). A leak of one goroutine or
	// file per request, or of a session per login, breaks them within
	// minutes. The kept classes (dead-session markers, access-token
	// records) grow with the sign-ins and tokens made by design and are
	// bounded by their expiry, which every one of them must have.
	warm := points[len(points)/5]
	last := points[len(points)-1]
	var grew []string
	for i := range reps {
		w, l := warm.reps[i], last.reps[i]
		if l.rss > w.rss*3/2 || l.goroutines > w.goroutines+20 || l.fds > w.fds+10 {
			grew = append(grew, fmt.Sprintf("replica %d grew: RSS %d→%d, goroutines %d→%d, open files %d→%d", i, w.rss, l.rss, w.goroutines, l.goroutines, w.fds, l.fds))
		}
	}
	if w, l := warm.keys, last.keys; l.sessions > w.sessions+20 || l.other > w.other+100 {
		grew = append(grew, fmt.Sprintf("store keys grew: live sessions %d→%d, other %d→%d", w.sessions, l.sessions, w.other, l.other))
	}
	if last.keys.unbounded > 0 {
		grew = append(grew, fmt.Sprintf("%d dead-session markers or access-token records without an expiry", last.keys.unbounded))
	}
	for _, g := range grew {
		t.Error(g)
	}
	curves := "flat within the margins (RSS +50%, goroutines +20, open files +10, live sessions +20, other keys +100, from the end of the first fifth to the end)"
	if len(grew) > 0 {
		curves = "FAILED: " + strings.Join(grew, "; ")
	}
	nErr := 0
	for _, n := range s.errs {
		nErr += n
	}
	counts := map[string]int{}
	for _, op := range ops {
		if op.Kind == reliability.Use {
			counts[op.Credential]++
		} else if op.Status == http.StatusOK {
			counts["acknowledged revocations"]++
		}
	}
	summary := fmt.Sprintf("%d operations (%s), %d revocations propagated: %s", len(ops), countList(counts), len(all), pcts(all))
	t.Log(summary)
	if report == "" {
		return
	}
	var buf strings.Builder
	fmt.Fprintf(&buf, "Run %s for %s at %d requests/s (steady traffic; revocation rounds back to back besides) on %s/%s, %d CPUs, %s, %s.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), d, rate, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), what)
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&buf, "Load average at the end (1, 5, 15 min; the machine may be shared): %s.\n\n", strings.Join(strings.Fields(string(load))[:min(3, len(strings.Fields(string(load))))], ", "))
	fmt.Fprintf(&buf, "%s. History checked: %d violations. Requests that failed: %d. Curves: %s.\n\n", summary, len(violations), nErr, curves)
	fmt.Fprintf(&buf, "Propagation to the other replica after the acknowledgement, by revocation and credential:\n\n| revocation: credential | n | percentiles |\n|---|---|---|\n")
	for _, k := range kinds {
		fmt.Fprintf(&buf, "| %s | %d | %s |\n", k, len(s.props[k]), pcts(s.props[k]))
	}
	fmt.Fprintf(&buf, "\n| time | RSS a / b (MiB) | goroutines a / b | open files a / b | store keys: live sessions / other / (kept, with expiry:) dead-session markers / access-token records |\n|---|---|---|---|---|\n")
	step := max(1, len(points)/12)
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	for i, p := range points {
		if i%step != 0 && i != len(points)-1 {
			continue
		}
		fmt.Fprintf(&buf, "| %s | %.1f / %.1f | %d / %d | %d / %d | %d / %d / %d / %d |\n", p.at.Round(time.Second),
			mib(p.reps[0].rss), mib(p.reps[1].rss), p.reps[0].goroutines, p.reps[1].goroutines,
			p.reps[0].fds, p.reps[1].fds, p.keys.sessions, p.keys.other, p.keys.dead, p.keys.tokens)
	}
	// Where the RSS goes: the Go runtime's own view of the same samples.
	fmt.Fprintf(&buf, "\nWhere the RSS is (same samples): anonymous memory and pages of files (/proc/<pid>/status), and the Go runtime's view (go_memstats_* of each replica's metrics): heap in use and its live objects; idle heap kept, not yet returned to the OS (part of RSS); all memory obtained from the OS.\n\n")
	fmt.Fprintf(&buf, "| time | RSS anonymous a / b (MiB) | RSS of files a / b (MiB) | heap in use a / b (MiB) | heap objects a / b | idle heap kept a / b (MiB) | runtime total a / b (MiB) |\n|---|---|---|---|---|---|---|\n")
	for i, p := range points {
		if i%step != 0 && i != len(points)-1 {
			continue
		}
		a, b := p.reps[0], p.reps[1]
		fmt.Fprintf(&buf, "| %s | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %d / %d | %.1f / %.1f | %.1f / %.1f |\n", p.at.Round(time.Second),
			mib(a.rssAnon), mib(b.rssAnon), mib(a.rssFile), mib(b.rssFile), mib(a.heapInuse), mib(b.heapInuse), a.heapObjects, b.heapObjects, mib(a.heapRetained), mib(b.heapRetained), mib(a.goSys), mib(b.goSys))
	}
	if err := os.WriteFile(report, []byte(buf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// storeKeys are the store's keys in classes: live session records,
// markers of destroyed sessions (kept session.absolute_timeout, by design:
// a copy of a dead cookie must not come back), access-token records (kept
// their retention period after expiry or revocation, by design), the
// rest; and how many keys of the two kept classes have no expiry (must be
// none: those would be a leak).
type storeKeys struct{ sessions, dead, tokens, other, unbounded int64 }

const storeKeysScript = `local s, d, a, o, u = 0, 0, 0, 0, 0
for _, k in ipairs(redis.call('KEYS', '*')) do
  if string.match(k, '^session:[^:]+:dead$') then
    d = d + 1
    if redis.call('PTTL', k) < 0 then u = u + 1 end
  elseif string.match(k, '^session:[^:]+$') then
    s = s + 1
  elseif string.match(k, '^accesstoken:') then
    a = a + 1
    if #k == 28 and string.match(k, '^accesstoken:[a-z2-7]+$') and redis.call('PTTL', k) < 0 then u = u + 1 end
  else
    o = o + 1
  end
end
return s .. ' ' .. d .. ' ' .. a .. ' ' .. o .. ' ' .. u`

func sampleKeys(rs *redistest.Server) (storeKeys, error) {
	var k storeKeys
	v, err := rs.Do("EVAL", storeKeysScript, "0")
	if err != nil {
		return k, err
	}
	if _, err := fmt.Sscan(v, &k.sessions, &k.dead, &k.tokens, &k.other, &k.unbounded); err != nil {
		return k, fmt.Errorf("store keys %q: %w", v, err)
	}
	return k, nil
}

// countList is "k1 n1, k2 n2, …" in key order.
func countList(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
