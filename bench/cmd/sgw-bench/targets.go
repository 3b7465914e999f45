package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/bench/stub"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/superset/apijwt"
	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

// env is what targets need to start.
type env struct {
	dir          string // scratch directory, removed at the end
	stub         *stub.Server
	self         string // this binary, re-run as the bare proxy
	gateway      string // gateway binary
	nginx        string
	nginxWorkers string
}

// running is a started target.
type running struct {
	url     string   // base URL wrk is pointed at
	pid     int      // process measured for CPU and RSS (with its children); 0 = none of its own
	headers []string // extra request headers ("Name: value"), e.g. a session cookie
	// paths replaces entries of pathsByName for this target, by path
	// name; pathNote says why (printed under the table). nil: none.
	paths    map[string]string
	pathNote string
	// guestSecret is the gateway's GUEST_TOKEN_JWT_SECRET (gateways only).
	guestSecret string
	// metrics is the gateway's metrics URL, scraped at the end to check that
	// superset_gateway_requests_total counted every request; empty for
	// other targets.
	metrics string
	stop    func() error
}

// target is one thing the bench measures. Variants of the gateway (session
// cookie, API JWT, guest token) are added as entries whose start returns the
// headers the variant sends.
type target struct {
	name  string
	start func(ctx context.Context, e *env) (*running, error)
}

// allTargets lists every target, in table order.
func allTargets() []target {
	return []target{
		{"direct", startDirect},
		{"bare", startBare},
		{"nginx", startNginx},
		{"gateway", startGateway},
		{"gateway-session", startGatewaySession},
		{"gateway-limits", startGatewayLimits},
		{"gateway-jwt", startGatewayJWT},
		{"gateway-guest", startGatewayGuest},
		{"gateway-token", startGatewayToken},
		{"gateway-traced", startGatewayTraced},
	}
}

// path returns the URL path the target is measured on for the path name
// (a key of pathsByName).
func (r *running) path(name string) string {
	if p, ok := r.paths[name]; ok {
		return p
	}
	return pathsByName[name]
}

func startDirect(_ context.Context, e *env) (*running, error) {
	return &running{url: e.stub.URL, stop: func() error { return nil }}, nil
}

func startBare(ctx context.Context, e *env) (*running, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	return startProcess(ctx, e, "bare", e.self, "bareproxy", "-listen", addr, "-upstream", e.stub.URL)(addr)
}

// nginxConf is nginx set up as a reverse proxy the way an operator would:
// a keep-alive upstream pool, HTTP/1.1 upstream, X-Forwarded-* set, no
// access log (the Go targets keep none either). keepalive_requests is
// raised on both sides because nginx's default of 1000 closes connections
// that Go's server and transport would keep.
const nginxConf = `%s
worker_processes %s;
daemon off;
pid %[3]s/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[3]s/client_body;
  proxy_temp_path %[3]s/proxy;
  fastcgi_temp_path %[3]s/fastcgi;
  uwsgi_temp_path %[3]s/uwsgi;
  scgi_temp_path %[3]s/scgi;
  keepalive_requests 1000000;
  upstream stub {
    server %[4]s;
    keepalive 512;
    keepalive_requests 1000000;
  }
  server {
    listen %[5]s;
    location / {
      proxy_pass http://stub;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
    }
  }
}
`

func startNginx(ctx context.Context, e *env) (*running, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(e.dir, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// As root, nginx would hand its workers to an unprivileged user that
	// cannot enter the scratch directory; keep them as the invoking user.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	conf := fmt.Sprintf(nginxConf, user, e.nginxWorkers, dir, strings.TrimPrefix(e.stub.URL, "http://"), addr)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return startProcess(ctx, e, "nginx", e.nginx, "-p", dir, "-e", "stderr", "-c", path)(addr)
}

// gatewayConf is the gateway's configuration (DESIGN.md §6): anonymous
// pass-through to the stub with the embedded store.
const gatewayConf = `listen: %s
public_url: http://%[1]s
upstreams: [%s]
store: {data_dir: %s}
metrics: {listen: %s}
superset:
  secret_key_file: %s
  guest_token_secret_file: %s
audit: {output: %s}
`

// limitsOff and limitsOn are the rate_limits of the gateway targets: off
// for every target but gateway-limits, which runs them with buckets no
// bench run can empty (wrk sends every request from one address and one
// user), so it measures what checking them costs.
const (
	limitsOff = "rate_limits: {enabled: false}\n"
	limitsOn  = "rate_limits: {enabled: true, address: {rate: 1000000000, period: 1s, burst: 1000000000}, api: {rate: 1000000000, period: 1s, burst: 1000000000}}\n"
)

func startGateway(ctx context.Context, e *env) (*running, error) {
	return startGatewayIn(ctx, e, "gateway")
}

// startGatewayTraced is the gateway with tracing on, every request
// sampled and exported to a collector in this process that takes and
// discards the batches: what tracing costs on the request path.
func startGatewayTraced(ctx context.Context, e *env) (*running, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	col := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = col.Serve(ln) }()
	r, err := startGatewayIn(ctx, e, "gateway-traced",
		fmt.Sprintf("tracing: {endpoint: http://%s/v1/traces, sample_ratio: 1}\n", ln.Addr()))
	if err != nil {
		_ = col.Close()
		return nil, err
	}
	stop := r.stop
	r.stop = func() error { return errors.Join(stop(), col.Close()) }
	return r, nil
}

// startGatewayIn starts a gateway process named name (its scratch
// directory and log file), with extra config lines appended.
func startGatewayIn(ctx context.Context, e *env, name string, extra ...string) (*running, error) {
	if _, err := os.Stat(e.gateway); err != nil {
		return nil, fmt.Errorf("gateway binary: %w (run make build)", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	maddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(e.dir, name)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	// Superset's SECRET_KEY is the stub's, so that the gateway can read
	// the identity of the stub's login cookie.
	var secrets [2]string
	for i, name := range []string{"secret_key", "guest_token_secret"} {
		secrets[i] = filepath.Join(dir, name)
		value := randomHex(48)
		if i == 0 {
			value = e.stub.SecretKey
		}
		if err := os.WriteFile(secrets[i], []byte(value), 0o600); err != nil {
			return nil, err
		}
	}
	conf := fmt.Sprintf(gatewayConf, addr, e.stub.URL, filepath.Join(dir, "data"), maddr,
		secrets[0], secrets[1], filepath.Join(dir, "audit.log")) + strings.Join(extra, "")
	if name == "gateway-limits" {
		conf += limitsOn
	} else {
		conf += limitsOff
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	r, err := startProcess(ctx, e, name, e.gateway, "serve", "--config", path)(addr)
	if err != nil {
		return nil, err
	}
	r.metrics = "http://" + maddr + "/metrics"
	r.guestSecret = secrets[1] // the file's path; read back by the guest target
	return r, nil
}

// afterStartSecond waits for the next whole second: a fresh store stamps
// the global epoch at start, and a token issued in that second is refused.
func afterStartSecond() {
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
}

// startGatewayJWT starts a gateway of its own; wrk sends a Superset API
// access JWT (verified, then the epoch check served from the cache).
func startGatewayJWT(ctx context.Context, e *env) (*running, error) {
	r, err := startGatewayIn(ctx, e, "gateway-jwt")
	if err != nil {
		return nil, err
	}
	afterStartSecond()
	tok, err := apijwt.Mint([]byte(e.stub.SecretKey), apijwt.MintOptions{Subject: "1", TTL: 2 * time.Hour, Now: time.Now()})
	if err != nil {
		_ = r.stop()
		return nil, fmt.Errorf("gateway-jwt: %w", err)
	}
	r.headers = []string{"Authorization: Bearer " + tok}
	if err := checkAnswered(ctx, r, "gateway-jwt"); err != nil {
		return nil, err
	}
	return r, nil
}

// startGatewayGuest starts a gateway of its own; wrk sends an embedded
// dashboard's guest token (verified, then the revoked_before check served
// from the cache).
func startGatewayGuest(ctx context.Context, e *env) (*running, error) {
	r, err := startGatewayIn(ctx, e, "gateway-guest")
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(r.guestSecret)
	if err != nil {
		_ = r.stop()
		return nil, err
	}
	afterStartSecond()
	tok, err := guestjwt.Mint(key, guestjwt.MintOptions{
		User:      guestjwt.User{Username: "bench"},
		Resources: []guestjwt.Resource{{Type: "dashboard", ID: "1"}},
		Now:       time.Now(), TTL: 2 * time.Hour,
	})
	if err != nil {
		_ = r.stop()
		return nil, fmt.Errorf("gateway-guest: %w", err)
	}
	r.headers = []string{"X-GuestToken: " + tok}
	if err := checkAnswered(ctx, r, "gateway-guest"); err != nil {
		return nil, err
	}
	return r, nil
}

// checkAnswered makes sure the token target's credential passes the
// gateway on every path the target may be measured on (a refusal would
// make the bench measure 401s). It stops the target when not.
func checkAnswered(ctx context.Context, r *running, name string) error {
	names := make([]string, 0, len(pathsByName))
	for n := range pathsByName {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url+r.path(n), nil)
		if err != nil {
			_ = r.stop()
			return err
		}
		for _, h := range r.headers {
			k, v, _ := strings.Cut(h, ": ")
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			_ = r.stop()
			return fmt.Errorf("%s: %w", name, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			_ = r.stop()
			return fmt.Errorf("%s: the gateway answered %d to the bench credential on %s", name, resp.StatusCode, r.path(n))
		}
	}
	return nil
}

// startGatewayToken starts a gateway of its own and obtains a scoped access
// token the way a user does: it signs in through the gateway, then creates
// an api:read token on the gateway's /-/tokens page. wrk sends it as
// "Authorization: Bearer sgw_…", so every measured request is a token
// request: checksum, cached record, HMAC, epoch and scope checks, and the
// minted Superset JWT reused from its cache. Tokens never open non-API
// paths, so the "static" cell fetches stub.LargeJSONPath, an API answer
// of the static asset's size.
func startGatewayToken(ctx context.Context, e *env) (*running, error) {
	r, err := startGatewayIn(ctx, e, "gateway-token")
	if err != nil {
		return nil, err
	}
	cookie, err := signIn(ctx, r.url)
	if err != nil {
		_ = r.stop()
		return nil, fmt.Errorf("gateway-token: sign-in: %w", err)
	}
	tok, err := createAccessToken(ctx, r.url, cookie)
	if err != nil {
		_ = r.stop()
		return nil, fmt.Errorf("gateway-token: %w", err)
	}
	r.headers = []string{"Authorization: Bearer " + tok}
	r.paths = map[string]string{"static": stub.LargeJSONPath}
	r.pathNote = fmt.Sprintf("static = %s (%d KB of JSON) in place of %s: an access token never opens a non-API path",
		stub.LargeJSONPath, stub.StaticSize>>10, stub.StaticPath)
	if err := checkAnswered(ctx, r, "gateway-token"); err != nil {
		return nil, err
	}
	// A 200 alone could be anonymous pass-through: the guard must have
	// allowed each of those requests as a token request.
	allowed, refused, err := accessTokenCounts(ctx, r.metrics)
	if err != nil || allowed < float64(len(pathsByName)) || refused != 0 {
		_ = r.stop()
		return nil, fmt.Errorf("gateway-token: the gateway counted %.0f allowed and %.0f refused token requests for %d checks (%v)",
			allowed, refused, len(pathsByName), err)
	}
	return r, nil
}

// tokenScope is the scope of the bench's access token: every GET under
// /api/v1/, which covers stub.JSONPath and stub.LargeJSONPath.
const tokenScope = policy.ScopeAPIRead

// createAccessToken creates an access token on the gateway's tokens page
// at base for the signed-in session cookie ("name=value") and returns it.
// It reads the page first, as a browser would, for the offered scopes and
// expiries, and posts the form same-origin (the page refuses cross-origin
// POSTs).
func createAccessToken(ctx context.Context, base, cookie string) (string, error) {
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	do := func(method, path string, form url.Values) (string, error) {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, body)
		if err != nil {
			return "", err
		}
		req.Header.Set("Cookie", cookie)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", base)
		}
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%s %s answered %d: %s", method, path, resp.StatusCode, firstLine(strings.TrimSpace(string(b))))
		}
		return string(b), nil
	}
	page, err := do(http.MethodGet, accesstoken.PagePath, nil)
	if err != nil {
		return "", err
	}
	if !offersScope(page, tokenScope) {
		return "", fmt.Errorf("%s offers no scope %s", accesstoken.PagePath, tokenScope)
	}
	ttls := ttlChoices(page)
	if len(ttls) == 0 {
		return "", fmt.Errorf("%s offers no expiry (<select name=\"ttl\">)", accesstoken.PagePath)
	}
	form := url.Values{"name": {"sgw-bench"}, "scope": {tokenScope}, "ttl": {ttls[0]}, "cidrs": {""}}
	created, err := do(http.MethodPost, accesstoken.PagePath+"/create", form)
	if err != nil {
		return "", err
	}
	return extractToken(created)
}

var (
	ttlSelectRE = regexp.MustCompile(`(?s)<select[^>]*\bname="ttl"[^>]*>(.*?)</select>`)
	optionRE    = regexp.MustCompile(`<option value="([0-9]+)"`)
	tokenRE     = regexp.MustCompile(accesstoken.Pattern)
)

// ttlChoices returns the values (seconds) of the tokens page's expiry
// options, in page order (the first is the page's default).
func ttlChoices(page string) []string {
	m := ttlSelectRE.FindStringSubmatch(page)
	if m == nil {
		return nil
	}
	var out []string
	for _, o := range optionRE.FindAllStringSubmatch(m[1], -1) {
		out = append(out, o[1])
	}
	return out
}

// offersScope reports whether the tokens page has a checkbox for scope.
func offersScope(page, scope string) bool {
	return strings.Contains(page, `name="scope" value="`+scope+`"`)
}

// extractToken returns the one access token the page shows after a
// creation, checked with its checksum.
func extractToken(page string) (string, error) {
	found := tokenRE.FindAllString(page, -1)
	slices.Sort(found)
	found = slices.Compact(found)
	switch len(found) {
	case 0:
		return "", errors.New("no access token in the page")
	case 1:
	default:
		return "", fmt.Errorf("%d different access tokens in the page", len(found))
	}
	if _, _, err := accesstoken.Parse(found[0]); err != nil {
		return "", fmt.Errorf("the page's token: %w", err)
	}
	return found[0], nil
}

// startGatewayLimits is gateway-session with the rate limits on.
func startGatewayLimits(ctx context.Context, e *env) (*running, error) {
	return startSignedIn(ctx, e, "gateway-limits")
}

// startGatewaySession starts a gateway of its own and signs in once through
// it (the stub's login sets a Flask session cookie for a user, the gateway
// absorbs it into a new session); wrk then sends the gateway cookie, so
// every measured request is a signed-in one served from the session cache.
func startGatewaySession(ctx context.Context, e *env) (*running, error) {
	return startSignedIn(ctx, e, "gateway-session")
}

func startSignedIn(ctx context.Context, e *env, name string) (*running, error) {
	r, err := startGatewayIn(ctx, e, name)
	if err != nil {
		return nil, err
	}
	cookie, err := signIn(ctx, r.url)
	if err != nil {
		_ = r.stop()
		return nil, fmt.Errorf("%s: sign-in: %w", name, err)
	}
	r.headers = []string{"Cookie: " + cookie}
	return r, nil
}

// signIn posts to the stub's login through the gateway at base and returns
// the gateway's session cookie as "name=value", after checking that it
// carries a signed-in session: Superset's own cookie must not reach the
// client, and a request with the cookie must be answered.
func signIn(ctx context.Context, base string) (string, error) {
	client := &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+stub.LoginPath, strings.NewReader("username=bench&password=bench"))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return "", fmt.Errorf("login answered %d", resp.StatusCode)
	}
	var cookie string
	for _, c := range resp.Cookies() {
		switch c.Name {
		case "sg_session", "__Host-sg_session":
			cookie = c.Name + "=" + c.Value
		case "session":
			return "", errors.New("the gateway passed Superset's session cookie to the client")
		}
	}
	if cookie == "" {
		return "", errors.New("no gateway session cookie after login")
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, base+stub.JSONPath, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Cookie", cookie)
	resp, err = client.Do(req)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(resp.Header["Set-Cookie"]) > 0 {
		return "", fmt.Errorf("signed-in request: status %d, Set-Cookie %q", resp.StatusCode, resp.Header["Set-Cookie"])
	}
	return cookie, nil
}

// startProcess starts a proxy process logging into the scratch directory
// and waits until it answers the stub's JSON path with 200 through addr.
func startProcess(ctx context.Context, e *env, name, bin string, args ...string) func(addr string) (*running, error) {
	return func(addr string) (*running, error) {
		logPath := filepath.Join(e.dir, name+".log")
		logf, err := os.Create(logPath)
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			logf.Close()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		// exited is closed once the process has been reaped; waitErr is
		// valid after that.
		exited := make(chan struct{})
		var waitErr error
		go func() {
			waitErr = cmd.Wait()
			logf.Close()
			close(exited)
		}()
		stop := func() error {
			// The whole process group: nginx's workers too.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
			return nil
		}
		url := "http://" + addr
		exitErr := func() error { <-exited; return waitErr }
		if err := waitReady(ctx, url+stub.JSONPath, exited, exitErr, 30*time.Second); err != nil {
			_ = stop()
			return nil, fmt.Errorf("%s did not become ready: %w\n--- %s (tail)\n%s", name, err, logPath, tail(logPath, 15))
		}
		return &running{url: url, pid: cmd.Process.Pid, stop: stop}, nil
	}
}

func waitReady(ctx context.Context, url string, exited <-chan struct{}, exitErr func() error, limit time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	last := errors.New("no answer yet")
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("exited: %v", exitErr())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return last
}

func tail(path string, lines int) string {
	b, _ := os.ReadFile(path)
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// freeAddr returns a loopback address with a port that was free a moment
// ago; the child binds it right after.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
