//go:build e2e

package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/e2e/harness"
)

// Issue 12's canonical request, from the attacker's side against the real
// Superset 6.1.0 behind the real gateway binary: what the gateway decides
// on must be what gunicorn and Superset act on, or the request is refused.

// TestCanonicalScriptName (issue 12, finding 2): gunicorn 23 takes
// SCRIPT_NAME from a header sent by a peer in its forwarded_allow_ips
// (default: loopback, where the gateway is) and strips that prefix from
// the path. A metadata:read token asks for dashboard paths that are data
// once the prefix is gone (a column's values, SQL Lab's bootstrap); it
// must get none.
func TestCanonicalScriptName(t *testing.T) {
	e := shared(t)
	data := e.s.Data()
	if data.DatasetID == 0 {
		t.Fatalf("harness data fixture missing: %+v", data)
	}
	g := startGateway(t, e)
	tg := e.c.Target
	const prefix = "/api/v1/dashboard"
	targets := []string{
		"/api/v1/datasource/table/" + strconv.Itoa(data.DatasetID) + "/column/region/values/",
		"/api/v1/sqllab/",
	}

	// The control: straight at a node, from loopback, gunicorn honours the
	// header, so the attack below is real and not a typo.
	direct := epLogin(t, e.c.Nodes[0].URL, tg.Admin)
	for _, p := range targets {
		code, body := scriptNameGet(t, e.c.Nodes[0].URL, prefix+p, prefix, direct.bearer)
		if code != http.StatusOK || !strings.Contains(body, `"result"`) {
			t.Fatalf("control: %s%s with Script_Name %s straight at gunicorn: %d %.200s; want data", prefix, p, prefix, code, body)
		}
	}

	c := newGWClient(t, g.URL)
	c.login(tg.Alpha)
	meta := formCreate(t, c, "canonical metadata", []string{"metadata:read"}, 24*time.Hour, "")
	for _, p := range targets {
		// Without the header the token is refused, as it should be.
		if code, body := scriptNameGet(t, g.URL, p, "", meta); code != http.StatusForbidden {
			t.Fatalf("%s with the metadata token: %d %.200s; want 403", p, code, body)
		}
		for _, name := range []string{"Script_Name", "SCRIPT_NAME", "script_name"} {
			code, body := scriptNameGetAs(t, g.URL, prefix+p, name, prefix, meta)
			if code == http.StatusOK || strings.Contains(body, `"result"`) {
				t.Errorf("%s: %s with a metadata:read token through the gateway: %d %.300s; want no data", name, prefix+p, code, body)
			}
		}
	}
}

func scriptNameGet(t *testing.T, base, path, scriptName, bearer string) (int, string) {
	t.Helper()
	return scriptNameGetAs(t, base, path, "Script_Name", scriptName, bearer)
}

// scriptNameGetAs sends the header under exactly the given name (Go's
// client would otherwise canonicalise it).
func scriptNameGetAs(t *testing.T, base, path, name, scriptName, bearer string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	if scriptName != "" {
		req.Header[name] = []string{scriptName}
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestCanonicalUnderscoreRemoteUser (issue 12, finding 8): with
// trusted_headers [X-Remote-User], a client outside trusted_proxies sends
// X_Remote_User. gunicorn 23's default header_map (drop) discards it, but
// a backend that maps '_' and '-' alike (gunicorn --header-map dangerous,
// the pre-22 behaviour, here) turns it into the same WSGI variable as the
// trusted header. The gateway must not forward it: the client stays
// anonymous.
func TestCanonicalUnderscoreRemoteUser(t *testing.T) {
	ps := supersetFor(t, poolKey{methodRemoteUser, backendCookie}) // runs --header-map dangerous
	s, c := ps.s, ps.c
	g := gatewayFor(t, s, []string{c.Target.BaseURL}, "trusted_proxies: [127.0.0.1/32]", "trusted_headers: ["+remoteUserHeader+"]")

	// The control: straight at the node the underscore spelling signs in.
	jar, _ := cookiejar.New(nil)
	node := &http.Client{Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, c.Target.BaseURL+"/login/", nil)
	req.Header["X_Remote_User"] = []string{c.Target.Admin.Username}
	if resp, err := node.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	if user := supersetUser(t, node, c.Target.BaseURL); user != c.Target.Admin.Username {
		t.Fatalf("control: X_Remote_User straight at gunicorn --header-map dangerous signed in %q, want %s", user, c.Target.Admin.Username)
	}

	for _, name := range []string{"X_Remote_User", "X-Remote_User", "X_REMOTE_USER"} {
		direct := newGWClient(t, g.URL)
		direct.c.Transport = &http.Transport{DialContext: (&net.Dialer{
			LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")},
		}).DialContext}
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/login/", nil)
		req.Header[name] = []string{c.Target.Admin.Username}
		resp, _ := direct.do(req)
		if code, user := meAs(t, g.URL, direct.session()); code != http.StatusUnauthorized {
			t.Errorf("%s: %s from outside trusted_proxies: GET /login/ %d, then /api/v1/me/ %d as %q; want 401",
				name, c.Target.Admin.Username, resp.StatusCode, code, user)
		}
	}
}

// supersetUser asks base's /api/v1/me/ with the Superset session the
// client holds and returns the username ("" when anonymous).
func supersetUser(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	resp, err := c.Get(base + "/api/v1/me/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var me struct {
		Result struct {
			Username string `json:"username"`
		} `json:"result"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&me) != nil {
		return ""
	}
	return me.Result.Username
}

// TestCanonicalDuplicateHeaders (issue 12, finding 1's second shape and
// the single-valued headers in general): Go reads the first of two
// Content-Type or Authorization headers, gunicorn keeps the last. Such a
// request is refused at the wire and never reaches Superset.
func TestCanonicalDuplicateHeaders(t *testing.T) {
	e := shared(t)
	g := startGateway(t, e)
	addr := strings.TrimPrefix(g.URL, "http://")
	mark := canonMark(t)
	cases := []struct{ name, req string }{
		{"Content-Type", "POST /api/v1/canonical-ct-" + mark + "/ HTTP/1.1\r\nHost: gw\r\n" +
			"Content-Type: application/json\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
			"Content-Length: 2\r\nConnection: close\r\n\r\n{}"},
		{"Authorization", "GET /api/v1/canonical-auth-" + mark + "/ HTTP/1.1\r\nHost: gw\r\n" +
			"Authorization: Bearer a.b.c\r\nAuthorization: Basic YTpi\r\nConnection: close\r\n\r\n"},
		{"X-GuestToken", "GET /api/v1/canonical-guest-" + mark + "/ HTTP/1.1\r\nHost: gw\r\n" +
			"X-GuestToken: a\r\nX-Guesttoken: b\r\nConnection: close\r\n\r\n"},
	}
	for _, tc := range cases {
		got := rawExchange(t, addr, tc.req, 1)
		if got[0].status != http.StatusBadRequest {
			t.Errorf("two %s headers through the gateway: %d %.200s; want 400", tc.name, got[0].status, got[0].body)
		}
	}
	// A request after them reaches Superset, so its log is current.
	rawExchange(t, addr, "GET /api/v1/canonical-after-"+mark+"/ HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n", 1)
	logs := waitLogged(t, e.c, "canonical-after-"+mark)
	for _, p := range []string{"canonical-ct-", "canonical-auth-", "canonical-guest-"} {
		if strings.Contains(logs, p+mark) {
			t.Errorf("Superset received the %s… request", p)
		}
	}
}

// TestCanonicalFramingConflict (issue 13's defect): Content-Length with
// Transfer-Encoding is answered 400 by the running gateway binary, on a
// fresh connection and hidden in a pipeline after a well-framed chunked
// request, and Superset never sees it nor what its body smuggles.
func TestCanonicalFramingConflict(t *testing.T) {
	e := shared(t)
	g := startGateway(t, e)
	addr := strings.TrimPrefix(g.URL, "http://")
	mark := canonMark(t)

	smuggled := "GET /api/v1/canonical-smuggled-" + mark + "/ HTTP/1.1\r\nHost: gw\r\n\r\n"
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggled), smuggled)
	conflict := func(tag string) string {
		return "POST /api/v1/canonical-" + tag + "-" + mark + "/ HTTP/1.1\r\nHost: gw\r\n" +
			"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
	}

	got := rawExchange(t, addr, conflict("clte"), 1)
	if got[0].status != http.StatusBadRequest {
		t.Errorf("CL+TE on a fresh connection: %d %.200s; want 400", got[0].status, got[0].body)
	}

	// A pipeline: a plain GET, a well-framed chunked POST, then the
	// conflict hidden after the chunked body.
	pipeline := "GET /api/v1/canonical-first-" + mark + "/ HTTP/1.1\r\nHost: gw\r\n\r\n" +
		"POST /api/v1/canonical-second-" + mark + "/ HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n" +
		"Content-Type: application/json\r\n\r\n2\r\n{}\r\n0\r\n\r\n" +
		conflict("hidden")
	got = rawExchange(t, addr, pipeline, 3)
	if got[0].status == http.StatusBadRequest || got[1].status == http.StatusBadRequest || got[2].status != http.StatusBadRequest {
		t.Errorf("pipeline answers %d, %d, %d; want Superset's two answers, then 400", got[0].status, got[1].status, got[2].status)
	}

	rawExchange(t, addr, "GET /api/v1/canonical-after-"+mark+"/ HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n", 1)
	logs := waitLogged(t, e.c, "canonical-after-"+mark)
	for _, p := range []string{"canonical-first-", "canonical-second-"} {
		if !strings.Contains(logs, p+mark) {
			t.Errorf("Superset did not receive the well-framed %s… request", p)
		}
	}
	for _, p := range []string{"canonical-clte-", "canonical-hidden-", "canonical-smuggled-"} {
		if strings.Contains(logs, p+mark) {
			t.Errorf("Superset received the %s… request", p)
		}
	}
}

type rawAnswer struct {
	status int
	body   string
}

// rawExchange writes req as is on a fresh connection and reads up to n
// answers; a missing answer has status 0.
func rawExchange(t *testing.T, addr, req string, n int) []rawAnswer {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	out := make([]rawAnswer, n)
	for i := range out {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out[i] = rawAnswer{resp.StatusCode, string(b)}
	}
	return out
}

// canonMark is a random tag that makes a test's paths findable in
// Superset's access log.
func canonMark(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// waitLogged waits until some node's access log names marker and returns
// every node's whole log.
func waitLogged(t *testing.T, c *harness.Cluster, marker string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var b strings.Builder
		for _, n := range c.Nodes {
			data, _ := os.ReadFile(n.LogPath)
			b.Write(data)
		}
		if strings.Contains(b.String(), marker) {
			return b.String()
		}
		if time.Now().After(deadline) {
			t.Fatalf("Superset's access log never showed %s", marker)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
