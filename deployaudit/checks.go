package deployaudit

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

func (a *auditor) judgeTLS(rep *Report, p *page) {
	if p.url.Scheme != "https" || p.tls == nil {
		rep.add(Finding{ID: "tls-off", Severity: High, Checklist: ItemTLS,
			Title:  "The deployment is served over plain HTTP",
			Detail: "session cookies and passwords cross the network in clear text",
			Fix:    "Terminate TLS in front of users (the gateway's tls.cert_file/key_file, or a load balancer) and set public_url to https://."})
		return
	}
	if p.tls.Version < tls.VersionTLS12 {
		rep.add(Finding{ID: "tls-old-version", Severity: High, Checklist: ItemTLS,
			Title:  "The server negotiates a TLS version older than 1.2",
			Detail: "negotiated " + tls.VersionName(p.tls.Version),
			Fix:    "Allow TLS 1.2 and 1.3 only."})
	} else {
		rep.add(Finding{ID: "tls-version", Severity: Pass, Checklist: ItemTLS, Title: "TLS version " + tls.VersionName(p.tls.Version)})
	}
	if len(p.tls.PeerCertificates) == 0 {
		return
	}
	left := p.tls.PeerCertificates[0].NotAfter.Sub(a.now())
	f := Finding{ID: "tls-certificate-expiry", Checklist: ItemTLS,
		Detail: fmt.Sprintf("the certificate expires %s (in %d days)", p.tls.PeerCertificates[0].NotAfter.UTC().Format(time.DateOnly), int(left.Hours()/24)),
		Fix:    "Renew the certificate, and automate renewal (ACME); the gateway re-reads its certificate files when they change."}
	switch {
	case left < 7*24*time.Hour:
		f.Severity, f.Title = High, "The TLS certificate expires within 7 days"
	case left < 30*24*time.Hour:
		f.Severity, f.Title = Medium, "The TLS certificate expires within 30 days"
	default:
		f.Severity, f.Title, f.Fix = Pass, "The TLS certificate is valid for more than 30 days", ""
	}
	rep.add(f)
}

// judgeCookies checks the attributes of every cookie set on the way to the
// login page.
func (a *auditor) judgeCookies(rep *Report, p *page) {
	https := p.url.Scheme == "https"
	seen := map[string]bool{}
	for _, line := range p.cookies {
		c, err := http.ParseSetCookie(line)
		if err != nil || seen[c.Name] || c.MaxAge < 0 {
			continue
		}
		seen[c.Name] = true
		var missing []string
		if https && !c.Secure {
			missing = append(missing, "Secure")
		}
		if !c.HttpOnly && c.Name != "csrf_token" {
			missing = append(missing, "HttpOnly")
		}
		if c.SameSite == 0 || c.SameSite == http.SameSiteDefaultMode {
			missing = append(missing, "SameSite")
		}
		if len(missing) == 0 {
			rep.add(Finding{ID: "cookie-attributes", Severity: Pass, Checklist: ItemCookies,
				Title: fmt.Sprintf("Cookie %q has the Secure (under https), HttpOnly and SameSite attributes", c.Name)})
			continue
		}
		sev := Medium
		if strings.Contains(strings.Join(missing, ","), "Secure") {
			sev = High
		}
		rep.add(Finding{ID: "cookie-attributes", Severity: sev, Checklist: ItemCookies,
			Title:  fmt.Sprintf("Cookie %q lacks %s", c.Name, strings.Join(missing, ", ")),
			Detail: "set by GET /login/",
			Fix:    "Superset: SESSION_COOKIE_SECURE = True, SESSION_COOKIE_HTTPONLY = True, SESSION_COOKIE_SAMESITE = \"Lax\"; behind the gateway browsers only get its own cookie, which has all three under an https public_url."})
	}
}

func (a *auditor) judgeHeaders(rep *Report, p *page) {
	h := p.header
	type check struct {
		id, title, fix string
		ok             bool
		sev            Severity
	}
	csp := h.Get("Content-Security-Policy")
	checks := []check{
		{"header-csp", "Content-Security-Policy", "Keep Talisman on in Superset (TALISMAN_ENABLED, on by default): the gateway does not write a CSP for Superset's pages (only frame-ancestors on /embedded/).", csp != "", Medium},
		{"header-frame", "framing is restricted (X-Frame-Options or CSP frame-ancestors)", "Send X-Frame-Options: SAMEORIGIN or CSP frame-ancestors (clickjacking).",
			h.Get("X-Frame-Options") != "" || strings.Contains(csp, "frame-ancestors"), Medium},
		{"header-nosniff", "X-Content-Type-Options: nosniff", "Send X-Content-Type-Options: nosniff.",
			strings.EqualFold(strings.TrimSpace(h.Get("X-Content-Type-Options")), "nosniff"), Low},
	}
	if p.url.Scheme == "https" {
		checks = append(checks, check{"header-hsts", "Strict-Transport-Security", "Send Strict-Transport-Security: max-age=31536000 (the gateway does under an https public_url).",
			strings.Contains(strings.ToLower(h.Get("Strict-Transport-Security")), "max-age="), Medium})
	}
	for _, c := range checks {
		if c.ok {
			rep.add(Finding{ID: c.id, Severity: Pass, Checklist: ItemHeaders, Title: c.title + " is sent"})
			continue
		}
		rep.add(Finding{ID: c.id, Severity: c.sev, Checklist: ItemHeaders, Title: c.title + " is missing",
			Detail: "on the answer to GET /login/", Fix: c.fix})
	}
	if s := h.Get("Server"); s != "" && strings.ContainsAny(s, "0123456789") {
		rep.add(Finding{ID: "header-server-version", Severity: Low, Checklist: ItemExposure,
			Title: "The Server header names software and version", Detail: "Server: " + s,
			Fix: "Drop or blank the Server header."})
	}
}

// judgeExposure requests Superset's API documentation anonymously.
func (a *auditor) judgeExposure(ctx context.Context, rep *Report) {
	for _, e := range []struct{ path, id, title string }{
		{"/swagger/v1", "swagger-ui-open", "Swagger UI"},
		{"/api/v1/_openapi", "openapi-open", "The OpenAPI specification"},
	} {
		p, err := a.fetch(ctx, http.MethodGet, e.path, nil)
		if err != nil {
			rep.add(Finding{ID: e.id, Severity: Info, Checklist: ItemExposure, Title: e.title + " could not be checked", Detail: oneLine(err)})
			continue
		}
		open := p.status == http.StatusOK && !bytes.Contains(p.body, []byte(`name="password"`)) &&
			!strings.HasSuffix(strings.TrimSuffix(p.url.Path, "/"), "/login")
		if !open {
			rep.add(Finding{ID: e.id, Severity: Pass, Checklist: ItemExposure, Title: e.title + " needs authentication",
				Detail: fmt.Sprintf("GET %s answered %d at %s", e.path, p.status, p.url.Path)})
			continue
		}
		rep.add(Finding{ID: e.id, Severity: Medium, Checklist: ItemExposure, Title: e.title + " is served without authentication",
			Detail: "GET " + e.path + " answered 200 anonymously",
			Fix:    "Set FAB_API_SWAGGER_UI = False in production, or make sure the public role has no can_read on the OpenApi/Swagger views."})
	}
}

// probeRateLimit posts Superset's sign-in form for a made-up user at most
// ProbeAttempts times and reports whether the deployment started refusing
// with 429. It is the form (POST /login/) because that is what FAB's
// AUTH_RATE_LIMIT guards; /api/v1/security/login has only the
// application-wide limit.
func (a *auditor) probeRateLimit(ctx context.Context, rep *Report) {
	form := url.Values{"username": {fmt.Sprintf("sgw-audit-nonexistent-%d", a.now().UnixNano())}, "password": {"not-a-password"}}.Encode()
	body := func() io.Reader { return strings.NewReader(form) }
	statuses := map[int]int{}
	for i := 1; i <= ProbeAttempts; i++ {
		p, err := a.fetch(ctx, http.MethodPost, "/login/", body)
		if err != nil {
			rep.add(Finding{ID: "rate-limit-probe", Severity: Info, Checklist: ItemRateLimit, Title: "The sign-in rate-limit probe failed", Detail: oneLine(err)})
			return
		}
		statuses[p.status]++
		if p.status == http.StatusTooManyRequests {
			rep.add(Finding{ID: "rate-limit", Severity: Pass, Checklist: ItemRateLimit,
				Title:  "Sign-in attempts are rate limited",
				Detail: fmt.Sprintf("429 after %d failed sign-ins of a made-up user", i)})
			return
		}
	}
	rep.add(Finding{ID: "rate-limit", Severity: High, Checklist: ItemRateLimit,
		Title:  "Sign-in attempts are not rate limited",
		Detail: fmt.Sprintf("%d failed sign-ins of a made-up user (POST /login/), answers %v, none 429", ProbeAttempts, statuses),
		Fix:    "Superset rate-limits sign-in only with AUTH_RATE_LIMITED (on with SUPERSET_ENV=production) and per process; put a shared limit in front (the gateway's login rate limits) and set RATELIMIT_STORAGE_URI to Redis."})
}
