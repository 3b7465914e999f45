package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/superset-gateway/superset-gateway/admin"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/reliability"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

// faultsReport, when set (make reliability-report), is where
// TestRedisFaults writes its table of answers and recovery times.
var faultsReport = flag.String("faults-report", "", "write the Redis fault table (markdown) to this file")

// faultsWindow is how long each fault lasts; -faults-window for longer runs.
var faultsWindow = flag.Duration("faults-window", 3*time.Second, "how long each injected fault lasts")

// redisFault is one fault between the gateway and Redis: a toxic added to
// the proxy, or (partition) the proxy taken down.
type redisFault struct {
	name, toxic string
	partition   bool
}

var redisFaults = []redisFault{
	{name: "latency 2s", toxic: `{"name":"f","type":"latency","stream":"downstream","attributes":{"latency":2000}}`},
	{name: "bandwidth 1 KB/s", toxic: `{"name":"f","type":"bandwidth","stream":"downstream","attributes":{"rate":1}}`},
	{name: "timeout (no data, never closed)", toxic: `{"name":"f","type":"timeout","stream":"downstream","attributes":{"timeout":0}}`},
	{name: "connection reset", toxic: `{"name":"f","type":"reset_peer","stream":"downstream","attributes":{"timeout":0}}`},
	{name: "slow close 2s", toxic: `{"name":"f","type":"slow_close","stream":"downstream","attributes":{"delay":2000}}`},
	{name: "partition", partition: true},
}

// faultRow is one line of the report.
type faultRow struct {
	fault             string
	answers           map[int]int // status → count, for the valid credential
	revokedAccepted   int
	noRetryAfter      int
	clearedCookies    int
	maxLatency        time.Duration
	recovery          time.Duration
	revocationAnswers map[int]int
}

// TestRedisFaults injects each fault between the gateway and Redis (Toxiproxy,
// in process) while a client presents a valid and a revoked Superset JWT
// and an admin revokes. What must hold: the revoked JWT is never let
// through; the valid one gets 200 or 503 with Retry-After, never a 401
// (the API's "logout") and never a cleared cookie; once the fault ends the
// gateway answers 200 again; and over the whole history no credential is
// accepted after an acknowledged revocation plus session.cache_ttl.
func TestRedisFaults(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendOnly: true})
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	px := toxiproxy.NewProxy(srv, "redis", "127.0.0.1:0", rs.Addr())
	if err := px.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(px.Stop)
	listen := px.Listen

	dir, yaml, token := adminGatewayConfig(t)
	const cacheTTL = 200 * time.Millisecond
	yaml = strings.Replace(yaml, "session: {cache_ttl: 50ms}", fmt.Sprintf("session: {cache_ttl: %s}", cacheTTL), 1)
	// Every client here is 127.0.0.1 at a rate no user reaches: the
	// faults, not the rate limits, are under test.
	yaml += "rate_limits: {enabled: false}\n"
	env := []string{"SG_STORE_REDIS_URL=redis://" + listen + "/0"}
	g := startGateway(t, dir, yaml, env)
	nextSecond()
	var h reliability.History
	alice, bob := mintJWT(t, "2"), mintJWT(t, "3")
	issued := time.Now().Truncate(time.Second)
	client := &http.Client{Timeout: 15 * time.Second}
	use := func(user, name, jwt string) (int, http.Header, time.Duration) {
		req, _ := http.NewRequest(http.MethodGet, g.base+"/api/v1/me/", nil)
		req.Header.Set("Authorization", "Bearer "+jwt)
		sent := time.Now()
		resp, err := client.Do(req)
		op := reliability.Op{Kind: reliability.Use, User: user, Credential: name, Issued: issued, Granularity: time.Second, Sent: sent, Done: time.Now()}
		if err != nil {
			h.Add(op)
			return 0, nil, time.Since(sent)
		}
		resp.Body.Close()
		op.Status = resp.StatusCode
		h.Add(op)
		return resp.StatusCode, resp.Header, time.Since(sent)
	}
	revoke := func(user string) int {
		req, _ := http.NewRequest(http.MethodPost, g.base+admin.APIPrefix+"users/"+user+"/revoke", strings.NewReader(`{"reason":"faults"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		sent := time.Now()
		resp, err := client.Do(req)
		op := reliability.Op{Kind: reliability.Revoke, User: user, Sent: sent, Done: time.Now()}
		if err == nil {
			resp.Body.Close()
			op.Status = resp.StatusCode
		}
		h.Add(op)
		return op.Status
	}
	if code := revoke("2"); code != http.StatusOK {
		t.Fatalf("revoking alice before the faults: %d", code)
	}
	waitStatus(t, g.base, alice, http.StatusUnauthorized, "alice revoked")
	if code, _, _ := use("3", "bob", bob); code != http.StatusOK {
		t.Fatalf("bob before the faults: %d", code)
	}

	var rows []faultRow
	for _, f := range redisFaults {
		row := faultRow{fault: f.name, answers: map[int]int{}, revocationAnswers: map[int]int{}}
		if f.partition {
			px.Stop()
		} else if _, err := px.Toxics.AddToxicJson(strings.NewReader(f.toxic)); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		end := time.Now().Add(*faultsWindow)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(end) {
					if w == 3 {
						code := revoke("2")
						mu.Lock()
						row.revocationAnswers[code]++
						mu.Unlock()
						time.Sleep(200 * time.Millisecond)
						continue
					}
					jwt, user, name := bob, "3", "bob"
					if w == 2 {
						jwt, user, name = alice, "2", "alice"
					}
					code, hdr, took := use(user, name, jwt)
					mu.Lock()
					if name == "alice" {
						if code == http.StatusOK {
							row.revokedAccepted++
						}
					} else {
						row.answers[code]++
						row.maxLatency = max(row.maxLatency, took)
						if code == http.StatusServiceUnavailable && hdr.Get("Retry-After") == "" {
							row.noRetryAfter++
						}
						for _, c := range hdr.Values("Set-Cookie") {
							if strings.Contains(c, "Max-Age=0") || strings.Contains(c, "Expires=Thu, 01 Jan 1970") {
								row.clearedCookies++
							}
						}
					}
					mu.Unlock()
					time.Sleep(20 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
		healed := time.Now()
		if f.partition {
			if err := px.Start(); err != nil {
				t.Fatalf("%s: restart the proxy: %v", f.name, err)
			}
		} else {
			px.Toxics.ResetToxics(context.Background())
		}
		for {
			if code, _, _ := use("3", "bob", bob); code == http.StatusOK {
				row.recovery = time.Since(healed)
				break
			}
			if time.Since(healed) > 20*time.Second {
				t.Fatalf("%s: no 200 within 20s after the fault ended", f.name)
			}
			time.Sleep(20 * time.Millisecond)
		}
		rows = append(rows, row)
		for code := range row.answers {
			if code != http.StatusOK && code != http.StatusServiceUnavailable {
				t.Errorf("%s: the valid JWT got %d (%d times); want only 200 or 503", f.name, code, row.answers[code])
			}
		}
		// Bounded: two attempts of store.redis_timeout (1s) per command
		// and a margin, never the 12s that go-redis' defaults gave.
		if row.maxLatency > 5*time.Second || row.revocationAnswers[0] > 0 {
			t.Errorf("%s: slowest answer %s, revocations without an answer %d; want every answer within 5s",
				f.name, row.maxLatency, row.revocationAnswers[0])
		}
		if row.revokedAccepted > 0 || row.noRetryAfter > 0 || row.clearedCookies > 0 {
			t.Errorf("%s: revoked JWT accepted %d times, 503 without Retry-After %d, cookies cleared %d",
				f.name, row.revokedAccepted, row.noRetryAfter, row.clearedCookies)
		}
	}
	if v := reliability.Check(h.Ops(), cacheTTL); len(v) > 0 {
		for _, x := range v[:min(len(v), 5)] {
			t.Errorf("history: %s", x)
		}
		t.Errorf("history: %d violations", len(v))
	}
	for _, r := range rows {
		t.Logf("%-32s answers %v, revocations %v, max latency %s, recovery %s",
			r.fault, r.answers, r.revocationAnswers, r.maxLatency.Round(time.Millisecond), r.recovery.Round(time.Millisecond))
	}
	if *faultsReport != "" {
		info, _ := rs.Do("INFO", "server")
		redisVersion := "unknown"
		for l := range strings.SplitSeq(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "redis_version:"); ok {
				redisVersion = v
			}
		}
		head := fmt.Sprintf("Run %s on %s/%s, %d CPUs, %s, redis-server %s, by `make reliability-report`.\n\n",
			time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), redisVersion)
		if err := os.WriteFile(*faultsReport, []byte(head+faultsTable(rows, len(h.Ops()), *faultsWindow)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// statusCounts renders status → count as "200 ×3, 503 ×1".
func statusCounts(m map[int]int) string {
	var keys []int
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		name := fmt.Sprint(k)
		if k == 0 {
			name = "no answer"
		}
		parts = append(parts, fmt.Sprintf("%s ×%d", name, m[k]))
	}
	return strings.Join(parts, ", ")
}

// faultsTable renders the rows as the markdown of docs/reliability.md.
func faultsTable(rows []faultRow, ops int, window time.Duration) string {
	codes := statusCounts
	var b strings.Builder
	fmt.Fprintf(&b, "| fault between the gateway and Redis (%s each) | valid JWT got | revoked JWT accepted | admin revocations got | slowest answer | 200 again after the fault |\n|---|---|---|---|---|---|\n", window)
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s |\n", r.fault, codes(r.answers), r.revokedAccepted,
			codes(r.revocationAnswers), r.maxLatency.Round(time.Millisecond), r.recovery.Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "\nHistory: %d operations checked, 0 violations of \"no credential issued before an acknowledged revocation is accepted after the acknowledgement plus session.cache_ttl\".\n", ops)
	return b.String()
}

// nodeFaults are injected on one of two Superset nodes (the other stays
// healthy), then on both.
var nodeFaults = []redisFault{
	{name: "one node: latency 5s", toxic: `{"name":"f","type":"latency","stream":"downstream","attributes":{"latency":5000}}`},
	{name: "one node: timeout (no data, never closed)", toxic: `{"name":"f","type":"timeout","stream":"downstream","attributes":{"timeout":0}}`},
	{name: "one node: connection reset", toxic: `{"name":"f","type":"reset_peer","stream":"downstream","attributes":{"timeout":0}}`},
	{name: "one node: partition", partition: true},
}

// TestSupersetNodeFaults injects faults between the gateway and one of two
// Superset nodes, then partitions both: clients get 200 from the healthy
// node once the faulty one is out (passive ejection, active checks), a
// clear 502/503/504 meanwhile, never a 401 (a "logout"); with no node
// left, 503 with Retry-After; 200 again once the nodes are back.
func TestSupersetNodeFaults(t *testing.T) {
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	var pxs []*toxiproxy.Proxy
	var ups []string
	for i := range 2 {
		be := httptest.NewServer(fakesuperset.New(fakesuperset.Options{SecretKey: fakeSecret}))
		t.Cleanup(be.Close)
		px := toxiproxy.NewProxy(srv, fmt.Sprintf("node%d", i), "127.0.0.1:0", strings.TrimPrefix(be.URL, "http://"))
		if err := px.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(px.Stop)
		pxs = append(pxs, px)
		ups = append(ups, "http://"+px.Listen)
	}
	dir := t.TempDir()
	sk := writeFile(t, dir, "sk", fakeSecret)
	yaml := fmt.Sprintf(`listen: %s
upstreams: [%s]
store: {data_dir: %q}
metrics: {listen: ""}
superset: {secret_key_file: %q}
health_check: {interval: 250ms, timeout: 200ms, unhealthy_threshold: 2, healthy_threshold: 1}
passive: {max_fails: 2, cooldown: 2s}
limits: {upstream_timeout: 2s}
rate_limits: {enabled: false}
`, freePort(t), strings.Join(ups, ", "), filepath.Join(dir, "data"), sk)
	g := startGateway(t, dir, yaml, nil)
	nextSecond()
	bob := mintJWT(t, "3")
	client := &http.Client{Timeout: 15 * time.Second}
	call := func() (int, http.Header, time.Duration) {
		req, _ := http.NewRequest(http.MethodGet, g.base+"/api/v1/me/", nil)
		req.Header.Set("Authorization", "Bearer "+bob)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, time.Since(t0)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header, time.Since(t0)
	}
	if code, _, _ := call(); code != http.StatusOK {
		t.Fatalf("before the faults: %d", code)
	}
	window := *faultsWindow
	run := func(name string, apply, heal func()) faultRow {
		row := faultRow{fault: name, answers: map[int]int{}}
		apply()
		end := time.Now().Add(window)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(end) {
					code, hdr, took := call()
					mu.Lock()
					row.answers[code]++
					row.maxLatency = max(row.maxLatency, took)
					if code == http.StatusServiceUnavailable && hdr.Get("Retry-After") == "" {
						row.noRetryAfter++
					}
					mu.Unlock()
					time.Sleep(20 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
		healed := time.Now()
		heal()
		for {
			if code, _, _ := call(); code == http.StatusOK {
				row.recovery = time.Since(healed)
				break
			}
			if time.Since(healed) > 20*time.Second {
				t.Fatalf("%s: no 200 within 20s after the fault ended", name)
			}
			time.Sleep(20 * time.Millisecond)
		}
		for code, n := range row.answers {
			switch code {
			case http.StatusOK, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			default:
				t.Errorf("%s: %d answered %d times; want 200, 502, 503 or 504 only", name, code, n)
			}
		}
		if row.noRetryAfter > 0 {
			t.Errorf("%s: %d answers 503 without Retry-After", name, row.noRetryAfter)
		}
		if row.maxLatency > 5*time.Second {
			t.Errorf("%s: slowest answer %s; want it bounded by limits.upstream_timeout (2s) and a retry", name, row.maxLatency)
		}
		return row
	}
	var rows []faultRow
	for _, f := range nodeFaults {
		px := pxs[0]
		rows = append(rows, run(f.name, func() {
			if f.partition {
				px.Stop()
			} else if _, err := px.Toxics.AddToxicJson(strings.NewReader(f.toxic)); err != nil {
				t.Fatal(err)
			}
		}, func() {
			if f.partition {
				if err := px.Start(); err != nil {
					t.Fatal(err)
				}
			} else {
				px.Toxics.ResetToxics(context.Background())
			}
		}))
		// A node that came back must take traffic before the next fault.
		time.Sleep(2500 * time.Millisecond)
	}
	rows = append(rows, run("both nodes: partition", func() {
		for _, px := range pxs {
			px.Stop()
		}
	}, func() {
		for _, px := range pxs {
			if err := px.Start(); err != nil {
				t.Fatal(err)
			}
		}
	}))
	both := rows[len(rows)-1]
	if both.answers[http.StatusServiceUnavailable] == 0 {
		t.Errorf("both nodes down: answers %v; want 503 with Retry-After once no node is healthy", both.answers)
	}
	for _, r := range rows {
		t.Logf("%-42s answers %v, slowest %s, recovery %s", r.fault, r.answers, r.maxLatency.Round(time.Millisecond), r.recovery.Round(time.Millisecond))
	}
	if *faultsReport != "" {
		f, err := os.OpenFile(*faultsReport, os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatalf("-faults-report: run TestRedisFaults first: %v", err)
		}
		defer f.Close()
		fmt.Fprintf(f, "\n| fault between the gateway and Superset nodes (two nodes, %s each) | answers | slowest answer | 200 again after the fault |\n|---|---|---|---|\n", window)
		for _, r := range rows {
			fmt.Fprintf(f, "| %s | %s | %s | %s |\n", r.fault, statusCounts(r.answers), r.maxLatency.Round(time.Millisecond), r.recovery.Round(time.Millisecond))
		}
	}
}
