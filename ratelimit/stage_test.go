package ratelimit

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/principal"
)

type countObs map[string]int

func (c countObs) ObserveRateLimit(class, outcome string) { c[class+"/"+outcome]++ }

func newStage(t testing.TB, b Backend, l Limits, obs Observer) *Stage {
	t.Helper()
	s, err := NewStage(Options{Backend: b, Limits: l, Secret: []byte("0123456789abcdef0123"), Observer: obs,
		ClientIP: func(r *http.Request) netip.Addr { return netip.MustParseAddrPort(r.RemoteAddr).Addr() }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func formLogin(ip, user string, cookies ...*http.Cookie) (*http.Request, *principal.Exchange) {
	r := httptest.NewRequest(http.MethodPost, "/login/", strings.NewReader(url.Values{"username": {user}, "password": {"guess"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = ip + ":1234"
	for _, c := range cookies {
		r.AddCookie(c)
	}
	x := &principal.Exchange{}
	return r.WithContext(principal.WithExchange(r.Context(), x)), x
}

// answer plays Superset's answer to a form sign-in through the hook.
func answer(t *testing.T, s *Stage, r *http.Request, to string) *http.Response {
	t.Helper()
	resp := &http.Response{StatusCode: http.StatusFound, Header: http.Header{"Location": {to}}, Request: r}
	if err := s.ModifyResponse(resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

// A brute force on one username from many addresses: after the failure
// budget the username is throttled for every new address, while the
// owner's browser, holding the known-device cookie of an earlier sign-in,
// still gets through; the body still reaches Superset intact.
func TestStageCredentialStuffing(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	obs := countObs{}
	s := newStage(t, NewRedis(client(t, srv)), Limits{
		LoginAddress:  Limit{Rate: 100, Period: time.Minute, Burst: 100},
		LoginUsername: Limit{Rate: 100, Period: time.Minute, Burst: 100},
		LoginFailures: Limit{Rate: 3, Period: 15 * time.Minute, Burst: 3},
	}, obs)
	ctx := context.Background()

	// The owner signs in once: the answer carries the known-device cookie.
	r, x := formLogin("192.0.2.1", "Alice")
	if ref := s.Check(ctx, r, x); ref != nil {
		t.Fatal("first sign-in refused")
	}
	resp := answer(t, s, r, "/superset/welcome/")
	var device *http.Cookie
	for _, c := range (&http.Response{Header: resp.Header}).Cookies() {
		if c.Name == DeviceCookie {
			device = c
		}
	}
	if device == nil || !device.HttpOnly || strings.Contains(device.Value, "alice") {
		t.Fatalf("known-device cookie %+v", device)
	}

	refused := 0
	for i := range 10 {
		r, x := formLogin(fmt.Sprintf("198.51.100.%d", i+1), "alice") // case-folded like FAB
		ref := s.Check(ctx, r, x)
		if ref != nil {
			refused++
			if ref.Reason != policy.ReasonLoginThrottled {
				t.Fatalf("reason %s", ref.Reason)
			}
			ra := ref.Header.Get("Retry-After")
			if ra == "" || ra == "0" || strings.HasPrefix(ra, "-") {
				t.Fatalf("Retry-After %q", ra)
			}
			if !strings.HasPrefix(ref.Header.Get("RateLimit-Policy"), `"login_failures";q=3;w=900`) {
				t.Fatalf("RateLimit-Policy %q", ref.Header.Get("RateLimit-Policy"))
			}
			continue
		}
		if body := readAll(t, r); !strings.Contains(body, "username=alice") {
			t.Fatalf("Superset would get body %q", body)
		}
		answer(t, s, r, "/login/")
	}
	if refused != 7 {
		t.Fatalf("%d of 10 attempts refused after 3 failures, want 7", refused)
	}
	// Another address without the cookie: throttled. With it: let through.
	r, x = formLogin("203.0.113.9", "alice")
	if s.Check(ctx, r, x) == nil {
		t.Fatal("attacker without the cookie let through")
	}
	r, x = formLogin("192.0.2.1", "alice", device)
	if ref := s.Check(ctx, r, x); ref != nil {
		t.Fatalf("owner with the known-device cookie refused: %+v", ref)
	}
	// A forged cookie is no device.
	forged := *device
	forged.Value = device.Value[:len(device.Value)-4] + "AAAA"
	r, x = formLogin("203.0.113.9", "alice", &forged)
	if s.Check(ctx, r, x) == nil {
		t.Fatal("forged known-device cookie accepted")
	}
	// The attacker also spends the per-username attempt bucket; the
	// owner's known browser is spared it too.
	for i := range 200 {
		r, x := formLogin(fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), "alice")
		_ = s.Check(ctx, r, x)
	}
	r, x = formLogin("192.0.2.1", "alice", device)
	if ref := s.Check(ctx, r, x); ref != nil {
		t.Fatalf("owner refused after the attempt bucket was spent: %+v", ref)
	}
	// The username is never a key in Redis.
	keys, err := srv.Do("KEYS", "*")
	if err != nil || strings.Contains(strings.ToLower(keys), "alice") {
		t.Fatalf("keys %q %v", keys, err)
	}
}

// One address trying many distinct usernames is capped by the per-address
// sign-in class, so it cannot create unbounded per-username keys.
func TestStageDistinctUsernamesCapped(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStage(t, NewRedis(client(t, srv)), Limits{
		LoginAddress:  Limit{Rate: 5, Period: time.Minute, Burst: 5},
		LoginUsername: Limit{Rate: 5, Period: time.Minute, Burst: 5},
		LoginFailures: Limit{Rate: 3, Period: 15 * time.Minute, Burst: 3},
	}, nil)
	ctx := context.Background()
	passed := 0
	for i := range 200 {
		r, x := formLogin("192.0.2.7", fmt.Sprintf("user%d-%s", i, strings.Repeat("é", i)))
		if s.Check(ctx, r, x) == nil {
			passed++
		}
	}
	if passed != 5 {
		t.Fatalf("%d distinct usernames passed from one address, want 5", passed)
	}
	n, err := srv.Do("DBSIZE")
	if err != nil || n != "6" { // 1 address bucket + 5 username buckets
		t.Fatalf("DBSIZE %q %v: keys grew with the usernames tried", n, err)
	}
}

func TestStageAPIAndRetryAfter(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStage(t, NewRedis(client(t, srv)), Limits{API: Limit{Rate: 2, Period: time.Second, Burst: 2}}, nil)
	ctx := context.Background()
	var last *Refusal
	for range 3 {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/chart/", nil)
		r.RemoteAddr = "192.0.2.1:1"
		last = s.Check(ctx, r, &principal.Exchange{Principal: principal.Principal{Kind: principal.APIJWT, UserID: "7"}})
	}
	if last == nil || last.Reason != policy.ReasonRateLimited || last.Header.Get("Retry-After") != "1" {
		t.Fatalf("third call in a second: %+v", last)
	}
	// Another user has a bucket of their own.
	r := httptest.NewRequest(http.MethodGet, "/api/v1/chart/", nil)
	r.RemoteAddr = "192.0.2.1:1"
	if ref := s.Check(ctx, r, &principal.Exchange{Principal: principal.Principal{Kind: principal.APIJWT, UserID: "8"}}); ref != nil {
		t.Fatal("user 8 refused for user 7's calls")
	}
}

func TestSecondsNeverZero(t *testing.T) {
	for _, d := range []time.Duration{-time.Hour, -1, 0, 1, time.Millisecond, time.Second, time.Second + 1} {
		if got := seconds(d); got < 1 {
			t.Fatalf("seconds(%v) = %d", d, got)
		}
	}
	if seconds(time.Second+1) != 2 {
		t.Fatal("must round up")
	}
}

func readAll(t *testing.T, r *http.Request) string {
	t.Helper()
	var b strings.Builder
	if _, err := fmt.Fprint(&b, mustRead(r)); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	r.Body = http.NoBody
	return s
}

func mustRead(r *http.Request) string {
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := r.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String()
		}
	}
}

// Flask-WTF reads a JSON body as the login form when there are no form
// fields: POST /login/ with JSON must count against the username too.
func TestStageFormLoginJSONBody(t *testing.T) {
	s := newStage(t, NewMemory(0, nil), Limits{LoginUsername: Limit{Rate: 1, Period: time.Hour, Burst: 1}}, nil)
	ctx := context.Background()
	var refused int
	for i := range 3 {
		r := httptest.NewRequest(http.MethodPost, "/login/", strings.NewReader(`{"username":"Alice","password":"x"}`))
		r.Header.Set("Content-Type", "application/json")
		r.RemoteAddr = fmt.Sprintf("192.0.2.%d:1", i+1)
		x := &principal.Exchange{}
		if s.Check(ctx, r, x) != nil {
			refused++
		}
	}
	if refused != 2 {
		t.Fatalf("%d of 3 JSON form sign-ins on one username refused, want 2", refused)
	}
}

// The anonymous-session class (the vault asks it before creating one):
// shared by two stages on one Redis, per address, IPv6 by its /64.
func TestStageAnonymousSessions(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	l := Limits{AnonymousSession: Limit{Rate: 2, Period: time.Minute, Burst: 2}}
	a, b := newStage(t, NewRedis(client(t, srv)), l, nil), newStage(t, NewRedis(client(t, srv)), l, nil)
	ctx := context.Background()
	ip := netip.MustParseAddr("2001:db8:1:2::1")
	if !a.AllowAnonymous(ctx, ip) || !b.AllowAnonymous(ctx, netip.MustParseAddr("2001:db8:1:2::ffff")) {
		t.Fatal("first two refused")
	}
	if a.AllowAnonymous(ctx, netip.MustParseAddr("2001:db8:1:2:abcd::9")) {
		t.Fatal("a third session from the same /64 on another replica allowed")
	}
	if !b.AllowAnonymous(ctx, netip.MustParseAddr("2001:db8:1:3::1")) {
		t.Fatal("another /64 refused")
	}
}
