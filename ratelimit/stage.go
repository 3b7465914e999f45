package ratelimit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/sessions"

	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/principal"
	"github.com/superset-gateway/superset-gateway/superset"
)

// Class names, as in config, metrics and the RateLimit-Policy header.
const (
	ClassAddress          = "address"
	ClassLoginAddress     = "login_address"
	ClassLoginUsername    = "login_username"
	ClassLoginFailures    = "login_failures"
	ClassAPI              = "api"
	ClassGuestToken       = "guest_token"
	ClassAnonymousSession = "anonymous_session"
)

// Limits are the classes' buckets; an Off one is not checked.
type Limits struct {
	Address          Limit // every request, per client address
	LoginAddress     Limit // sign-in attempts per client address
	LoginUsername    Limit // sign-in attempts per username, all addresses
	LoginFailures    Limit // failed sign-ins per username before it slows down
	API              Limit // /api/ requests per principal
	GuestToken       Limit // guest-token issuance per principal
	AnonymousSession Limit // anonymous sessions created per client address
}

// Observer counts decisions by class and outcome ("allowed", "limited",
// "fallback" for an answer of the per-process bucket).
type Observer interface {
	ObserveRateLimit(class, outcome string)
}

// Options configure NewStage.
type Options struct {
	Backend Backend
	Limits  Limits
	// ClientIP is the address the gateway trusts (proxy.ClientIP).
	ClientIP func(*http.Request) netip.Addr
	// Secret keys the username hashes and signs the known-device cookie;
	// derive it from a secret every replica shares.
	Secret []byte
	// Secure sets the cookie's Secure flag (public_url is https).
	Secure bool
	// KnownDevices is how many usernames one browser remembers (0: 5).
	KnownDevices int
	// MaxBody bounds the sign-in body read for the username (0: 64 KiB).
	MaxBody  int64
	Observer Observer
}

// Stage is the rate-limit stage (pipeline stage 5) and its response hook.
type Stage struct {
	o      Options
	cookie *sessions.CookieStore
	hkey   []byte
}

// DeviceCookie is the known-device cookie's name.
const DeviceCookie = "sgw_known_device"

// NewStage builds the stage.
func NewStage(o Options) (*Stage, error) {
	if o.Backend == nil || o.ClientIP == nil {
		return nil, fmt.Errorf("ratelimit: Backend and ClientIP are required")
	}
	if len(o.Secret) < 16 {
		return nil, fmt.Errorf("ratelimit: secret too short")
	}
	if o.KnownDevices <= 0 {
		o.KnownDevices = 5
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 64 << 10
	}
	cs := sessions.NewCookieStore(derive(o.Secret, "known-device-sign"), derive(o.Secret, "known-device-encrypt")[:32])
	cs.Options = &sessions.Options{Path: "/", MaxAge: 90 * 24 * 3600, HttpOnly: true, Secure: o.Secure, SameSite: http.SameSiteLaxMode}
	return &Stage{o: o, cookie: cs, hkey: derive(o.Secret, "username-key")}, nil
}

func derive(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("superset-gateway ratelimit " + label))
	return m.Sum(nil)
}

// Refusal is a limited request's answer: the reason and the headers to
// send with the 429.
type Refusal struct {
	Reason policy.Reason
	Header http.Header
}

// loginState carries a sign-in attempt from the request to its answer.
type loginState struct {
	user    string // the username's hash ("" when unreadable)
	api     bool
	devices []string
}

// Check is stage 5: it spends from every bucket the request belongs to
// and returns a refusal for the first one that is empty. A store failure
// never reaches here: the Fallback backend answers from memory.
func (s *Stage) Check(ctx context.Context, r *http.Request, x *principal.Exchange) *Refusal {
	ip := addrKey(s.o.ClientIP(r))
	if ref := s.spend(ctx, ClassAddress, "a:"+ip, s.o.Limits.Address); ref != nil {
		return ref
	}
	class := superset.Classify(r)
	kind, _ := superset.LoginMethod(r.Method, r.URL.Path)
	form := kind == "form"
	api := class == superset.ClassAPILogin && r.Method == http.MethodPost
	// An OAuth callback is a sign-in attempt too, with no username the
	// gateway can read: it counts per address.
	if form || api || strings.HasPrefix(kind, "oauth") {
		if ref := s.spend(ctx, ClassLoginAddress, "la:"+ip, s.o.Limits.LoginAddress); ref != nil {
			return ref
		}
		st := &loginState{api: api}
		if name, ok := s.username(r, api); (form || api) && ok {
			st.user = s.hash(name)
			st.devices = s.devices(r)
			// A browser that signed in as this user before is spared the
			// per-username classes an attacker elsewhere can spend: it
			// still pays per address.
			if s.known(st) {
				s.observe(ClassLoginFailures, "known_device")
			} else {
				// The lock first: an attempt it refuses spends nothing.
				if ref := s.locked(ctx, st); ref != nil {
					return ref
				}
				if ref := s.spend(ctx, ClassLoginUsername, "lu:"+st.user, s.o.Limits.LoginUsername); ref != nil {
					return ref
				}
			}
		}
		x.RateState = st
		return nil
	}
	p := x.Principal
	if k := principalKey(p); k != "" {
		if class == superset.ClassGuestToken {
			if ref := s.spend(ctx, ClassGuestToken, "gt:"+k, s.o.Limits.GuestToken); ref != nil {
				return ref
			}
		}
		if strings.HasPrefix(r.URL.Path, "/api/") {
			if ref := s.spend(ctx, ClassAPI, "p:"+k, s.o.Limits.API); ref != nil {
				return ref
			}
		}
	}
	return nil
}

// AllowAnonymous is the anonymous-session class for the session vault.
func (s *Stage) AllowAnonymous(ctx context.Context, ip netip.Addr) bool {
	return s.spend(ctx, ClassAnonymousSession, "as:"+addrKey(ip), s.o.Limits.AnonymousSession) == nil
}

// known reports whether this browser signed in as the attempted user
// before (its known-device cookie lists the username's hash).
func (s *Stage) known(st *loginState) bool {
	for _, d := range st.devices {
		if hmac.Equal([]byte(d), []byte(st.user)) {
			return true
		}
	}
	return false
}

// locked reads (without spending) the username's failure bucket: empty,
// the attempt waits.
func (s *Stage) locked(ctx context.Context, st *loginState) *Refusal {
	l := s.o.Limits.LoginFailures
	if l.Off() {
		return nil
	}
	res, err := s.o.Backend.AllowN(ctx, "lf:"+st.user, l, 0)
	if err != nil || res.Remaining >= 1 {
		return nil
	}
	s.observe(ClassLoginFailures, "limited")
	// The bucket holds one more event after ResetAfter − (burst−1) × interval.
	wait := res.ResetAfter - time.Duration(l.burst()-1)*l.interval()
	return s.refusal(policy.ReasonLoginThrottled, ClassLoginFailures, l, Result{RetryAfter: wait, ResetAfter: res.ResetAfter})
}

func (s *Stage) spend(ctx context.Context, class, key string, l Limit) *Refusal {
	if l.Off() {
		return nil
	}
	res, err := s.o.Backend.AllowN(ctx, key, l, 1)
	if err != nil {
		// A backend without fallback: never refuse everything.
		s.observe(class, "error")
		return nil
	}
	if res.Fallback {
		s.observe(class, "fallback")
	}
	if res.Allowed {
		s.observe(class, "allowed")
		return nil
	}
	s.observe(class, "limited")
	return s.refusal(policy.ReasonRateLimited, class, l, res)
}

func (s *Stage) observe(class, outcome string) {
	if s.o.Observer != nil {
		s.o.Observer.ObserveRateLimit(class, outcome)
	}
}

func (s *Stage) refusal(reason policy.Reason, class string, l Limit, res Result) *Refusal {
	h := http.Header{}
	ra := seconds(res.RetryAfter)
	h.Set("Retry-After", strconv.Itoa(ra))
	// draft-ietf-httpapi-ratelimit-headers: the policy's quota and window,
	// and what remains of it now.
	h.Set("RateLimit-Policy", fmt.Sprintf("%q;q=%d;w=%d", class, l.burst(), seconds(l.Period)))
	h.Set("RateLimit", fmt.Sprintf("%q;r=%d;t=%d", class, res.Remaining, ra))
	return &Refusal{Reason: reason, Header: h}
}

// seconds rounds up to whole seconds, never below 1: a Retry-After of 0
// invites an immediate retry that would be refused again.
func seconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// ModifyResponse is the sign-in answer's hook: a failure spends from the
// username's failure bucket, a success marks the browser as a known device
// of that username. It runs after the session vault's hook (which removes
// Superset's cookies), so the cookie it sets reaches the browser.
func (s *Stage) ModifyResponse(resp *http.Response) error {
	if resp.Request == nil {
		return nil
	}
	x := principal.ExchangeFrom(resp.Request.Context())
	if x == nil {
		return nil
	}
	st, ok := x.RateState.(*loginState)
	if !ok || st.user == "" {
		return nil
	}
	ok, failed := outcome(resp, st.api)
	switch {
	case failed:
		if !s.o.Limits.LoginFailures.Off() {
			_, _ = s.o.Backend.AllowN(resp.Request.Context(), "lf:"+st.user, s.o.Limits.LoginFailures, 1)
		}
		s.observe(ClassLoginFailures, "failure")
	case ok && !st.api:
		s.remember(resp, st)
	}
	return nil
}

// outcome reads Superset's answer to a sign-in: a form sign-in that failed
// is redirected back to /login/ (FAB flashes "Invalid login" and redirects
// to the login view); one that worked is redirected elsewhere. The API
// answers 401 to bad credentials and 200 with the tokens.
func outcome(resp *http.Response, api bool) (ok, failed bool) {
	if api {
		return resp.StatusCode == http.StatusOK, resp.StatusCode == http.StatusUnauthorized
	}
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		return false, false
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return false, false
	}
	if strings.TrimRight(loc.Path, "/") == "/login" {
		return false, true
	}
	return true, false
}

func (s *Stage) remember(resp *http.Response, st *loginState) {
	list := []string{st.user}
	for _, d := range st.devices {
		if d != st.user && len(list) < s.o.KnownDevices {
			list = append(list, d)
		}
	}
	sess := sessions.NewSession(s.cookie, DeviceCookie)
	sess.Values["u"] = strings.Join(list, ",")
	sess.Options = s.cookie.Options
	_ = s.cookie.Save(resp.Request, headerWriter(resp.Header), sess)
}

// devices reads the known-device cookie: the username hashes this browser
// signed in as. A missing, forged or expired cookie is no device.
func (s *Stage) devices(r *http.Request) []string {
	sess, err := s.cookie.New(r, DeviceCookie)
	if err != nil || sess.IsNew {
		return nil
	}
	v, _ := sess.Values["u"].(string)
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// hash keys a username: case-folded the way FAB finds users with
// AUTH_USERNAME_CI (its default), and keyed so the store does not hold a
// guessable digest. The username itself is never stored nor logged.
func (s *Stage) hash(name string) string {
	m := hmac.New(sha256.New, s.hkey)
	m.Write([]byte(strings.ToLower(name)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// username reads the attempted username the way Superset does: FAB's
// login form reads request.form["username"] (urlencoded or multipart);
// POST /api/v1/security/login reads request.json["username"]. The body is
// put back for Superset.
func (s *Stage) username(r *http.Request, api bool) (string, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return "", false
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, s.o.MaxBody+1))
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil || int64(len(b)) > s.o.MaxBody {
		// Too big to read here; Superset's hygiene limit still applies,
		// and the attempt still counts per address.
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), r.Body))
		return "", false
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if api {
		return jsonUsername(b)
	}
	c := &http.Request{Method: http.MethodPost, Header: http.Header{"Content-Type": r.Header.Values("Content-Type")},
		Body: io.NopCloser(bytes.NewReader(b)), ContentLength: int64(len(b))}
	switch ct {
	case "multipart/form-data":
		if c.ParseMultipartForm(s.o.MaxBody) != nil {
			return "", false
		}
		defer func() { _ = c.MultipartForm.RemoveAll() }()
	default:
		if c.ParseForm() != nil {
			return "", false
		}
	}
	if len(c.PostForm) == 0 && (ct == "application/json" || strings.HasSuffix(ct, "+json")) {
		// Flask-WTF's form falls back to request.get_json() when the
		// request has no form fields and is JSON: a JSON body to
		// POST /login/ signs in too.
		return jsonUsername(b)
	}
	u := c.PostForm.Get("username")
	return u, u != ""
}

// jsonUsername reads "username" of a JSON object (the last of duplicate
// keys, as Python's json does).
func jsonUsername(b []byte) (string, bool) {
	var v struct {
		Username any `json:"username"`
	}
	if json.Unmarshal(b, &v) != nil {
		return "", false
	}
	u, ok := v.Username.(string)
	return u, ok && u != ""
}

// principalKey is who a request's API and guest-token buckets belong to.
func principalKey(p principal.Principal) string {
	switch p.Kind {
	case principal.AccessToken:
		if p.ID != "" {
			return "t:" + p.ID
		}
	case principal.Guest:
		// A guest token per dashboard set it names.
		h := sha256.Sum256([]byte(strings.Join(p.Resources, "\x00")))
		return "g:" + base64.RawURLEncoding.EncodeToString(h[:12])
	}
	if p.UserID != "" {
		return "u:" + p.UserID
	}
	return ""
}

// addrKey keys a client: IPv6 by its /64, which one host usually holds.
func addrKey(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.String()
		}
	}
	return ip.String()
}

// headerWriter lets gorilla/sessions set its cookie on a response.
type headerWriter http.Header

func (h headerWriter) Header() http.Header         { return http.Header(h) }
func (h headerWriter) Write(b []byte) (int, error) { return len(b), nil }
func (h headerWriter) WriteHeader(int)             {}
