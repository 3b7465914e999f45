package reliability_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
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

	"github.com/superset-gateway/superset-gateway/admin"
	"github.com/superset-gateway/superset-gateway/reliability"
	"github.com/superset-gateway/superset-gateway/superset/apijwt"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

var (
	soakFor    = flag.Duration("soak", 20*time.Second, "how long TestSoak runs (make soak: 30m)")
	soakRate   = flag.Int("soak-rate", 40, "requests per second of TestSoak's traffic, all kinds together")
	soakReport = flag.String("soak-report", "", "write TestSoak's figures (markdown) to this file")
)

const soakSecret = "soak-superset-secret-key-0123456789abcdef0123456789"

// replica is one superset-gateway process of the soak.
type replica struct {
	base, metrics string
	cmd           *exec.Cmd
	cfg           string
	log           *bytes.Buffer
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

func startReplica(t *testing.T, bin, dir, upstream, redisURL, keys, tokens string) *replica {
	t.Helper()
	sk := filepath.Join(dir, "sk")
	if err := os.WriteFile(sk, []byte(soakSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &replica{base: "http://" + freeAddr(t), metrics: freeAddr(t), cfg: filepath.Join(dir, "gw.yaml"), log: &bytes.Buffer{}}
	y := fmt.Sprintf(`listen: %s
upstreams: [%s]
store: {data_dir: %q, redis_url: %q}
metrics: {listen: %q}
superset: {secret_key_file: %q, service_user_id: 1}
session: {cookie_keys_file: %q, cache_ttl: 1s}
admin: {tokens_file: %q}
audit: {output: %q}
log: {level: warn}
rate_limits: {enabled: false}
`, strings.TrimPrefix(r.base, "http://"), upstream, filepath.Join(dir, "data"), redisURL, r.metrics, sk, keys, tokens, filepath.Join(dir, "audit.log"))
	if err := os.WriteFile(r.cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(bin, "serve", "--config", r.cfg)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
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
}

func (r *replica) sample(t *testing.T) sample {
	pid := r.cmd.Process.Pid
	var s sample
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				s.rss = kb * 1024
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
			if v, ok := strings.CutPrefix(l, "go_goroutines "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				s.goroutines = int64(f)
			}
		}
	}
	return s
}

// TestSoak runs two gateway replicas on one Redis in front of the Go fake
// Superset under mixed traffic at a bounded rate (API logins through the
// gateway, Superset API calls, admin revocations on one replica checked
// on the other, SIGHUP reloads of both), and checks that nothing leaks
// (RSS, goroutines, open files and store keys end where the first minute
// left them, within a margin), that no request failed outside what the
// test itself caused, and, over the whole history, that no credential was
// accepted after an acknowledged revocation plus session.cache_ttl. It
// reports how long a revocation made on one replica takes to be enforced
// on the other. The short form runs in make unit; make soak runs 30m.
func TestSoak(t *testing.T) {
	pr := startPair(t)
	rs, tok, reps := pr.redis, pr.token, []*replica{pr.a, pr.b}
	a, b := reps[0], reps[1]
	// Credentials are minted a second after the start's global stamp.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))

	var h reliability.History
	client := &http.Client{Timeout: 10 * time.Second}
	var mu sync.Mutex
	errs := map[string]int{}
	fail := func(what string) { mu.Lock(); errs[what]++; mu.Unlock() }
	use := func(base, user, name, jwt string, issued time.Time) int {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/me/", nil)
		req.Header.Set("Authorization", "Bearer "+jwt)
		sent := time.Now()
		resp, err := client.Do(req)
		op := reliability.Op{Kind: reliability.Use, User: user, Credential: name, Issued: issued, Granularity: time.Second, Sent: sent, Done: time.Now()}
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			op.Status = resp.StatusCode
		}
		h.Add(op)
		return op.Status
	}
	revoke := func(base, user string) (int, time.Time) {
		req, _ := http.NewRequest(http.MethodPost, base+admin.APIPrefix+"users/"+user+"/revoke", strings.NewReader(`{"reason":"soak"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		sent := time.Now()
		resp, err := client.Do(req)
		op := reliability.Op{Kind: reliability.Revoke, User: user, Sent: sent, Done: time.Now()}
		if err == nil {
			resp.Body.Close()
			op.Status = resp.StatusCode
		}
		h.Add(op)
		return op.Status, op.Done
	}
	apiLogin := func(base string) int {
		body, _ := json.Marshal(map[string]any{"username": "admin", "password": fakesuperset.AdminPassword, "provider": "db", "refresh": true})
		resp, err := client.Post(base+"/api/v1/security/login", "application/json", bytes.NewReader(body))
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		var out struct {
			AccessToken string `json:"access_token"`
		}
		if json.NewDecoder(resp.Body).Decode(&out) != nil || out.AccessToken == "" {
			return -resp.StatusCode
		}
		// The JWT Superset issued, used at once on the other replica.
		return use(b.base, "1", "admin-login", out.AccessToken, time.Now().Add(-time.Second))
	}

	ctx, stop := context.WithTimeout(context.Background(), *soakFor)
	defer stop()
	var wg sync.WaitGroup
	tick := time.Second / time.Duration(max(*soakRate, 1))
	// Steady traffic on both replicas: API calls with alice's (user 2,
	// never revoked) JWT, and API logins of admin whose JWT is used at
	// once on the other replica.
	wg.Add(1)
	go func() {
		defer wg.Done()
		var alice string
		var issued time.Time
		for i := 0; ctx.Err() == nil; i++ {
			// A new JWT every 5 minutes: Superset's access JWTs expire
			// after 15 (the first 30-minute run failed on it).
			if time.Since(issued) > 5*time.Minute {
				issued = time.Now()
				alice, _ = apijwt.Mint([]byte(soakSecret), apijwt.MintOptions{Subject: "2", Now: issued})
			}
			if i%20 == 0 {
				if code := apiLogin(reps[i%2].base); code != http.StatusOK {
					fail(fmt.Sprintf("api login: %d", code))
				}
			} else if code := use(reps[i%2].base, "2", "alice", alice, issued); code != http.StatusOK {
				fail(fmt.Sprintf("api call: %d", code))
			}
			time.Sleep(tick)
		}
	}()
	// Propagation: bob (user 3) is revoked on replica a, and b is asked
	// with bob's JWT from before until it refuses it; then again with a
	// new JWT, every few seconds.
	var props []time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
			issued := time.Now()
			old, _ := apijwt.Mint([]byte(soakSecret), apijwt.MintOptions{Subject: "3", Now: issued})
			if code := use(b.base, "3", "bob-old", old, issued); code != http.StatusOK {
				fail(fmt.Sprintf("bob before revocation: %d", code))
			}
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
			code, acked := revoke(a.base, "3")
			if code != http.StatusOK {
				fail(fmt.Sprintf("revoke: %d", code))
				continue
			}
			for {
				if use(b.base, "3", "bob-old", old, issued) == http.StatusUnauthorized {
					mu.Lock()
					props = append(props, time.Since(acked))
					mu.Unlock()
					break
				}
				if time.Since(acked) > 10*time.Second {
					fail("revocation not enforced on the other replica within 10s")
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(time.Second)
		}
	}()
	// Reloads: SIGHUP to each replica every 10s.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Second):
			}
			_ = reps[i%2].cmd.Process.Signal(syscall.SIGHUP)
		}
	}()
	// Resources: a sample of both replicas and the store every 5s.
	type point struct {
		at   time.Duration
		reps []sample
		keys int64
	}
	var points []point
	start := time.Now()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			p := point{at: time.Since(start)}
			for _, r := range reps {
				p.reps = append(p.reps, r.sample(t))
			}
			if v, err := rs.Do("DBSIZE"); err == nil {
				p.keys, _ = strconv.ParseInt(v, 10, 64)
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
	}()
	wg.Wait()

	if len(errs) > 0 {
		t.Errorf("errors outside the injected ones: %v", errs)
	}
	if v := reliability.Check(h.Ops(), time.Second); len(v) > 0 {
		for _, x := range v[:min(len(v), 5)] {
			t.Errorf("history: %s", x)
		}
		t.Errorf("history: %d violations in %d operations", len(v), len(h.Ops()))
	}
	if len(props) == 0 {
		t.Fatal("no revocation propagated")
	}
	slices.Sort(props)
	pct := func(q float64) time.Duration { return props[min(len(props)-1, int(q*float64(len(props))))] }
	// Flat: after warm-up (the first fifth), the last sample is within
	// margins of the first (RSS +50%, goroutines +20, files +10, keys
	// +100). A leak of one goroutine or file per request, or of a store
	// key per login, breaks them within minutes.
	warm := points[len(points)/5]
	last := points[len(points)-1]
	for i := range reps {
		w, l := warm.reps[i], last.reps[i]
		if l.rss > w.rss*3/2 || l.goroutines > w.goroutines+20 || l.fds > w.fds+10 {
			t.Errorf("replica %d grew: RSS %d→%d, goroutines %d→%d, open files %d→%d", i, w.rss, l.rss, w.goroutines, l.goroutines, w.fds, l.fds)
		}
	}
	if last.keys > warm.keys+100 {
		t.Errorf("store keys grew %d→%d", warm.keys, last.keys)
	}
	summary := fmt.Sprintf("%d operations, %d revocations propagated: p50 %s, p99 %s, max %s", len(h.Ops()), len(props),
		pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), props[len(props)-1].Round(time.Millisecond))
	t.Log(summary)
	if *soakReport != "" {
		var buf strings.Builder
		fmt.Fprintf(&buf, "Run %s for %s at %d requests/s on %s/%s, %d CPUs, %s, by `make soak`: two replicas on one Redis in front of the Go fake Superset.\n\n",
			time.Now().UTC().Format("2006-01-02 15:04 UTC"), *soakFor, *soakRate, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
		nErr := 0
		for _, n := range errs {
			nErr += n
		}
		fmt.Fprintf(&buf, "%s. History checked: 0 violations. Requests that failed: %d.\n\n", summary, nErr)
		fmt.Fprintf(&buf, "| time | RSS a / b (MiB) | goroutines a / b | open files a / b | store keys |\n|---|---|---|---|---|\n")
		step := max(1, len(points)/12)
		for i, p := range points {
			if i%step != 0 && i != len(points)-1 {
				continue
			}
			fmt.Fprintf(&buf, "| %s | %.1f / %.1f | %d / %d | %d / %d | %d |\n", p.at.Round(time.Second),
				float64(p.reps[0].rss)/(1<<20), float64(p.reps[1].rss)/(1<<20), p.reps[0].goroutines, p.reps[1].goroutines,
				p.reps[0].fds, p.reps[1].fds, p.keys)
		}
		if err := os.WriteFile(*soakReport, []byte(buf.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
