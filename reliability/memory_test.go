package reliability_test

import (
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/superset/apijwt"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

var (
	jwtProbe       = flag.Int("jwt-probe", 3000, "distinct API JWTs TestDistinctJWTsMemory sends (make jwt-memory: 40000)")
	jwtProbeReport = flag.String("jwt-probe-report", "", "write TestDistinctJWTsMemory's figures (markdown) to this file")
)

// gctrace is one line of GODEBUG=gctrace=1: the heap before, after and
// live (marked) in MB.
var gctrace = regexp.MustCompile(`(?m)^gc \d+ @[^ ]+ [^ ]+: .* (\d+)->(\d+)->(\d+) MB`)

// liveHeapMB is the marked (live) heap of the replica's last GC.
func liveHeapMB(r *replica) (int, bool) {
	m := gctrace.FindAllStringSubmatch(r.log.String(), -1)
	if len(m) == 0 {
		return 0, false
	}
	n, _ := strconv.Atoi(m[len(m)-1][3])
	return n, true
}

// TestDistinctJWTsMemory sends one replica distinct Superset API JWTs (a
// fresh jti each, as every login makes) in steps and reads the live heap
// the Go runtime reports after each step's garbage collections
// (GODEBUG=gctrace=1). Every JWT costs an entry in the guard's verified
// cache (the whole token as key and its claims, at most 10 000 entries)
// and in its jti cache (at most 100 000; expired entries are dropped only
// when it is full): the live heap grows with distinct tokens and must stop
// growing by the verified cache's share once it is full. make unit sends
// 3000 and checks the cost per token; make jwt-memory sends 40 000 and
// writes the curve to docs/reliability-memory.md.
func TestDistinctJWTsMemory(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	fake := httptest.NewServer(fakesuperset.New(fakesuperset.Options{SecretKey: soakSecret}))
	t.Cleanup(fake.Close)
	dir := t.TempDir()
	bin, keys, tokens, _ := soakSetup(t, dir)
	d := filepath.Join(dir, "r")
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	r := startReplica(t, bin, d, replicaOpts{upstreams: []string{fake.URL}, redisURL: rs.URL(), keys: keys, tokens: tokens,
		env: []string{"GODEBUG=gctrace=1"}})
	nextSecond()

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	send := func(n int) error {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var firstErr error
		work := make(chan int)
		for range 8 {
			wg.Go(func() {
				for range work {
					jwt, _ := apijwt.Mint([]byte(soakSecret), apijwt.MintOptions{Subject: "2", Now: time.Now()})
					req, _ := http.NewRequest(http.MethodGet, r.base+"/api/v1/me/", nil)
					req.Header.Set("Authorization", "Bearer "+jwt)
					resp, err := client.Do(req)
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							err = fmt.Errorf("status %d", resp.StatusCode)
						}
					}
					if err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
					}
				}
			})
		}
		for i := range n {
			work <- i
		}
		close(work)
		wg.Wait()
		return firstErr
	}
	// settle sends a little more traffic with one reused JWT (no new
	// cache entry), so that collections run on the heap as it is.
	reused, _ := apijwt.Mint([]byte(soakSecret), apijwt.MintOptions{Subject: "2", Now: time.Now()})
	settle := func() int {
		start := len(gctrace.FindAllString(r.log.String(), -1))
		deadline := time.Now().Add(30 * time.Second)
		for len(gctrace.FindAllString(r.log.String(), -1)) < start+3 && time.Now().Before(deadline) {
			for range 200 {
				req, _ := http.NewRequest(http.MethodGet, r.base+"/api/v1/me/", nil)
				req.Header.Set("Authorization", "Bearer "+reused)
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}
		mb, ok := liveHeapMB(r)
		if !ok {
			t.Fatalf("no gctrace line in the replica's output:\n%s", r.log.String())
		}
		return mb
	}

	base := settle()
	type step struct{ tokens, liveMB int }
	steps := []step{{0, base}}
	stepSize := max(*jwtProbe/8, 500)
	for sent := 0; sent < *jwtProbe; {
		n := min(stepSize, *jwtProbe-sent)
		if err := send(n); err != nil {
			t.Fatalf("after %d tokens: %v", sent, err)
		}
		sent += n
		steps = append(steps, step{sent, settle()})
	}
	last := steps[len(steps)-1]
	perToken := float64(last.liveMB-base) * (1 << 20) / float64(last.tokens)
	var rows strings.Builder
	for _, s := range steps {
		fmt.Fprintf(&rows, "| %d | %d |\n", s.tokens, s.liveMB)
	}
	t.Logf("live heap after distinct JWTs (tokens, MB):\n%s", rows.String())
	// gctrace reports whole MB: a few MB of slack. The verified cache's
	// entry is the JWT (about 330 bytes) and its claims; 4 KiB per token
	// would mean something else keeps every request.
	if *jwtProbe >= 1000 && perToken > 4096 {
		t.Errorf("live heap grew %d MB for %d distinct JWTs: %.0f bytes each", last.liveMB-base, last.tokens, perToken)
	}
	// Past the verified cache's 10 000 entries only the jti cache grows:
	// the second half of a long probe must cost well under the first.
	if *jwtProbe >= 30000 {
		var atFull step
		for _, s := range steps {
			if s.tokens <= 12000 {
				atFull = s
			}
		}
		first := float64(atFull.liveMB-base) / float64(atFull.tokens)
		after := float64(last.liveMB-atFull.liveMB) / float64(last.tokens-atFull.tokens)
		if after > first/2 {
			t.Errorf("live heap per token after the verified cache is full: %.5f MB, before: %.5f MB; want under half", after, first)
		}
	}
	if *jwtProbeReport != "" {
		head := fmt.Sprintf("Run %s on %s/%s, %d CPUs (shared), %s, by `make jwt-memory`: one replica in front of the Go fake Superset, %d distinct API JWTs (fresh jti each) on GET /api/v1/me/, 8 at a time; live heap = the marked heap of the last collection after each step (GODEBUG=gctrace=1, whole MB).\n\n| distinct JWTs sent | live heap (MB) |\n|---|---|\n",
			time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), *jwtProbe)
		if err := os.WriteFile(*jwtProbeReport, []byte(head+rows.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
