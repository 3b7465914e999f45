package accesstoken_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/superset/apijwt"
)

const day = 24 * time.Hour

func backends(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range []backend{boltBackend, redisBackend} {
		t.Run(string(b), func(t *testing.T) { f(t, b) })
	}
}

// jwtUser verifies the Bearer JWT the fake received and returns its
// subject.
func jwtUser(t *testing.T, auth string, now time.Time) string {
	t.Helper()
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || strings.HasPrefix(tok, accesstoken.Prefix) {
		t.Fatalf("Superset got Authorization %q, want a minted JWT", auth)
	}
	c, err := apijwt.Verifier{Key: []byte(secretKey)}.Verify(tok, apijwt.Access, now)
	if err != nil {
		t.Fatalf("the minted JWT does not verify: %v", err)
	}
	return c.Subject
}

func TestTokenReachesSupersetAsOwner(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		g := e.gateway(gwOpts{})
		tok := g.create(alice, []string{policy.ScopeAPIRead}, day)

		r := g.withToken("GET", "/api/v1/me/", tok)
		if r.StatusCode != http.StatusOK || !strings.Contains(r.body, `"username":"alice"`) {
			t.Fatalf("GET /api/v1/me/ = %d %s", r.StatusCode, r.body)
		}
		seen := e.ss.requests("/api/v1/me/")
		if len(seen) != 1 {
			t.Fatalf("fake saw %d requests", len(seen))
		}
		if sub := jwtUser(t, seen[0].Auth, e.clk.Now()); sub != alice.ID {
			t.Fatalf("JWT subject %q, want %q", sub, alice.ID)
		}
		if seen[0].Cookie != "" {
			t.Fatalf("a read carried a cookie upstream: %q", seen[0].Cookie)
		}
		// The minted JWT is reused while it lives.
		g.withToken("GET", "/api/v1/me/", tok)
		seen = e.ss.requests("/api/v1/me/")
		if seen[0].Auth != seen[1].Auth {
			t.Error("a new JWT was minted for the second request")
		}
		e.clk.Advance(5 * time.Minute)
		g.withToken("GET", "/api/v1/me/", tok)
		seen = e.ss.requests("/api/v1/me/")
		if seen[2].Auth == seen[1].Auth {
			t.Error("the JWT was reused past its lifetime")
		}
		jwtUser(t, seen[2].Auth, e.clk.Now())
		if n := g.obs.get(policy.ScopeAPIRead + "|allowed"); n != 3 {
			t.Errorf("allowed count = %d", n)
		}
		// Token traffic never touches a browser session: a gateway cookie
		// sent along (here a dead one, which the session layer would
		// clear) is neither read nor answered.
		r = g.withToken("GET", "/api/v1/me/", tok, "Cookie", g.vault.CookieName()+"=bogus")
		if r.StatusCode != http.StatusOK || len(r.Header.Values("Set-Cookie")) != 0 {
			t.Fatalf("token + dead gateway cookie: %d, Set-Cookie %q", r.StatusCode, r.Header.Values("Set-Cookie"))
		}
		// Superset setting its session cookie on a token request (the
		// CSRF endpoint does) creates no gateway session either
		// (session.Options.IsGuest sees FromContext).
		r = g.withToken("GET", accesstoken.CSRFTokenPath, tok)
		if r.StatusCode != http.StatusOK || len(r.Header.Values("Set-Cookie")) != 0 {
			t.Fatalf("csrf endpoint with a token: %d, Set-Cookie %q", r.StatusCode, r.Header.Values("Set-Cookie"))
		}
		// Admin's dashboards:read token reads the dashboard.
		at := g.create(adminUser, []string{policy.ScopeDashboardsRead}, day)
		if r := g.withToken("GET", "/api/v1/dashboard/1", at); r.StatusCode != http.StatusOK {
			t.Fatalf("dashboard = %d %s", r.StatusCode, r.body)
		}
	})
}

func TestOutOfScopeAndPagesNeverReachSuperset(t *testing.T) {
	e := newEnv(t, boltBackend)
	g := e.gateway(gwOpts{})
	tok := g.create(alice, []string{policy.ScopeMetadataRead}, day)
	for _, c := range []struct {
		method, path, msg, outcome string
	}{
		{"GET", "/api/v1/me/", "Access token lacks the scope api:read", "api:read|missing_scope:api:read"},
		{"POST", "/api/v1/sqllab/execute/", "Access token lacks the scope sqllab:execute", "sqllab:execute|missing_scope:sqllab:execute"},
		{"PUT", "/api/v1/me/", "No access-token scope allows this request", "none|no_scope"},
		{"GET", "/superset/welcome/", "Access tokens cannot open browser pages", "none|not_api"},
		{"GET", "/", "Access tokens cannot open browser pages", "none|not_api"},
		{"GET", "/users/list/", "Access tokens cannot open browser pages", "none|not_api"},
		{"GET", "/api/v1/chart/1/data/", "Access token lacks the scope chart-data:read", "chart-data:read|missing_scope:chart-data:read"},
	} {
		before := len(e.ss.requests(""))
		r := g.withToken(c.method, c.path, tok)
		if r.StatusCode != http.StatusForbidden || r.msg() != c.msg {
			t.Errorf("%s %s = %d %q, want 403 %q", c.method, c.path, r.StatusCode, r.msg(), c.msg)
		}
		if after := len(e.ss.requests("")); after != before {
			t.Errorf("%s %s reached Superset", c.method, c.path)
		}
		if g.obs.get(c.outcome) == 0 {
			t.Errorf("%s %s: no %s observation", c.method, c.path, c.outcome)
		}
	}
	if len(e.aud.find("access_token.refused", "missing_scope:api:read")) == 0 {
		t.Error("no refusal audit event naming the scope")
	}
}

// A read scope cannot be stretched by path tricks: dot segments, encoded
// dots and slashes, doubled slashes. The gateway judges the path it sends,
// so each is either refused or judged (and refused) as where it leads.
func TestPathTricksCannotWidenAScope(t *testing.T) {
	e := newEnv(t, boltBackend)
	g := e.gateway(gwOpts{})
	tok := g.create(alice, []string{policy.ScopeDashboardsRead}, day)
	for _, p := range []string{
		"/api/v1/dashboard/../security/users/",
		"/api/v1/dashboard/%2e%2e/security/users/",
		"/api/v1/dashboard/%2E%2E%2Fsecurity/users/",
		"/api/v1/dashboard/..%2fsecurity/users/",
		"/api/v1/dashboard//..//security/users/",
		"/api/v1/dashboard/./../security/users/",
		"/api/v1/dashboard/%252e%252e/security/users/",
	} {
		before := len(e.ss.requests(""))
		r := g.withToken("GET", p, tok)
		if r.StatusCode != http.StatusForbidden && r.StatusCode != http.StatusBadRequest && r.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s with a dashboards:read token = %d %q, want a refusal", p, r.StatusCode, r.msg())
		}
		for _, q := range e.ss.requests("")[before:] {
			if !strings.HasPrefix(q.Path, "/api/v1/dashboard/") {
				t.Errorf("GET %s reached Superset as %s", p, q.Path)
			}
		}
	}
}

func TestRefusals(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		g := e.gateway(gwOpts{})
		ctx := context.Background()
		good := g.create(alice, []string{policy.ScopeAPIRead}, day)
		id, _, err := accesstoken.Parse(good)
		if err != nil {
			t.Fatal(err)
		}
		flipped := good[:len(good)-1] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", good[len(good)-1])+1)%16])
		wrongSecret := resum(accesstoken.Prefix + id + "_" + strings.Repeat("a", accesstoken.SecretLen))
		unknown := resum(accesstoken.Prefix + strings.Repeat("b", accesstoken.IDLen) + "_" + strings.Repeat("c", accesstoken.SecretLen))
		outside := g.create(alice, []string{policy.ScopeAPIRead}, day, "10.0.0.0/8", "2001:db8::/32")
		inside := g.create(alice, []string{policy.ScopeAPIRead}, day, "127.0.0.0/8")

		check := func(name, tok string, status int, reason policy.Reason) {
			t.Helper()
			before := len(e.ss.requests(""))
			r := g.withToken("GET", "/api/v1/me/", tok)
			if r.StatusCode != status {
				t.Errorf("%s: %d %s, want %d", name, r.StatusCode, r.body, status)
			}
			if status != http.StatusOK && len(e.ss.requests("")) != before {
				t.Errorf("%s: refused request reached Superset", name)
			}
			if reason != "" && len(e.aud.find("access_token.refused", string(reason))) == 0 {
				t.Errorf("%s: no audit event with reason %s", name, reason)
			}
		}
		check("malformed", "sgw_nope", http.StatusUnauthorized, policy.ReasonMalformed)
		check("bad checksum", flipped, http.StatusUnauthorized, policy.ReasonBadChecksum)
		check("wrong secret", wrongSecret, http.StatusUnauthorized, policy.ReasonBadSecret)
		check("unknown id", unknown, http.StatusUnauthorized, policy.ReasonUnknownToken)
		check("outside CIDR", outside, http.StatusForbidden, policy.ReasonCIDR)
		check("inside CIDR", inside, http.StatusOK, "")
		check("good", good, http.StatusOK, "")

		// Two credentials, or the token somewhere else in the header.
		for _, h := range []string{"Bearer " + good + ", Bearer x", "Basic eA==, Bearer " + good, "Bearer  " + good} {
			r := g.do("GET", "/api/v1/me/", nil, "Authorization", h)
			if r.StatusCode != http.StatusUnauthorized {
				t.Errorf("Authorization %q: %d", h[:12], r.StatusCode)
			}
		}
		// Two Authorization fields: request hygiene refuses them (400).
		r := g.do("GET", "/api/v1/me/", nil, "Authorization", "Bearer "+good, "Authorization", "Bearer "+good)
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("two Authorization headers: %d", r.StatusCode)
		}

		// The owner's epoch after creation kills it; a token created
		// after the epoch lives.
		e.clk.Advance(time.Millisecond)
		if _, err := g.epochs.Stamp(ctx, alice.ID, epoch.Reason{Trigger: epoch.TriggerUserDisabled}); err != nil {
			t.Fatal(err)
		}
		check("owner epoch", good, http.StatusUnauthorized, policy.ReasonRevokedUser)
		e.clk.Advance(time.Millisecond)
		fresh := g.create(alice, []string{policy.ScopeAPIRead}, day)
		check("after epoch", fresh, http.StatusOK, "")

		// Expired.
		short := g.create(bob, []string{policy.ScopeAPIRead}, time.Hour)
		check("before expiry", short, http.StatusOK, "")
		e.clk.Advance(time.Hour)
		check("expired", short, http.StatusUnauthorized, policy.ReasonExpired)

		// Revoked.
		if err := g.m.Revoke(ctx, mustID(t, fresh), "user:"+alice.ID); err != nil {
			t.Fatal(err)
		}
		check("revoked", fresh, http.StatusUnauthorized, policy.ReasonTokenRevoked)
		if evs := e.aud.find("access_token.revoked", ""); len(evs) != 1 || evs[0].Actor != "user:2" {
			t.Errorf("revoke audit events = %+v", evs)
		}
	})
}

func mustID(t *testing.T, tok string) string {
	t.Helper()
	id, _, err := accesstoken.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// resum gives body a valid checksum, as an attacker who knows the format
// can.
func resum(body string) string {
	return accesstoken.WithChecksumForTest(body)
}

func TestRevocationReachesOtherReplica(t *testing.T) {
	e := newEnv(t, redisBackend)
	a := e.gateway(gwOpts{})
	// b shares Redis through its own client; c never subscribes, so only
	// its cache TTL bounds how long it trusts what it read.
	b := e.gateway(gwOpts{store: e.redisClient()})
	c := e.gateway(gwOpts{store: e.redisClient(), noStart: true, cacheTTL: 30 * time.Second})
	tok := a.create(alice, []string{policy.ScopeAPIRead}, day)
	for _, g := range []*tgw{a, b, c} {
		if r := g.withToken("GET", "/api/v1/me/", tok); r.StatusCode != http.StatusOK {
			t.Fatalf("before revoke: %d", r.StatusCode)
		}
	}
	if err := a.m.Revoke(context.Background(), mustID(t, tok), "admin-token:ci"); err != nil {
		t.Fatal(err)
	}
	if r := a.withToken("GET", "/api/v1/me/", tok); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("revoking replica: %d", r.StatusCode)
	}
	eventually(t, "the other replica to refuse", func() bool {
		return b.withToken("GET", "/api/v1/me/", tok).StatusCode == http.StatusUnauthorized
	})
	if r := c.withToken("GET", "/api/v1/me/", tok); r.StatusCode != http.StatusOK {
		t.Fatalf("unsubscribed replica within its cache TTL: %d (expected the cached record)", r.StatusCode)
	}
	e.clk.Advance(30 * time.Second)
	if r := c.withToken("GET", "/api/v1/me/", tok); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsubscribed replica after its cache TTL: %d", r.StatusCode)
	}
}

func TestCSRFWritesAndStoreHoldsNoSecrets(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		g := e.gateway(gwOpts{})
		tok := g.create(alice, []string{policy.ScopeSQLLabExecute}, day)
		// A client-supplied cookie and CSRF header are not passed on.
		bobCookie := g.signIn("bob", "bob-password")
		r := g.withToken("POST", "/api/v1/sqllab/execute/", tok, "Cookie", bobCookie, "X-CSRFToken", "forged")
		if r.StatusCode != http.StatusOK || !strings.Contains(r.body, `"first_name":"SQL"`) || !strings.Contains(r.body, `"username":"alice"`) {
			t.Fatalf("execute = %d %s", r.StatusCode, r.body)
		}
		for _, c := range r.Cookies() {
			t.Errorf("token request got a cookie: %s", c.Name)
		}
		ex := e.ss.requests("/api/v1/sqllab/execute/")
		if len(ex) != 1 || ex[0].CSRF == "" || ex[0].CSRF == "forged" || ex[0].Cookie == "" || strings.Contains(ex[0].Cookie, bobCookie) {
			t.Fatalf("upstream execute = %+v", ex)
		}
		jwtUser(t, ex[0].Auth, e.clk.Now())
		if n := len(e.ss.requests(accesstoken.CSRFTokenPath)); n != 1 {
			t.Fatalf("csrf_token fetched %d times", n)
		}
		// Reused, not fetched again.
		if r := g.withToken("POST", "/api/v1/sqllab/execute/", tok); r.StatusCode != http.StatusOK {
			t.Fatalf("second execute = %d %s", r.StatusCode, r.body)
		}
		if n := len(e.ss.requests(accesstoken.CSRFTokenPath)); n != 1 {
			t.Fatalf("csrf_token fetched %d times", n)
		}
		// A read needs none: no cookie, no CSRF header upstream.
		g.withToken("GET", "/api/v1/sqllab/results/", tok, "X-CSRFToken", "forged", "X-CSRF-Token", "forged", "Cookie", bobCookie)
		if rs := e.ss.requests("/api/v1/sqllab/results/"); len(rs) != 1 || rs[0].CSRF != "" || rs[0].CSRF2 != "" || rs[0].Cookie != "" {
			t.Fatalf("results upstream = %+v", rs)
		}

		_, secret, _ := accesstoken.Parse(tok)
		cookieVal := ex[0].Cookie[strings.IndexByte(ex[0].Cookie, '=')+1:]
		raw := e.rawBytes()
		for name, s := range map[string]string{"token": tok, "secret": secret, "csrf token": ex[0].CSRF, "session cookie": cookieVal} {
			if bytes.Contains(raw, []byte(s)) {
				t.Errorf("the store's raw bytes contain the %s", name)
			}
		}
		if !bytes.Contains(raw, []byte(accesstoken.RecordKey(mustID(t, tok)))) || !bytes.Contains(raw, []byte(`"owner_name":"alice"`)) {
			t.Error("raw scan found no record at all: the scan is blind")
		}
		// Revocation forgets the upstream credentials.
		if err := g.m.Revoke(context.Background(), mustID(t, tok), "user:2"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.Get(context.Background(), accesstoken.UpstreamKey(mustID(t, tok))); err == nil {
			t.Error("upstream credentials kept after revocation")
		}
	})
}

func TestSealKeyRotation(t *testing.T) {
	e := newEnv(t, boltBackend)
	ctx := context.Background()
	old, next, other := sealKey(1), sealKey(2), sealKey(3)
	g1 := e.gateway(gwOpts{sealKeys: [][]byte{old}})
	tok := g1.create(alice, []string{policy.ScopeSQLLabExecute}, day)
	key := accesstoken.UpstreamKey(mustID(t, tok))
	prefix := func(k []byte) string {
		s, _ := accesstoken.NewSealer([][]byte{k})
		return s.KeyID() + ":"
	}
	stored := func() []byte {
		b, err := e.st.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	execute := func(g *tgw) {
		t.Helper()
		if r := g.withToken("POST", "/api/v1/sqllab/execute/", tok); r.StatusCode != http.StatusOK {
			t.Fatalf("execute = %d %s", r.StatusCode, r.body)
		}
	}
	execute(g1)
	if !bytes.HasPrefix(stored(), []byte(prefix(old))) {
		t.Fatal("not sealed with the only key")
	}
	csrf1 := e.ss.requests("/api/v1/sqllab/execute/")[0].CSRF

	// New key first: the old value opens and is re-sealed with the new.
	g2 := e.gateway(gwOpts{sealKeys: [][]byte{next, old}})
	execute(g2)
	if !bytes.HasPrefix(stored(), []byte(prefix(next))) {
		t.Fatal("not re-sealed with the newest key")
	}
	if n := len(e.ss.requests(accesstoken.CSRFTokenPath)); n != 1 {
		t.Fatalf("rotation re-fetched the CSRF token (%d fetches)", n)
	}
	if got := e.ss.requests("/api/v1/sqllab/execute/")[1].CSRF; got != csrf1 {
		t.Fatal("rotation changed the CSRF token")
	}
	// The old key retired: the value still opens with the new one alone.
	g3 := e.gateway(gwOpts{sealKeys: [][]byte{next}})
	execute(g3)
	// Every key lost: the value is obtained again and sealed anew.
	g4 := e.gateway(gwOpts{sealKeys: [][]byte{other}})
	execute(g4)
	if n := len(e.ss.requests(accesstoken.CSRFTokenPath)); n != 2 {
		t.Fatalf("unknown key: %d fetches, want 2", n)
	}
	if !bytes.HasPrefix(stored(), []byte(prefix(other))) {
		t.Fatal("not sealed with the new key after re-obtaining")
	}
	// A value moved to another token's key does not open there.
	tok2 := g4.create(alice, []string{policy.ScopeSQLLabExecute}, day)
	if err := e.st.Set(ctx, accesstoken.UpstreamKey(mustID(t, tok2)), stored(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if r := g4.withToken("POST", "/api/v1/sqllab/execute/", tok2); r.StatusCode != http.StatusOK {
		t.Fatalf("execute tok2 = %d", r.StatusCode)
	}
	if n := len(e.ss.requests(accesstoken.CSRFTokenPath)); n != 3 {
		t.Fatalf("a transplanted sealed value was used (%d fetches)", n)
	}
}

func TestStoreDown503(t *testing.T) {
	e := newEnv(t, redisBackend)
	g := e.gateway(gwOpts{cacheTTL: -1})
	tok := g.create(alice, []string{policy.ScopeAPIRead}, day)
	e.redis.Stop()
	r := g.withToken("GET", "/api/v1/me/", tok)
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("store down: %d %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if len(e.ss.requests("/api/v1/me/")) != 0 {
		t.Fatal("reached Superset with the store down")
	}
}

func TestLastUseAndNewIPAudit(t *testing.T) {
	e := newEnv(t, boltBackend)
	g := e.gateway(gwOpts{})
	tok := g.create(alice, []string{policy.ScopeAPIRead}, day)
	g.withToken("GET", "/api/v1/me/", tok)
	g.withToken("GET", "/api/v1/me/", tok)
	if evs := e.aud.find("access_token.new_ip", ""); len(evs) != 1 || evs[0].IP != "127.0.0.1" {
		t.Fatalf("new_ip events = %+v", evs)
	}
	list, err := g.m.List(context.Background(), alice.ID)
	if err != nil || len(list) != 1 {
		t.Fatal(list, err)
	}
	if list[0].LastUsedIP != "127.0.0.1" || list[0].LastUsed.IsZero() || list[0].Status != "active" {
		t.Fatalf("info = %+v", list[0])
	}
	if evs := e.aud.find("access_token.created", ""); len(evs) != 1 || evs[0].Actor != "user:2" {
		t.Fatalf("created events = %+v", evs)
	}
	b, _ := json.Marshal(list[0])
	if strings.Contains(string(b), "mac") {
		t.Fatal("Info exposes the MAC")
	}
}

func TestCreatePolicy(t *testing.T) {
	e := newEnv(t, boltBackend)
	g := e.gateway(gwOpts{policy: accesstoken.Policy{MaxTTL: 30 * day, MaxPerUser: 2}})
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		scopes []string
		ttl    time.Duration
		cidrs  []string
	}{
		{"", []string{policy.ScopeAPIRead}, day, nil},
		{"x", nil, day, nil},
		{"x", []string{"admin"}, day, nil},
		{"x", []string{policy.ScopeAPIRead}, 31 * day, nil},
		{"x", []string{policy.ScopeAPIRead}, 0, nil},
		{"x", []string{policy.ScopeAPIRead}, day, []string{"not-an-ip"}},
		{"x\x00", []string{policy.ScopeAPIRead}, day, nil},
	} {
		if _, _, err := g.m.Create(ctx, alice, c.name, c.scopes, c.ttl, c.cidrs); !errorsIs(err, accesstoken.ErrInvalid) {
			t.Errorf("Create(%q, %v, %v, %v) = %v, want ErrInvalid", c.name, c.scopes, c.ttl, c.cidrs, err)
		}
	}
	g.create(alice, []string{policy.ScopeAPIRead}, day)
	t2 := g.create(alice, []string{policy.ScopeAPIRead}, day, "192.0.2.7")
	if _, _, err := g.m.Create(ctx, alice, "third", []string{policy.ScopeAPIRead}, day, nil); !errorsIs(err, accesstoken.ErrTooMany) {
		t.Fatalf("third token: %v", err)
	}
	g.create(bob, []string{policy.ScopeAPIRead}, day) // per user
	if err := g.m.Revoke(ctx, mustID(t, t2), "user:2"); err != nil {
		t.Fatal(err)
	}
	g.create(alice, []string{policy.ScopeAPIRead}, day) // a revoked one no longer counts
	all, err := g.m.ListAll(ctx)
	if err != nil || len(all) != 4 {
		t.Fatalf("ListAll = %d %v", len(all), err)
	}
	rec, err := g.m.Get(ctx, mustID(t, t2))
	if err != nil || rec.CIDRs[0] != "192.0.2.7/32" || rec.RevokedBy != "user:2" {
		t.Fatalf("record = %+v %v", rec, err)
	}
}

func TestStaleCSRFCredentialsAreReplaced(t *testing.T) {
	e := newEnv(t, boltBackend)
	g := e.gateway(gwOpts{})
	ctx := context.Background()
	tok := g.create(alice, []string{policy.ScopeSQLLabExecute}, day)
	if r := g.withToken("POST", "/api/v1/sqllab/execute/", tok); r.StatusCode != http.StatusOK {
		t.Fatalf("execute = %d", r.StatusCode)
	}
	// Superset forgets the session (or SECRET_KEY changes): the stored
	// pair no longer matches. Simulated by sealing a wrong CSRF token.
	s, _ := accesstoken.NewSealer([][]byte{sealKey(1)})
	key := accesstoken.UpstreamKey(mustID(t, tok))
	if err := e.st.Set(ctx, key, s.Seal([]byte(`{"csrf":"stale","cookie":"session=stale"}`), key), time.Hour); err != nil {
		t.Fatal(err)
	}
	if r := g.withToken("POST", "/api/v1/sqllab/execute/", tok); r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "CSRF") {
		t.Fatalf("stale execute = %d %s", r.StatusCode, r.body)
	}
	if r := g.withToken("POST", "/api/v1/sqllab/execute/", tok); r.StatusCode != http.StatusOK {
		t.Fatalf("execute after the refusal = %d %s", r.StatusCode, r.body)
	}
	if n := len(e.ss.requests(accesstoken.CSRFTokenPath)); n != 2 {
		t.Fatalf("csrf_token fetched %d times, want 2", n)
	}
}
