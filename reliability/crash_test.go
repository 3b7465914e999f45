package reliability_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/admin"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/reliability"
	"github.com/superset-gateway/superset-gateway/superset/apijwt"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

// pair is two replicas on one Redis in front of one Go fake Superset,
// sharing cookie keys and an admin token, as replicas must.
type pair struct {
	a, b                   *replica
	redis                  *redistest.Server
	bin, dir, keys, tokens string
	token, upstream        string
	// superset and extra are replicaOpts' (the soak's guest-token secret).
	superset, extra string
}

func startPair(t *testing.T) *pair {
	t.Helper()
	p := &pair{redis: redistest.Start(t, redistest.Options{AppendOnly: true}), dir: t.TempDir()}
	fake := httptest.NewServer(fakesuperset.New(fakesuperset.Options{SecretKey: soakSecret, GuestSecret: soakGuestSecret}))
	t.Cleanup(fake.Close)
	p.upstream = fake.URL
	p.bin, p.keys, p.tokens, p.token = soakSetup(t, p.dir)
	gs := filepath.Join(p.dir, "guest-secret")
	if err := os.WriteFile(gs, []byte(soakGuestSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	p.superset = fmt.Sprintf(", guest_token_secret_file: %q, guest_token_audience: %q", gs, fakesuperset.DefaultGuestAudience)
	p.a, p.b = p.start(t, "0"), p.start(t, "1")
	return p
}

func (p *pair) start(t *testing.T, name string) *replica {
	d := filepath.Join(p.dir, name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return startReplica(t, p.bin, d, replicaOpts{upstreams: []string{p.upstream}, redisURL: p.redis.URL(), keys: p.keys, tokens: p.tokens,
		superset: p.superset, extra: p.extra})
}

// restartA starts replica a again on its data directory.
func (p *pair) restartA(t *testing.T) *replica { return p.start(t, "0") }

// soakSetup builds the binary and writes what two replicas share: cookie
// keys and an admin token file. It returns the binary, the files and the
// admin token.
func soakSetup(t *testing.T, dir string) (bin, keys, tokens, token string) {
	t.Helper()
	bin = filepath.Join(t.TempDir(), "superset-gateway")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/superset-gateway").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	keys = filepath.Join(dir, "cookie-keys")
	var hk, ek [32]byte
	_, _ = rand.Read(hk[:])
	_, _ = rand.Read(ek[:])
	if err := os.WriteFile(keys, []byte(base64.StdEncoding.EncodeToString(hk[:])+" "+base64.StdEncoding.EncodeToString(ek[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tok, sum, err := admin.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	tokens = filepath.Join(dir, "admin-tokens")
	if err := os.WriteFile(tokens, []byte("soak "+sum+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return bin, keys, tokens, tok
}

// TestReplicaCrash: two replicas on one Redis behind a client that fails
// over; revocations are made continuously on replica a, which is killed
// with SIGKILL mid-stream. Every revocation a acknowledged is enforced by
// b, and by a again once it restarts; requests in flight at the kill get an
// answer or a clean connection error, never a truncated success.
func TestReplicaCrash(t *testing.T) {
	pr := startPair(t)
	token, reps := pr.token, []*replica{pr.a, pr.b}
	a, b := reps[0], reps[1]
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	issued := time.Now()
	// One JWT per user of a pool; each revocation targets the next user,
	// so the history has many acknowledged revocations to check.
	users := []string{"1", "2", "3"}
	jwts := map[string]string{}
	for _, u := range users {
		jwts[u], _ = apijwt.Mint([]byte(soakSecret), apijwt.MintOptions{Subject: u, Now: issued})
	}
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))

	var h reliability.History
	client := &http.Client{Timeout: 10 * time.Second}
	var mu sync.Mutex
	var truncated, cleanErrors, answered int
	// do sends to the first replica that answers, as a load balancer does.
	do := func(method, path, auth string, body string) (int, error) {
		var lastErr error
		for _, r := range []*replica{a, b} {
			req, _ := http.NewRequest(method, r.base+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+auth)
			resp, err := client.Do(req)
			if err != nil {
				lastErr = err
				mu.Lock()
				cleanErrors++
				mu.Unlock()
				continue
			}
			_, rerr := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			if rerr != nil && resp.StatusCode == http.StatusOK {
				truncated++
			}
			answered++
			mu.Unlock()
			return resp.StatusCode, nil
		}
		return 0, lastErr
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // revocations, acknowledged or not
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			u := users[i%len(users)]
			sent := time.Now()
			code, _ := do(http.MethodPost, admin.APIPrefix+"users/"+u+"/revoke", token, `{"reason":"crash test"}`)
			h.Add(reliability.Op{Kind: reliability.Revoke, User: u, Sent: sent, Done: time.Now(), Status: code})
			time.Sleep(30 * time.Millisecond)
		}
	}()
	go func() { // uses of the pre-revocation JWTs
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			u := users[i%len(users)]
			sent := time.Now()
			code, _ := do(http.MethodGet, "/api/v1/me/", jwts[u], "")
			h.Add(reliability.Op{Kind: reliability.Use, User: u, Credential: "jwt-" + u, Issued: issued, Granularity: time.Second,
				Sent: sent, Done: time.Now(), Status: code})
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(time.Second)
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.cmd.Wait()
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	// a comes back and must enforce everything acknowledged, by it or b.
	a2 := pr.restartA(t)
	var acked int
	for _, op := range h.Ops() {
		if op.Kind == reliability.Revoke && op.Status == http.StatusOK {
			acked++
		}
	}
	if acked == 0 {
		t.Fatal("no revocation acknowledged")
	}
	for _, u := range users {
		for _, r := range []*replica{b, a2} {
			req, _ := http.NewRequest(http.MethodGet, r.base+"/api/v1/me/", nil)
			req.Header.Set("Authorization", "Bearer "+jwts[u])
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("user %s's revoked JWT on %s after the crash: %d", u, r.base, resp.StatusCode)
			}
		}
	}
	if v := reliability.Check(h.Ops(), time.Second); len(v) > 0 {
		for _, x := range v[:min(len(v), 5)] {
			t.Errorf("history: %s", x)
		}
	}
	if truncated > 0 {
		t.Errorf("%d successes cut short by the crash", truncated)
	}
	t.Logf("%d operations, %d revocations acknowledged, %d answered, %d connection errors failed over", len(h.Ops()), acked, answered, cleanErrors)
}
