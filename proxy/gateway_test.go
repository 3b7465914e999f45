package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/proxy/upstream"
)

var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestNewValidates(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without Upstream accepted")
	}
	if _, err := New(Options{Upstream: http.DefaultTransport, TrustedProxies: []netip.Prefix{{}}}); err == nil {
		t.Error("invalid prefix accepted")
	}
}

func TestForwardingFromUntrustedPeerIsStripped(t *testing.T) {
	var gotIP netip.Addr
	var gotID string
	s := newStack(t, nil, func(o *Options, _ *upstream.Options) {
		o.Middleware = []func(http.Handler) http.Handler{func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotIP, gotID = ClientIP(r), RequestID(r)
				next.ServeHTTP(w, r)
			})
		}}
	})
	resp, _ := s.get(t, "/api/v1/me/",
		"X-Forwarded-For", "6.6.6.6",
		"X-Forwarded-Host", "evil.example",
		"X-Forwarded-Proto", "https",
		"X-Forwarded-Prefix", "/evil",
		"X-Forwarded-Port", "1",
		"Forwarded", "for=6.6.6.6;host=evil.example",
		"X-Real-IP", "6.6.6.6",
		"X-Request-ID", "attacker-chosen")
	got := s.backend.last(t)
	h := got.Header
	if h.Get("X-Forwarded-For") != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the peer only", h.Values("X-Forwarded-For"))
	}
	if h.Get("X-Forwarded-Host") != s.addr() || h.Get("X-Forwarded-Proto") != "http" {
		t.Errorf("X-Forwarded-Host/Proto = %q/%q", h.Get("X-Forwarded-Host"), h.Get("X-Forwarded-Proto"))
	}
	for _, name := range []string{"X-Forwarded-Prefix", "X-Forwarded-Port", "Forwarded", "X-Real-Ip"} {
		if v := h.Values(name); len(v) != 0 {
			t.Errorf("%s leaked upstream: %q", name, v)
		}
	}
	id := h.Get("X-Request-Id")
	if !hexID.MatchString(id) || resp.Header.Get("X-Request-Id") != id || gotID != id {
		t.Errorf("request id upstream %q, response %q, context %q", id, resp.Header.Get("X-Request-Id"), gotID)
	}
	if gotIP != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("ClientIP = %v, want the peer", gotIP)
	}
	if got.Host != s.addr() {
		t.Errorf("upstream Host = %q, want the client's", got.Host)
	}
}

func TestForwardingFromTrustedPeerIsExtended(t *testing.T) {
	var gotIP netip.Addr
	s := newStack(t, nil, func(o *Options, _ *upstream.Options) {
		o.TrustedProxies = append(loopback(), netip.MustParsePrefix("10.0.0.0/8"))
		o.Middleware = []func(http.Handler) http.Handler{func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotIP = ClientIP(r)
				next.ServeHTTP(w, r)
			})
		}}
	})
	resp, _ := s.get(t, "/x",
		"X-Forwarded-For", "198.51.100.7, 203.0.113.9, 10.0.0.2",
		"X-Forwarded-Host", "bi.example.com",
		"X-Forwarded-Proto", "https",
		"X-Forwarded-Prefix", "/bi",
		"X-Request-ID", "lb-42.a_b")
	h := s.backend.last(t).Header
	if got := h.Get("X-Forwarded-For"); got != "198.51.100.7, 203.0.113.9, 10.0.0.2, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", got)
	}
	if h.Get("X-Forwarded-Host") != "bi.example.com" || h.Get("X-Forwarded-Proto") != "https" || h.Get("X-Forwarded-Prefix") != "/bi" {
		t.Errorf("trusted forwarding headers not kept: %v", h)
	}
	// The rightmost untrusted hop, not the leftmost (client-chosen) one.
	if gotIP != netip.MustParseAddr("203.0.113.9") {
		t.Errorf("ClientIP = %v, want 203.0.113.9", gotIP)
	}
	if resp.Header.Get("X-Request-Id") != "lb-42.a_b" || h.Get("X-Request-Id") != "lb-42.a_b" {
		t.Errorf("trusted request id not kept: %q", resp.Header.Get("X-Request-Id"))
	}
	// An insane id from a trusted proxy is replaced.
	for _, bad := range []string{"has space", "<script>", strings.Repeat("a", 65), "a\u00e9"} {
		resp, _ = s.get(t, "/x", "X-Request-ID", bad)
		if id := resp.Header.Get("X-Request-Id"); !hexID.MatchString(id) || s.backend.last(t).Header.Get("X-Request-Id") != id {
			t.Errorf("id %q: replaced by %q", bad, id)
		}
	}
}

// A sign-on proxy's user header (Superset's REMOTE_USER) is honoured from
// a trusted peer only: anyone else naming themselves loses the header
// before Superset sees it.
func TestTrustedHeadersOnlyFromTrustedPeers(t *testing.T) {
	for _, c := range []struct {
		name    string
		trusted []netip.Prefix
		want    []string
	}{
		{"untrusted peer", nil, nil},
		{"untrusted peer, another proxy trusted", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, nil},
		{"trusted peer", loopback(), []string{"alice"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newStack(t, nil, func(o *Options, _ *upstream.Options) {
				o.TrustedProxies = c.trusted
				o.TrustedHeaders = []string{"x-remote-user", "X_Sso_User"}
			})
			// Whatever case the client spells it in.
			s.get(t, "/x", "x-REMOTE-user", "alice", "X-Other", "kept")
			h := s.backend.last(t).Header
			if got := h.Values("X-Remote-User"); !slices.Equal(got, c.want) {
				t.Errorf("X-Remote-User upstream = %q, want %q", got, c.want)
			}
			if h.Get("X-Other") != "kept" {
				t.Errorf("an unrelated header was removed: %v", h)
			}
		})
	}
	if _, err := New(Options{Upstream: http.DefaultTransport, TrustedHeaders: []string{"Bad Header"}}); err == nil {
		t.Error("an invalid header name was accepted")
	}
}

func TestClientAddr(t *testing.T) {
	ts := trustSet{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	p := netip.MustParseAddr
	cases := []struct {
		peer string
		xff  []string
		want string
	}{
		{"192.0.2.1", []string{"6.6.6.6"}, "192.0.2.1"},
		{"10.0.0.1", nil, "10.0.0.1"},
		{"10.0.0.1", []string{"6.6.6.6, 192.0.2.5"}, "192.0.2.5"},
		{"10.0.0.1", []string{"6.6.6.6", "192.0.2.5, 10.1.1.1"}, "192.0.2.5"},
		{"10.0.0.1", []string{"10.2.2.2, 10.3.3.3"}, "10.2.2.2"},
		{"10.0.0.1", []string{"192.0.2.5, garbage, 10.3.3.3"}, "10.3.3.3"},
		{"10.0.0.1", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"10.0.0.1", []string{"192.0.2.9:5555"}, "192.0.2.9"},
		{"::1", []string{"::ffff:192.0.2.4"}, "192.0.2.4"},
		{"10.0.0.1", []string{" , "}, "10.0.0.1"},
	}
	for _, c := range cases {
		if got := ts.clientAddr(p(c.peer), c.xff); got != p(c.want) {
			t.Errorf("clientAddr(%s, %q) = %v, want %s", c.peer, c.xff, got, c.want)
		}
	}
	if peerAddr("[::ffff:127.0.0.1]:80") != p("127.0.0.1") || peerAddr("garbage").IsValid() {
		t.Error("peerAddr")
	}
}

func FuzzClientAddr(f *testing.F) {
	for _, s := range []string{"6.6.6.6", "1.2.3.4, 10.0.0.1", "[::1]:80, x", "", ",,,", "10.0.0.1:99"} {
		f.Add(s)
	}
	ts := trustSet{netip.MustParsePrefix("10.0.0.0/8")}
	peer := netip.MustParseAddr("10.9.9.9")
	f.Fuzz(func(t *testing.T, xff string) {
		got := ts.clientAddr(peer, []string{xff})
		if !got.IsValid() {
			t.Fatalf("invalid client address for %q", xff)
		}
		if got == peer {
			return
		}
		// Otherwise it is an element of the list and every element to its
		// right is a trusted proxy.
		elems := strings.Split(xff, ",")
		for i := len(elems) - 1; i >= 0; i-- {
			if strings.TrimSpace(elems[i]) == "" {
				continue
			}
			a, ok := parseForwardedAddr(elems[i])
			if !ok {
				t.Fatalf("walked past malformed element %q of %q", elems[i], xff)
			}
			if a == got {
				return
			}
			if !ts.contains(a) {
				t.Fatalf("client %v is left of untrusted %v in %q", got, a, xff)
			}
		}
		t.Fatalf("client %v not from %q", got, xff)
	})
}

func FuzzValidRequestID(f *testing.F) {
	for _, s := range []string{"abc", "lb-42.a_b", "", "has space", strings.Repeat("a", 65), "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if !ValidRequestID(id) {
			return
		}
		if len(id) > 64 || strings.ContainsAny(id, " <>\"'&\r\n\t/\\;,") {
			t.Fatalf("accepted %q", id)
		}
	})
}

func TestGeneratedRequestIDsDiffer(t *testing.T) {
	s := newStack(t, nil, nil)
	a, _ := s.get(t, "/x")
	b, _ := s.get(t, "/x")
	if a.Header.Get("X-Request-Id") == b.Header.Get("X-Request-Id") {
		t.Error("two requests share an id")
	}
}

func TestSmugglingRefused(t *testing.T) {
	s := newStack(t, nil, nil)
	// Handler layer: both framings visible → 400, nothing forwarded.
	req := httptest.NewRequest("POST", "/api/v1/chart/", strings.NewReader("0\r\n\r\n"))
	req.Header.Set("Content-Length", "5")
	req.TransferEncoding = []string{"chunked"}
	rec := httptest.NewRecorder()
	s.gw.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest || s.backend.count() != 0 {
		t.Fatalf("handler layer: status %d, backend hits %d", rec.Code, s.backend.count())
	}
	// Wire layer: net/http alone would drop Content-Length and re-frame;
	// the listener sees both on the wire and the gateway refuses with
	// 400 and closes the connection, in every spelling.
	smuggled := "GET /admin HTTP/1.1\r\nHost: gw\r\n\r\n"
	body := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggled), smuggled)
	for _, head := range []string{
		"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
		"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
		"content-length: 4\r\ntransfer-encoding: chunked\r\n",
		"Content-Length: 4\nTransfer-Encoding: chunked\n",
		"Content-Length: 4\r\nContent-Length: 4\r\n", // equal lengths: net/http merges them
		"Content-Length: 4\r\nContent-Length: 5\r\n",
		"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
		"Transfer-Encoding: gzip, chunked\r\n",
		"Transfer-Encoding: xchunked\r\n",
	} {
		resp, _ := raw(t, s.addr(), "POST /api/v1/chart/ HTTP/1.1\r\nHost: gw\r\n"+head+"\r\n"+body)
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusNotImplemented {
			t.Errorf("%q: status %d, want 400", head, resp.StatusCode)
		}
		if s.backend.count() != 0 {
			t.Fatalf("%q: %d requests reached the upstream", head, s.backend.count())
		}
	}
}

// TestFramingPipelined: the listener follows requests on one connection:
// a good request, then an ambiguous one, then another good one. The first
// is answered, the second refused with the connection closed, so the third
// (which sat behind it on the wire) never reaches the upstream.
func TestFramingPipelined(t *testing.T) {
	s := newStack(t, nil, nil)
	c, err := net.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	good := "POST /a HTTP/1.1\r\nHost: gw\r\nContent-Length: 20\r\n\r\n" + "Content-Length: 9\r\n\r\n"[:20]
	bad := "POST /b HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	third := "GET /c HTTP/1.1\r\nHost: gw\r\n\r\n"
	if _, err := io.WriteString(c, good+bad+third); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var codes []int
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	if len(codes) != 2 || codes[0] != 200 || codes[1] != 400 {
		t.Fatalf("answers %v, want [200 400] and the connection closed", codes)
	}
	if s.backend.count() != 1 || s.backend.last(t).Path != "/a" {
		t.Fatalf("upstream saw %d requests", s.backend.count())
	}
}

// TestFramingAfterChunked: the listener follows a chunked body to its end,
// so a conflicting request hidden after it on the same connection is
// refused, and a well-framed one is served.
func TestFramingAfterChunked(t *testing.T) {
	s := newStack(t, nil, nil)
	chunked := "POST /a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
	hidden := "POST /hidden HTTP/1.1\r\nHost: gw\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	got := exchange(t, s.addr(), chunked+"GET /b HTTP/1.1\r\nHost: gw\r\n\r\n"+hidden, 4)
	if fmt.Sprint(statuses(got)) != "[200 200 400]" {
		t.Fatalf("answers %v, want [200 200 400] and the connection closed", statuses(got))
	}
	if s.backend.count() != 2 || s.backend.last(t).Path != "/b" {
		t.Fatalf("upstream saw %d requests", s.backend.count())
	}
}

func TestBodyLimit(t *testing.T) {
	s := newStack(t, nil, func(o *Options, _ *upstream.Options) { o.MaxBodyBytes = 1000 })
	// Declared too large: refused before reading.
	resp, _ := raw(t, s.addr(), "POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: 1001\r\n\r\n")
	if resp.StatusCode != http.StatusRequestEntityTooLarge || s.backend.count() != 0 {
		t.Fatalf("declared: status %d, hits %d", resp.StatusCode, s.backend.count())
	}
	// At the limit: forwarded.
	r, _ := http.NewRequest("POST", s.front.URL+"/x", strings.NewReader(strings.Repeat("a", 1000)))
	if resp, err := s.front.Client().Do(r); err != nil || resp.StatusCode != 200 {
		t.Fatalf("1000 bytes: %v %v", resp, err)
	}
	// Chunked and too large: cut by MaxBytesReader.
	r, _ = http.NewRequest("POST", s.front.URL+"/x", io.MultiReader(strings.NewReader(strings.Repeat("a", 5000))))
	r.ContentLength = -1
	resp, err := s.front.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked: status %d", resp.StatusCode)
	}
	_, _, refusals := s.obs.snapshot()
	if strings.Join(refusals, ",") != "body_too_large,body_too_large" {
		t.Errorf("refusals %v", refusals)
	}
}

func TestUpstreamFailures(t *testing.T) {
	t.Run("hanging upstream → 504", func(t *testing.T) {
		release := make(chan struct{})
		s := newStack(t, func(w http.ResponseWriter, r *http.Request) { <-release }, func(_ *Options, po *upstream.Options) {
			po.ResponseHeaderTimeout = 200 * time.Millisecond
		})
		defer close(release)
		resp, body := s.get(t, "/api/v1/chart/data")
		assertErrorPage(t, resp, body, http.StatusGatewayTimeout, s.backend.URL)
		_, _, ref := s.obs.snapshot()
		if strings.Join(ref, ",") != "upstream_timeout" {
			t.Errorf("refusals %v", ref)
		}
	})
	t.Run("dead upstream → 502", func(t *testing.T) {
		dead := deadAddr(t)
		s := newStack(t, nil, func(_ *Options, po *upstream.Options) { po.Nodes = []string{dead} })
		resp, body := s.get(t, "/x")
		assertErrorPage(t, resp, body, http.StatusBadGateway, dead)
		if strings.Contains(body, "refused") {
			t.Errorf("error page leaks the cause: %s", body)
		}
	})
	t.Run("all nodes down → 503 + Retry-After", func(t *testing.T) {
		d1, d2 := deadAddr(t), deadAddr(t)
		s := newStack(t, nil, func(o *Options, po *upstream.Options) {
			po.Nodes = []string{d1, d2}
			po.UnhealthyAfter = 1
			o.RetryAfter = 7 * time.Second
		})
		s.pool.Check(context.Background())
		resp, body := s.get(t, "/x")
		assertErrorPage(t, resp, body, http.StatusServiceUnavailable, d1)
		if resp.Header.Get("Retry-After") != "7" {
			t.Errorf("Retry-After = %q", resp.Header.Get("Retry-After"))
		}
	})
	t.Run("ModifyResponse error → 502", func(t *testing.T) {
		s := newStack(t, nil, func(o *Options, _ *upstream.Options) {
			o.ModifyResponse = func(*http.Response) error { return errors.New("hook failed") }
		})
		resp, body := s.get(t, "/x")
		assertErrorPage(t, resp, body, http.StatusBadGateway, "hook failed")
	})
}

func assertErrorPage(t *testing.T, resp *http.Response, body string, status int, secret string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d (%s)", resp.StatusCode, status, body)
	}
	id := resp.Header.Get("X-Request-Id")
	if !hexID.MatchString(id) || !strings.Contains(body, id) {
		t.Errorf("error page lacks the request id %q: %s", id, body)
	}
	if secret != "" && strings.Contains(body, strings.TrimPrefix(secret, "http://")) {
		t.Errorf("error page leaks %q: %s", secret, body)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("error page headers %v", resp.Header)
	}
	// A person gets the shared layout: what happened, what to do, a way
	// back to Superset.
	for _, want := range []string{"What to do", `href="/-/static/gateway.css"`, "Back to Superset"} {
		if !strings.Contains(body, want) {
			t.Errorf("error page lacks %q: %s", want, body)
		}
	}
}

func TestClientGoneIs499(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	s := newStack(t, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}, nil)
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.front.URL+"/slow", nil)
	go func() { <-entered; cancel() }()
	if _, err := s.front.Client().Do(req); err == nil {
		t.Fatal("request succeeded")
	}
	<-s.obs.done
	inflight, reqs, ref := s.obs.snapshot()
	if inflight != 0 || len(reqs) != 1 || reqs[0] != "other 499" || strings.Join(ref, ",") != "client_gone" {
		t.Errorf("inflight %d, requests %v, refusals %v", inflight, reqs, ref)
	}
}

func TestPanicRecovered(t *testing.T) {
	s := newStack(t, nil, func(o *Options, _ *upstream.Options) {
		o.Middleware = []func(http.Handler) http.Handler{func(http.Handler) http.Handler {
			return http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })
		}}
	})
	resp, body := s.get(t, "/x")
	assertErrorPage(t, resp, body, http.StatusInternalServerError, "boom")
	entries := s.logs.FilterMessage("panic serving request").All()
	if len(entries) != 1 || !strings.Contains(fmt.Sprint(entries[0].ContextMap()["stack"]), "TestPanicRecovered") ||
		entries[0].ContextMap()["request_id"] != resp.Header.Get("X-Request-Id") {
		t.Errorf("panic log %v", entries)
	}
	// The server survives.
	if resp, _ := s.get(t, "/-/healthz"); resp.StatusCode != 200 {
		t.Error("gateway dead after panic")
	}
}

func TestSecurityHeaders(t *testing.T) {
	s := newStack(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "gunicorn")
		w.Header().Set("X-Powered-By", "Flask")
		if r.URL.Path == "/own" {
			w.Header().Set("X-Frame-Options", "DENY")
			w.Header().Set("Referrer-Policy", "no-referrer")
		}
	}, func(o *Options, _ *upstream.Options) {
		hp, err := policy.NewHeaderPolicy(policy.HeaderOptions{PublicURL: "https://bi.example", FrameAncestors: []string{"https://app.example"}})
		if err != nil {
			t.Fatal(err)
		}
		o.Headers = hp
	})
	resp, _ := s.get(t, "/own")
	h := resp.Header
	if h.Get("Server") != "" || h.Get("X-Powered-By") != "" {
		t.Errorf("identity headers leaked: %q %q", h.Get("Server"), h.Get("X-Powered-By"))
	}
	if v := h.Values("X-Frame-Options"); len(v) != 1 || v[0] != "DENY" {
		t.Errorf("X-Frame-Options = %q, want Superset's single value", v)
	}
	if v := h.Values("Referrer-Policy"); len(v) != 1 || v[0] != "no-referrer" {
		t.Errorf("Referrer-Policy = %q", v)
	}
	for name, want := range map[string]string{
		"X-Content-Type-Options":     "nosniff",
		"Strict-Transport-Security":  "max-age=31536000; includeSubDomains",
		"Permissions-Policy":         "camera=(), microphone=(), geolocation=()",
		"Cross-Origin-Opener-Policy": "same-origin",
	} {
		if h.Get(name) != want {
			t.Errorf("%s = %q, want %q", name, h.Get(name), want)
		}
	}
	resp, _ = s.get(t, "/embedded/5e0c")
	if resp.Header.Get("X-Frame-Options") != "" || resp.Header.Get("Content-Security-Policy") != "frame-ancestors https://app.example" {
		t.Errorf("embedded: %v", resp.Header)
	}
	resp, _ = s.get(t, "/-/healthz")
	if resp.Header.Get("X-Frame-Options") != "SAMEORIGIN" || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Errorf("gateway pages lack headers: %v", resp.Header)
	}
}

func TestGatewayRoutes(t *testing.T) {
	ready := false
	s := newStack(t, nil, func(o *Options, _ *upstream.Options) {
		o.Readiness = func(context.Context) (bool, any) { return ready, map[string]int{"healthy_upstreams": 0} }
	})
	resp, body := s.get(t, "/-/healthz")
	if resp.StatusCode != 200 || body != "ok" {
		t.Errorf("healthz %d %q", resp.StatusCode, body)
	}
	resp, body = s.get(t, "/-/readyz")
	var doc struct {
		Ready   bool           `json:"ready"`
		Details map[string]int `json:"details"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || resp.StatusCode != 503 || doc.Ready || doc.Details == nil {
		t.Errorf("readyz not ready: %d %s", resp.StatusCode, body)
	}
	ready = true
	if resp, _ = s.get(t, "/-/readyz"); resp.StatusCode != 200 {
		t.Errorf("readyz ready: %d", resp.StatusCode)
	}
	if resp, _ = s.get(t, "/-/tokens"); resp.StatusCode != 404 {
		t.Errorf("/-/tokens without Internal: %d", resp.StatusCode)
	}
	if s.backend.count() != 0 {
		t.Error("gateway routes reached upstream")
	}
	// "/-/../x" is not a gateway route once normalised.
	resp, _ = raw(t, s.addr(), "GET /-/../x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 || s.backend.last(t).Path != "/x" {
		t.Errorf("/-/../x: %d", resp.StatusCode)
	}
	_, reqs, _ := s.obs.snapshot()
	if reqs[0] != "gateway 200" {
		t.Errorf("class of /-/ route: %v", reqs)
	}

	s2 := newStack(t, nil, func(o *Options, _ *upstream.Options) {
		o.Internal = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "internal "+r.URL.Path+" "+RequestID(r))
		})
	})
	resp, body = s2.get(t, "/-//tokens")
	if body != "internal /-/tokens "+resp.Header.Get("X-Request-Id") {
		t.Errorf("internal handler: %q", body)
	}
}

func TestAccessLogAndObserver(t *testing.T) {
	s := newStack(t, nil, func(o *Options, _ *upstream.Options) {
		o.Classify = func(r *http.Request) string {
			if strings.HasPrefix(r.URL.Path, "/api/") {
				return "api"
			}
			return "page"
		}
	})
	resp, _ := s.get(t, "//api/v1/me/?guest_token=SECRET",
		"Cookie", "session=COOKIESECRET", "Authorization", "Bearer AUTHSECRET")
	<-s.obs.done
	entries := s.logs.FilterMessage("request").All()
	if len(entries) != 1 {
		t.Fatalf("%d access-log records, want 1", len(entries))
	}
	f := entries[0].ContextMap()
	if f["path"] != "/api/v1/me/" || f["status"] != int64(200) || f["class"] != "api" || f["client_ip"] != "127.0.0.1" ||
		f["request_id"] != resp.Header.Get("X-Request-Id") || f["method"] != "GET" || f["bytes"] != int64(len("upstream ok")) {
		t.Errorf("access log fields %v", f)
	}
	if all := fmt.Sprint(f); strings.Contains(all, "SECRET") {
		t.Errorf("access log leaks a secret: %s", all)
	}
	inflight, reqs, _ := s.obs.snapshot()
	if inflight != 0 || len(reqs) != 1 || reqs[0] != "api 200" {
		t.Errorf("observer inflight %d reqs %v", inflight, reqs)
	}
}

func TestStreamingIsFlushed(t *testing.T) {
	for _, ct := range []string{"text/event-stream", "application/json"} {
		t.Run(ct, func(t *testing.T) {
			next := make(chan struct{})
			s := newStack(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ct)
				_, _ = io.WriteString(w, "first\n")
				w.(http.Flusher).Flush()
				// The second part is written only after the client saw
				// the first: without prompt flushing this deadlocks.
				<-next
				_, _ = io.WriteString(w, "second\n")
			}, nil)
			resp, err := s.front.Client().Get(s.front.URL + "/api/v1/async_event/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			line, err := br.ReadString('\n')
			if err != nil || line != "first\n" {
				t.Fatalf("first chunk %q %v", line, err)
			}
			close(next)
			if line, _ = br.ReadString('\n'); line != "second\n" {
				t.Fatalf("second chunk %q", line)
			}
		})
	}
}

func TestWebSocketPassesThrough(t *testing.T) {
	s := newStack(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want upgrade", 400)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		buf := make([]byte, 64)
		n, _ := brw.Read(buf)
		_, _ = c.Write(append([]byte("echo:"), buf[:n]...))
	}, nil)
	c, err := net.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	if !hexID.MatchString(resp.Header.Get("X-Request-Id")) {
		t.Error("101 without request id")
	}
	_, _ = io.WriteString(c, "ping")
	buf := make([]byte, 9)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "echo:ping" {
		t.Fatalf("echo %q %v", buf, err)
	}
	if got := s.backend.last(t).Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("upgrade request X-Forwarded-For %q", got)
	}
}

func TestReloadable(t *testing.T) {
	a := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "a") })
	b := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "b") })
	rl := NewReloadable(a)
	get := func() string {
		rec := httptest.NewRecorder()
		rl.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		return rec.Body.String()
	}
	if get() != "a" {
		t.Fatal("initial handler")
	}
	rl.Swap(b)
	if get() != "b" {
		t.Fatal("swap")
	}
	// A failed rebuild passes nil; the running handler stays.
	rl.Swap(nil)
	if get() != "b" {
		t.Fatal("nil swap replaced the handler")
	}
}

func TestConnectAndTraceRefused(t *testing.T) {
	s := newStack(t, nil, nil)
	for _, req := range []string{
		"CONNECT internal.db:5432 HTTP/1.1\r\nHost: internal.db:5432\r\nConnection: close\r\n\r\n",
		"TRACE /x HTTP/1.1\r\nHost: gw\r\nCookie: session=s\r\nConnection: close\r\n\r\n",
	} {
		resp, body := raw(t, s.addr(), req)
		if resp.StatusCode != http.StatusMethodNotAllowed || strings.Contains(body, "session=s") {
			t.Errorf("%.20q: %d %s", req, resp.StatusCode, body)
		}
	}
	if s.backend.count() != 0 {
		t.Error("CONNECT/TRACE reached upstream")
	}
}

func TestEarlyHintsKeepRequestID(t *testing.T) {
	s := newStack(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</static/app.js>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		_, _ = io.WriteString(w, "body")
	}, nil)
	resp, body := s.get(t, "/superset/welcome/")
	if body != "body" || !hexID.MatchString(resp.Header.Get("X-Request-Id")) || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("after 103: %q %v", body, resp.Header)
	}
}

func TestUpstreamDyingMidBodyAbortsResponse(t *testing.T) {
	s := newStack(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
	}, nil)
	// The client sees the connection cut, before or inside the body,
	// never a complete-looking answer.
	resp, err := s.front.Client().Get(s.front.URL + "/big")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("truncated response read as complete")
	}
	<-s.obs.done
	entries := s.logs.FilterMessage("request").All()
	if len(entries) != 1 || entries[0].ContextMap()["refusal"] != "response_aborted" {
		t.Errorf("access log %v", entries)
	}
	if resp, _ := s.get(t, "/-/healthz"); resp.StatusCode != 200 {
		t.Error("gateway dead after abort")
	}
}

func TestTLSUpstream(t *testing.T) {
	be := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "over tls "+r.Header.Get("X-Forwarded-Proto"))
	}))
	defer be.Close()
	pool, err := upstream.New(upstream.Options{Nodes: []string{be.URL}, TLSClientConfig: be.Client().Transport.(*http.Transport).TLSClientConfig})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.CloseIdleConnections()
	gw, err := New(Options{Upstream: pool})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	gw.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != 200 || rec.Body.String() != "over tls http" {
		t.Errorf("%d %q", rec.Code, rec.Body.String())
	}
	// Unverifiable upstream certificates are refused, not ignored.
	strict, _ := upstream.New(upstream.Options{Nodes: []string{be.URL}})
	defer strict.CloseIdleConnections()
	gw2, _ := New(Options{Upstream: strict})
	rec = httptest.NewRecorder()
	gw2.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != http.StatusBadGateway {
		t.Errorf("unverified upstream: %d", rec.Code)
	}
}

// TestUnderscoreAndDuplicateHeaders, from the attacker's side over the
// wire: a header name with "_" never reaches the upstream (dropped, or the
// request refused), whoever sends it (gunicorn would honour Script_Name
// from the gateway's address); a single-valued header sent twice is
// refused before anything is forwarded.
func TestUnderscoreAndDuplicateHeaders(t *testing.T) {
	s := newStack(t, nil, func(o *Options, _ *upstream.Options) {
		o.TrustedProxies = loopback() // even from a trusted peer
		o.TrustedHeaders = []string{"X-Remote-User"}
	})
	resp, _ := raw(t, s.addr(), "GET /api/v1/dashboard/api/v1/chart/2/data/ HTTP/1.1\r\nHost: gw\r\nScript_Name: /api/v1/dashboard\r\n"+
		"X_Remote_User: admin\r\nscript_name: /x\r\nX-Kept: 1\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for name := range s.backend.last(t).Header {
		if strings.Contains(name, "_") {
			t.Errorf("%s reached the upstream", name)
		}
	}
	if s.backend.last(t).Header.Get("X-Kept") != "1" {
		t.Error("an ordinary header was dropped")
	}
	for _, head := range []string{
		"Content-Type: application/json\r\nContent-Type: application/x-www-form-urlencoded\r\n",
		"Authorization: Bearer a\r\nAuthorization: Bearer b\r\n",
		"X-GuestToken: a\r\nx-guesttoken: b\r\n",
		"X-CSRFToken: a\r\nX-CSRFToken: a\r\n",
		"Origin: https://a.example\r\nOrigin: https://b.example\r\n",
	} {
		before := s.backend.count()
		resp, body := raw(t, s.addr(), "POST /api/v1/chart/data HTTP/1.1\r\nHost: gw\r\n"+head+"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
		if resp.StatusCode != http.StatusBadRequest || s.backend.count() != before {
			t.Errorf("%q: %d %q, reached the upstream: %v", head, resp.StatusCode, body, s.backend.count() != before)
		}
	}
	refusing := newStack(t, nil, func(o *Options, _ *upstream.Options) { o.RefuseUnderscoreHeaders = true })
	resp, _ = raw(t, refusing.addr(), "GET /x HTTP/1.1\r\nHost: gw\r\nScript_Name: /x\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != http.StatusBadRequest || refusing.backend.count() != 0 {
		t.Fatalf("refuse mode: %d, upstream hits %d", resp.StatusCode, refusing.backend.count())
	}
}
