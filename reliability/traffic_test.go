package reliability_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/admin"
	"github.com/superset-gateway/superset-gateway/e2e/harness"
	"github.com/superset-gateway/superset-gateway/reliability"
)

// soakUser is a Superset user the soak signs in as.
type soakUser struct{ id, name, password string }

// soakTraffic is the soak's mixed traffic against two replicas, the same
// against the Go fake Superset and the real one: what it sent and saw
// goes into h, requests that failed outside the test's own revocations
// into errs, and each revocation's propagation to the other replica into
// props, by credential kind.
type soakTraffic struct {
	a, b       *replica
	adminToken string
	// admin signs in (API and form) and issues guest tokens; steady is
	// never revoked; victim is revoked every round.
	admin, steady, victim soakUser
	// dashboard is the numeric id of a dashboard with embedding on.
	dashboard string

	h      reliability.History
	client *http.Client
	mu     sync.Mutex
	errs   map[string]int
	props  map[string][]time.Duration
	// guestRevoked is when the last acknowledged guest-token revocation
	// was sent: a steady guest token issued before it may be refused.
	guestRevoked time.Time
	// tokensMade counts access tokens created (their records stay in the
	// store for the retention period, by design).
	tokensMade int
	// embedder is the admin's API client that asks for guest tokens, kept
	// (with its CSRF session) as an embedding app's backend keeps it.
	embedder *harness.API
	// more is traffic runSoak runs besides (the real Superset's browser
	// sign-ins).
	more []func(context.Context)
}

func newSoakTraffic(a, b *replica, adminToken string, adm, steady, victim soakUser, dashboard string) *soakTraffic {
	return &soakTraffic{a: a, b: b, adminToken: adminToken, admin: adm, steady: steady, victim: victim, dashboard: dashboard,
		client: &http.Client{Timeout: 30 * time.Second}, errs: map[string]int{}, props: map[string][]time.Duration{}}
}

func (s *soakTraffic) fail(what string) { s.mu.Lock(); s.errs[what]++; s.mu.Unlock() }

// nextSecond sleeps until the next whole second: credentials issued in
// the second of a revocation stamp are refused (whole-second iat), so
// each step starts in a second of its own.
func nextSecond() { time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second))) }

// cred is one credential of the soak and how a request presents it.
type cred struct {
	name   string // kind, for reports and the failure counts
	user   string // its user id, or "guest"
	under  []string
	issued time.Time
	// set adds the credential to a request to replica base.
	set func(req *http.Request)
	// jar, for a cookie session, holds the gateway cookie (the same on
	// both replicas: one host, any port).
	jar http.CookieJar
}

// use presents c on GET path of base and records the answer.
func (s *soakTraffic) use(base, path string, c *cred) int {
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	if c.set != nil {
		c.set(req)
	}
	cl := s.client
	if c.jar != nil {
		cl = &http.Client{Jar: c.jar, Timeout: s.client.Timeout, CheckRedirect: noRedirect}
	}
	sent := time.Now()
	resp, err := cl.Do(req)
	op := reliability.Op{Kind: reliability.Use, User: c.user, Credential: c.name, Under: c.under, Issued: c.issued, Granularity: time.Second,
		Sent: sent, Done: time.Now()}
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		op.Status = resp.StatusCode
	}
	s.h.Add(op)
	return op.Status
}

// usePath is where a credential is presented: who-am-I for a user's, the
// dashboard for a guest token.
func (s *soakTraffic) usePath(c *cred) string {
	if c.user == "guest" {
		return "/api/v1/dashboard/" + s.dashboard
	}
	return "/api/v1/me/"
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// revoke sends an admin revocation to base and records it under key.
func (s *soakTraffic) revoke(base, method, path, key string) (int, reliability.Op) {
	req, _ := http.NewRequest(method, base+admin.APIPrefix+path, strings.NewReader(`{"reason":"soak"}`))
	req.Header.Set("Authorization", "Bearer "+s.adminToken)
	req.Header.Set("Content-Type", "application/json")
	sent := time.Now()
	resp, err := s.client.Do(req)
	op := reliability.Op{Kind: reliability.Revoke, User: key, Sent: sent, Done: time.Now()}
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		op.Status = resp.StatusCode
	}
	s.h.Add(op)
	return op.Status, op
}

// iat reads a JWT's issued-at claim (the token is the test's own).
func iat(jwt string) time.Time {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var c struct {
		IAT float64 `json:"iat"`
	}
	if json.Unmarshal(b, &c) != nil || c.IAT == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(c.IAT * 1000))
}

// apiLogin signs u in on base's /api/v1/security/login: an API JWT.
func (s *soakTraffic) apiLogin(base string, u soakUser) (*cred, error) {
	body, _ := json.Marshal(map[string]any{"username": u.name, "password": u.password, "provider": "db", "refresh": false})
	resp, err := s.client.Post(base+"/api/v1/security/login", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("api login: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if json.NewDecoder(resp.Body).Decode(&out) != nil || out.AccessToken == "" {
		return nil, fmt.Errorf("api login: %d", resp.StatusCode)
	}
	issued := iat(out.AccessToken)
	if issued.IsZero() {
		return nil, fmt.Errorf("api login: no iat")
	}
	return &cred{name: "API JWT", user: u.id, issued: issued, set: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+out.AccessToken) }}, nil
}

var csrfInput = regexp.MustCompile(`<input\s[^>]*name="csrf_token"[^>]*value="([^"]+)"`)

// cookieLogin signs u in through base's login form, as a browser does:
// a gateway cookie session.
func (s *soakTraffic) cookieLogin(base string, u soakUser) (*cred, error) {
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar, Timeout: s.client.Timeout, CheckRedirect: noRedirect}
	resp, err := cl.Get(base + "/login/")
	if err != nil {
		return nil, fmt.Errorf("login page: %w", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfInput.FindSubmatch(page)
	if m == nil {
		return nil, fmt.Errorf("login page: %d, no csrf_token", resp.StatusCode)
	}
	resp, err = cl.PostForm(base+"/login/", url.Values{"username": {u.name}, "password": {u.password}, "csrf_token": {string(m[1])}})
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	resp.Body.Close()
	// The session is made while the form is answered: its answer's time
	// bounds the issue time from above, which is what the checker needs.
	done := time.Now()
	if resp.StatusCode != http.StatusFound {
		return nil, fmt.Errorf("login: %d", resp.StatusCode)
	}
	return &cred{name: "cookie session", user: u.id, issued: done, jar: jar}, nil
}

// logout ends a cookie session on base.
func (s *soakTraffic) logout(base string, c *cred) error {
	cl := &http.Client{Jar: c.jar, Timeout: s.client.Timeout, CheckRedirect: noRedirect}
	resp, err := cl.Get(base + "/logout/")
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return fmt.Errorf("logout: %d", resp.StatusCode)
	}
	return nil
}

var tokenPattern = regexp.MustCompile(accesstoken.Pattern)

// createToken makes an access token (api:read) on base's /-/tokens with
// the cookie session c, as its user would; its key is "token:<id>".
func (s *soakTraffic) createToken(base string, c *cred) (*cred, string, error) {
	cl := &http.Client{Jar: c.jar, Timeout: s.client.Timeout, CheckRedirect: noRedirect}
	resp, err := cl.PostForm(base+"/-/tokens/create", url.Values{"name": {"soak"}, "scope": {"api:read"}, "ttl": {"86400"}})
	if err != nil {
		return nil, "", fmt.Errorf("token: %w", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	done := time.Now()
	tok := tokenPattern.FindString(string(page))
	if resp.StatusCode != http.StatusOK || tok == "" {
		return nil, "", fmt.Errorf("token: %d", resp.StatusCode)
	}
	s.mu.Lock()
	s.tokensMade++
	s.mu.Unlock()
	id := strings.Split(tok, "_")[1]
	return &cred{name: "access token", user: c.user, under: []string{"token:" + id}, issued: done,
		set: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }}, id, nil
}

// guestToken asks base's POST /api/v1/security/guest_token/ (as the admin,
// the embedding app's backend) for a token of the dashboard.
func (s *soakTraffic) guestToken(ctx context.Context, base string) (*cred, error) {
	// The run's end does not cut a request short: it would count as a
	// failure the gateway did not cause.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	s.mu.Lock()
	api, made := s.embedder, time.Time{}
	s.mu.Unlock()
	var r struct {
		Token string `json:"token"`
	}
	ask := func() error {
		return api.Do(ctx, http.MethodPost, "/api/v1/security/guest_token/", map[string]any{
			"user":      map[string]any{"username": "soak-embedder", "first_name": "Soak", "last_name": "Embedder"},
			"resources": []map[string]any{{"type": "dashboard", "id": s.dashboard}},
			"rls":       []any{},
		}, &r)
	}
	// A new client when there is none or its JWT (15 minutes) has run
	// out.
	if api == nil || ask() != nil {
		var err error
		if api, err = harness.NewAPI(ctx, base, s.admin.name, s.admin.password); err != nil {
			return nil, fmt.Errorf("guest token: %w", err)
		}
		if err := api.FetchCSRF(ctx); err != nil {
			return nil, fmt.Errorf("guest token: %w", err)
		}
		if err := ask(); err != nil {
			return nil, fmt.Errorf("guest token: %w", err)
		}
		made = time.Now()
	}
	if !made.IsZero() {
		s.mu.Lock()
		s.embedder = api
		s.mu.Unlock()
	}
	issued := iat(r.Token)
	if issued.IsZero() {
		return nil, fmt.Errorf("guest token: no iat")
	}
	tok := r.Token
	return &cred{name: "guest token", user: "guest", under: []string{"guest-dashboard:" + s.dashboard, "guest-all"}, issued: issued,
		set: func(r *http.Request) { r.Header.Set("X-GuestToken", tok) }}, nil
}

// propagate asks b with each credential until it refuses it (4xx) and
// records, per kind, how long after the acknowledgement that was.
func (s *soakTraffic) propagate(ack time.Time, label string, creds ...*cred) {
	left := append([]*cred(nil), creds...)
	for len(left) > 0 {
		var still []*cred
		for _, c := range left {
			if code := s.use(s.b.base, s.usePath(c), c); code >= 400 && code < 500 {
				s.mu.Lock()
				s.props[label+c.name] = append(s.props[label+c.name], time.Since(ack))
				s.mu.Unlock()
				continue
			}
			still = append(still, c)
		}
		left = still
		if len(left) > 0 && time.Since(ack) > 10*time.Second {
			s.fail(fmt.Sprintf("%s%s revocation not enforced on the other replica within 10s", label, left[0].name))
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// round issues the victim's credentials of every kind on a, checks them on
// b, revokes them on a (an access token by its id, then the user, then a
// guest token by its dashboard or all guest tokens) and times until b
// refuses each.
func (s *soakTraffic) round(ctx context.Context, n int) {
	nextSecond()
	jwt, err := s.apiLogin(s.a.base, s.victim)
	if err != nil {
		s.fail("victim " + err.Error())
		return
	}
	sess, err := s.cookieLogin(s.a.base, s.victim)
	if err != nil {
		s.fail("victim " + err.Error())
		return
	}
	tokByID, idA, err := s.createToken(s.a.base, sess)
	if err != nil {
		s.fail("victim " + err.Error())
		return
	}
	tokByUser, idB, err := s.createToken(s.a.base, sess)
	if err != nil {
		s.fail("victim " + err.Error())
		return
	}
	for _, c := range []*cred{jwt, sess, tokByID, tokByUser} {
		if code := s.use(s.b.base, s.usePath(c), c); code != http.StatusOK {
			s.fail(fmt.Sprintf("victim's %s before revocation: %d", c.name, code))
			return
		}
	}
	nextSecond()
	if code, op := s.revoke(s.a.base, http.MethodDelete, "tokens/"+idA, "token:"+idA); code == http.StatusOK {
		s.propagate(op.Done, "by id: ", tokByID)
	} else {
		s.fail(fmt.Sprintf("token revoke: %d", code))
	}
	nextSecond()
	if code, op := s.revoke(s.a.base, http.MethodPost, "users/"+s.victim.id+"/revoke", s.victim.id); code == http.StatusOK {
		s.propagate(op.Done, "user: ", jwt, sess, tokByUser)
	} else {
		s.fail(fmt.Sprintf("user revoke: %d", code))
	}
	// The token ended by the user's epoch is revoked by id too, so that
	// the victim's live tokens stay under access_tokens.max_per_user.
	if code, _ := s.revoke(s.a.base, http.MethodDelete, "tokens/"+idB, "token:"+idB); code != http.StatusOK {
		s.fail(fmt.Sprintf("token revoke: %d", code))
	}

	g, err := s.guestToken(ctx, s.a.base)
	if err != nil {
		s.fail(err.Error())
		return
	}
	if code := s.use(s.b.base, s.usePath(g), g); code != http.StatusOK {
		s.fail(fmt.Sprintf("guest token before revocation: %d", code))
		return
	}
	nextSecond()
	path, key, label := "dashboards/"+s.dashboard+"/guest-tokens/revoke", "guest-dashboard:"+s.dashboard, "dashboard: "
	if n%2 == 1 {
		path, key, label = "guest-tokens/revoke", "guest-all", "global: "
	}
	code, op := s.revoke(s.a.base, http.MethodPost, path, key)
	if code != http.StatusOK {
		s.fail(fmt.Sprintf("guest revoke: %d", code))
		return
	}
	s.mu.Lock()
	s.guestRevoked = op.Sent
	s.mu.Unlock()
	s.propagate(op.Done, label, g)
}

// steadyTraffic is the traffic of users nobody revokes, spread over both
// replicas at rate requests per second: the steady user's API JWT, cookie
// session and access token, a guest token of the dashboard, and every
// twentieth tick a sign-in of the admin (API or form, in turn) whose
// credential is used at once on the other replica (the form's session is
// then logged out).
func (s *soakTraffic) steadyTraffic(ctx context.Context, rate int) {
	reps := []*replica{s.a, s.b}
	tick := time.Second / time.Duration(max(rate, 1))
	var jwt, sess, tok, guest *cred
	var err error
	renew := time.Time{}
	for i := 0; ctx.Err() == nil; i++ {
		// Superset's access JWTs expire after 15 minutes and its guest
		// tokens after 5: new ones every 4.
		if time.Since(renew) > 4*time.Minute {
			renew, guest = time.Now(), nil
			if jwt, err = s.apiLogin(s.a.base, s.steady); err != nil {
				s.fail("steady " + err.Error())
			}
			if sess == nil {
				if sess, err = s.cookieLogin(s.a.base, s.steady); err != nil {
					s.fail("steady " + err.Error())
				} else if tok, _, err = s.createToken(s.a.base, sess); err != nil {
					s.fail("steady " + err.Error())
				}
			}
		}
		r, other := reps[i%2], reps[(i+1)%2]
		var c *cred
		switch i % 10 {
		case 0:
			s.signIn(r, other, i%20 == 0)
		case 1, 2, 3:
			c = jwt
		case 4, 5, 6:
			c = sess
		case 7, 8:
			c = tok
		case 9:
			if guest == nil {
				if guest, err = s.guestToken(ctx, s.a.base); err != nil {
					s.fail(err.Error())
				}
			}
			c = guest
		}
		if c != nil {
			if code := s.use(r.base, s.usePath(c), c); code != http.StatusOK {
				s.mu.Lock()
				revoked := !s.guestRevoked.IsZero() && !c.issued.After(s.guestRevoked.Add(time.Second))
				s.mu.Unlock()
				if c == guest && code == http.StatusUnauthorized && revoked {
					guest = nil // ended by a round's guest revocation: fetch another
				} else {
					s.fail(fmt.Sprintf("steady %s: %d", c.name, code))
				}
			}
		}
		time.Sleep(tick)
	}
}

// signIn signs the admin in on r (API or form) and uses the credential on
// other; a form session is logged out there.
func (s *soakTraffic) signIn(r, other *replica, api bool) {
	if api {
		c, err := s.apiLogin(r.base, s.admin)
		if err != nil {
			s.fail("admin " + err.Error())
			return
		}
		if code := s.use(other.base, "/api/v1/me/", c); code != http.StatusOK {
			s.fail(fmt.Sprintf("admin API JWT on the other replica: %d", code))
		}
		return
	}
	c, err := s.cookieLogin(r.base, s.admin)
	if err != nil {
		s.fail("admin " + err.Error())
		return
	}
	if code := s.use(other.base, "/api/v1/me/", c); code != http.StatusOK {
		s.fail(fmt.Sprintf("admin cookie session on the other replica: %d", code))
	}
	if err := s.logout(other.base, c); err != nil {
		s.fail("admin " + err.Error())
	}
}
