package deployaudit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/knownsecret"
)

// Bounds of one audit.
const (
	DefaultTimeout = 10 * time.Second // one request, headers and body
	MaxBodyBytes   = 2 << 20          // bytes read of any answer
	MaxRedirects   = 5
	// ProbeAttempts is how many failed sign-ins the rate-limit probe makes
	// at most (FAB's AUTH_RATE_LIMIT default is 10 per 20 seconds,
	// Superset sets 5 per second).
	ProbeAttempts = 12
)

// Errors that end an audit before any finding can be made.
var (
	ErrUnreachable  = errors.New("deployaudit: target unreachable")
	ErrRedirectLoop = errors.New("deployaudit: redirect loop")
	ErrTooManyHops  = errors.New("deployaudit: too many redirects")
	ErrBadURL       = errors.New("deployaudit: bad URL")
)

// Options configure Run.
type Options struct {
	// URL is the deployment's base URL (Superset's or the gateway's).
	URL string
	// GuestToken is a guest token issued by the deployment, to judge
	// GUEST_TOKEN_JWT_SECRET; empty skips that check.
	GuestToken string
	// Wordlist, when non-nil, is opened and streamed once per signature to
	// judge (one secret a line).
	Wordlist func() (io.ReadCloser, error)
	// ProbeRateLimit enables the sign-in rate-limit probe.
	ProbeRateLimit bool
	// Timeout bounds each request; 0 means DefaultTimeout.
	Timeout time.Duration
	// RootCAs verify the target's certificate; nil means the system roots.
	RootCAs *x509.CertPool
	// Now is the clock for certificate expiry; nil means time.Now.
	Now func() time.Time
}

// Report is the outcome of Run.
type Report struct {
	Target   string        `json:"target"`
	Started  time.Time     `json:"started"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	Superset bool          `json:"superset"`
	Version  string        `json:"version,omitempty"`
	Findings []Finding     `json:"findings"`
}

// Critical reports whether any finding is critical (the command's exit).
func (r *Report) Critical() bool {
	return slices.ContainsFunc(r.Findings, func(f Finding) bool { return f.Severity == Critical })
}

func (r *Report) add(f Finding) { r.Findings = append(r.Findings, f) }

// page is one fetched answer, after redirects.
type page struct {
	url     *url.URL
	status  int
	header  http.Header
	cookies []string // every Set-Cookie line seen on the way
	body    []byte
	cut     bool // body longer than MaxBodyBytes
	tls     *tls.ConnectionState
}

type auditor struct {
	o      Options
	base   *url.URL
	client *http.Client
	now    func() time.Time
	// secretKey is the published entry SECRET_KEY matched, if any.
	secretKey *knownsecret.Match
}

// Run audits o.URL. It returns an error only when nothing could be judged
// (bad URL, unreachable, redirect loop); every other problem, a TLS error
// included, is a finding.
func Run(ctx context.Context, o Options) (*Report, error) {
	base, err := url.Parse(strings.TrimSpace(o.URL))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("%w: %q: want http(s)://host[:port][/path]", ErrBadURL, o.URL)
	}
	base.Path = strings.TrimSuffix(base.Path, "/")
	base.RawQuery, base.Fragment = "", ""
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	a := &auditor{o: o, base: base, now: o.Now}
	if a.now == nil {
		a.now = time.Now
	}
	d := &net.Dialer{Timeout: min(o.Timeout, 5*time.Second)}
	a.client = &http.Client{
		Transport: &http.Transport{
			DialContext: d.DialContext,
			// The handshake is done here, not by the transport, so that
			// its typed errors (an untrusted certificate, plain HTTP on
			// the TLS port) reach Run unflattened.
			DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				host, _, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				raw, err := d.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				// Old versions are judged, not refused.
				c := tls.Client(raw, &tls.Config{ServerName: host, RootCAs: o.RootCAs, MinVersion: tls.VersionTLS10})
				hctx, cancel := context.WithTimeout(ctx, min(o.Timeout, 5*time.Second))
				defer cancel()
				if err := c.HandshakeContext(hctx); err != nil {
					raw.Close()
					return nil, fmt.Errorf("tls handshake: %w", err)
				}
				return c, nil
			},
			ResponseHeaderTimeout: o.Timeout,
			DisableKeepAlives:     true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	rep := &Report{Target: base.String(), Started: a.now()}
	start := time.Now()
	defer func() { rep.Elapsed = time.Since(start) }()

	login, err := a.fetch(ctx, http.MethodGet, "/login/", nil)
	if err != nil {
		var certErr *tls.CertificateVerificationError
		var recErr tls.RecordHeaderError
		switch {
		case errors.As(err, &certErr):
			rep.add(Finding{ID: "tls-certificate-invalid", Severity: Critical, Checklist: ItemTLS,
				Title:  "The TLS certificate does not verify",
				Detail: oneLine(certErr.Err),
				Fix:    "Serve a certificate for this host name from a trusted CA (or pass the CA the clients use); clients that skip verification can be intercepted."})
			return rep, nil
		case errors.As(err, &recErr):
			rep.add(Finding{ID: "tls-not-spoken", Severity: High, Checklist: ItemTLS,
				Title:  "An https:// URL answered without TLS",
				Detail: "the server sent plain HTTP on the TLS port",
				Fix:    "Terminate TLS on this port, or audit the http:// URL."})
			return rep, nil
		}
		return nil, err
	}
	a.judgeTLS(rep, login)
	a.judgeSuperset(rep, login)
	if !rep.Superset {
		rep.add(Finding{ID: "not-superset", Severity: High, Checklist: ItemReachability,
			Title:  "The target does not answer like Superset",
			Detail: fmt.Sprintf("GET /login/ answered %d without Superset's login page", login.status),
			Fix:    "Point --url at Superset or at the gateway in front of it (its base URL, without a path)."})
	}
	a.judgeSecretKey(ctx, rep, login)
	a.judgeGuestToken(ctx, rep)
	a.judgeCookies(rep, login)
	a.judgeHeaders(rep, login)
	if rep.Superset {
		a.judgeExposure(ctx, rep)
		if o.ProbeRateLimit {
			a.probeRateLimit(ctx, rep)
		}
	}
	slices.SortStableFunc(rep.Findings, func(x, y Finding) int { return x.Severity.rank() - y.Severity.rank() })
	return rep, nil
}

// fetch requests path (relative to the base URL) and follows redirects by
// hand, keeping every Set-Cookie, at most MaxRedirects hops and never the
// same URL twice. Each hop is bounded by Options.Timeout, its body by
// MaxBodyBytes.
func (a *auditor) fetch(ctx context.Context, method, path string, body func() io.Reader) (*page, error) {
	u := *a.base
	u.Path += path
	next := &u
	seen := map[string]bool{}
	p := &page{}
	for hop := 0; ; hop++ {
		if seen[method+" "+next.String()] {
			return nil, fmt.Errorf("%w: %s is reached again after %d redirects", ErrRedirectLoop, redact(next), hop)
		}
		if hop > MaxRedirects {
			return nil, fmt.Errorf("%w: more than %d from %s", ErrTooManyHops, MaxRedirects, redact(&u))
		}
		seen[method+" "+next.String()] = true
		if err := a.once(ctx, method, next, body, p); err != nil {
			return nil, err
		}
		loc := p.header.Get("Location")
		if p.status < 300 || p.status > 399 || loc == "" {
			p.url = next
			return p, nil
		}
		to, err := next.Parse(loc)
		if err != nil {
			return nil, fmt.Errorf("%w: bad Location after %s", ErrUnreachable, redact(next))
		}
		next, method, body = to, http.MethodGet, nil
	}
}

func (a *auditor) once(ctx context.Context, method string, u *url.URL, body func() io.Reader, p *page) error {
	ctx, cancel := context.WithTimeout(ctx, a.o.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = body()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	req.Header.Set("User-Agent", "superset-gateway-audit")
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return fmt.Errorf("%w: %s did not answer within %s", ErrUnreachable, redact(u), a.o.Timeout)
		}
		var certErr *tls.CertificateVerificationError
		var recErr tls.RecordHeaderError
		if errors.As(err, &certErr) || errors.As(err, &recErr) {
			return err
		}
		return fmt.Errorf("%w: %s: %s", ErrUnreachable, redact(u), oneLine(errors.Unwrap(err)))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return fmt.Errorf("%w: %s sent its answer too slowly (more than %s)", ErrUnreachable, redact(u), a.o.Timeout)
		}
		return fmt.Errorf("%w: %s: reading the answer: %s", ErrUnreachable, redact(u), oneLine(err))
	}
	p.cut = len(b) > MaxBodyBytes
	if p.cut {
		b = b[:MaxBodyBytes]
	}
	p.status, p.header, p.body, p.tls = resp.StatusCode, resp.Header, b, resp.TLS
	p.cookies = append(p.cookies, resp.Header.Values("Set-Cookie")...)
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// redact drops a URL's user info and query (a guest token may ride there).
func redact(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.Fragment = nil, "", ""
	return c.String()
}

func oneLine(err error) string {
	if err == nil {
		return ""
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

var versionRE = regexp.MustCompile(`"version_string":\s*"([^"]{1,64})"`)

// judgeSuperset recognises Superset's login page (its bootstrap data) and
// the version it discloses.
func (a *auditor) judgeSuperset(rep *Report, p *page) {
	body := html.UnescapeString(string(p.body))
	rep.Superset = p.status == http.StatusOK && (strings.Contains(body, `"common":`) && strings.Contains(body, "data-bootstrap") ||
		strings.Contains(body, "superset"))
	if m := versionRE.FindStringSubmatch(body); m != nil {
		rep.Version = m[1]
		rep.add(Finding{ID: "version-disclosed", Severity: Low, Checklist: ItemExposure,
			Title:  "The anonymous login page discloses Superset's version",
			Detail: "version_string " + m[1] + " in the page's bootstrap data",
			Fix:    "Tell attackers less: hide the version (a custom VERSION_STRING or a reverse-proxy filter); keep Superset patched regardless."})
	}
	if p.cut {
		rep.add(Finding{ID: "answer-truncated", Severity: Info, Checklist: ItemReachability,
			Title:  "The login page was larger than the audit reads",
			Detail: fmt.Sprintf("only the first %d bytes were judged", MaxBodyBytes)})
	}
}

// sessionValue returns the value of the last Set-Cookie named name.
func sessionValue(cookies []string, name string) (string, bool) {
	var v string
	var ok bool
	for _, line := range cookies {
		c, err := http.ParseSetCookie(line)
		if err == nil && c.Name == name && c.Value != "" {
			v, ok = c.Value, true
		}
	}
	return v, ok
}

// judge runs verify against the built-in list, then the wordlist.
func (a *auditor) judge(ctx context.Context, verify knownsecret.Verifier) (knownsecret.Match, bool, string) {
	if m, ok := knownsecret.FindBuiltin(verify); ok {
		return m, true, ""
	}
	tried := fmt.Sprintf("%d published values", len(knownsecret.List()))
	if a.o.Wordlist == nil {
		return knownsecret.Match{}, false, tried
	}
	rc, err := a.o.Wordlist()
	if err != nil {
		return knownsecret.Match{}, false, tried + "; the wordlist could not be opened: " + oneLine(err)
	}
	defer rc.Close()
	m, ok, st, err := knownsecret.ScanWordlist(ctx, rc, verify)
	tried += fmt.Sprintf(" and %d wordlist lines in %s", st.Tried, st.Elapsed.Round(time.Millisecond))
	if err != nil {
		tried += " (stopped: " + oneLine(err) + ")"
	}
	return m, ok, tried
}

func (a *auditor) judgeSecretKey(ctx context.Context, rep *Report, p *page) {
	v, ok := sessionValue(p.cookies, "session")
	if !ok {
		f := Finding{ID: "secret-key-not-observable", Severity: Info, Checklist: ItemSecretKey,
			Title:  "No Superset session cookie was handed out, so SECRET_KEY could not be tested",
			Detail: "GET /login/ set no \"session\" cookie"}
		if hasGatewayCookie(p.cookies) {
			f.Detail += "; the superset-gateway keeps Superset's cookies server-side (a forged Superset cookie is useless through it), audit Superset's own URL from inside to test its key"
		}
		rep.add(f)
		return
	}
	verify, ok := knownsecret.SessionCookie(v)
	if !ok {
		rep.add(Finding{ID: "secret-key-not-observable", Severity: Info, Checklist: ItemSecretKey,
			Title:  "The session cookie is not a signed Flask cookie (server-side sessions?)",
			Detail: "SECRET_KEY could not be tested from outside"})
		return
	}
	m, found, tried := a.judge(ctx, verify)
	if !found {
		rep.add(Finding{ID: "secret-key-not-known", Severity: Pass, Checklist: ItemSecretKey,
			Title: "SECRET_KEY is none of the values tried", Detail: "tried " + tried})
		return
	}
	a.secretKey = &m
	rep.add(Finding{ID: "secret-key-default", Severity: Critical, Checklist: ItemSecretKey,
		Title:  "Superset signs its session cookie with a published SECRET_KEY",
		Detail: fmt.Sprintf("the anonymous session cookie verifies under %s (%s): anyone can forge a session cookie for any user, the admin included (CVE-2023-27524)", m.ID, m.Source),
		Fix:    "Set SECRET_KEY (SUPERSET_SECRET_KEY) to a random value (openssl rand -base64 42), rotate with PREVIOUS_SECRET_KEY and `superset re-encrypt-secrets`, and give the gateway the same value in superset.secret_key_file."})
}

func hasGatewayCookie(cookies []string) bool {
	for _, line := range cookies {
		if strings.HasPrefix(line, "sg_session=") || strings.HasPrefix(line, "__Host-sg_session=") {
			return true
		}
	}
	return false
}

func (a *auditor) judgeGuestToken(ctx context.Context, rep *Report) {
	if a.o.GuestToken == "" {
		return
	}
	verify, ok := knownsecret.GuestToken(a.o.GuestToken)
	if !ok {
		rep.add(Finding{ID: "guest-token-unreadable", Severity: Info, Checklist: ItemGuestSecret,
			Title: "The --guest-token is not an HMAC-signed JWT", Detail: "GUEST_TOKEN_JWT_SECRET was not tested"})
		return
	}
	m, found, tried := a.judge(ctx, verify)
	if !found {
		rep.add(Finding{ID: "guest-secret-not-known", Severity: Pass, Checklist: ItemGuestSecret,
			Title: "GUEST_TOKEN_JWT_SECRET is none of the values tried", Detail: "tried " + tried})
	} else {
		rep.add(Finding{ID: "guest-secret-default", Severity: Critical, Checklist: ItemGuestSecret,
			Title:  "Superset signs guest tokens with a published GUEST_TOKEN_JWT_SECRET",
			Detail: fmt.Sprintf("the guest token verifies under %s (%s): anyone can mint guest tokens for any embedded dashboard, with any row-level security", m.ID, m.Source),
			Fix:    "Set GUEST_TOKEN_JWT_SECRET to its own random value and give the gateway the same in superset.guest_token_secret_file."})
	}
	if found && a.secretKey != nil && a.secretKey.ID == m.ID {
		rep.add(Finding{ID: "guest-secret-is-secret-key", Severity: Critical, Checklist: ItemGuestSecret,
			Title:  "GUEST_TOKEN_JWT_SECRET is the same value as SECRET_KEY",
			Detail: "the guest token and the session cookie verify under the same key (" + m.ID + "): every embedding backend holding the guest secret can sign Superset session cookies",
			Fix:    "Give GUEST_TOKEN_JWT_SECRET its own random value; the gateway refuses equal secrets at start unless superset.allow_guest_secret_equal_secret_key."})
	}
}
