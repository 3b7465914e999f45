package config

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/superset-gateway/superset-gateway/policy"
)

// Validate checks every key and returns the first problem as one error
// naming the key, e.g. `config: upstreams[1]: "ftp://x" is not an http(s)
// URL`. It does not touch the file system (secret files are read by Load
// afterwards) and does not judge secret strength (cmd does, with policy).
func (c *Config) Validate() error {
	for _, check := range []func() error{
		c.validateListeners,
		c.validateUpstreams,
		c.validateSuperset,
		c.validateStore,
		c.validateSession,
		c.validateAccessTokens,
		c.validateAdmin,
		c.validateLimits,
		c.validateHeaders,
		c.validateLog,
		c.validateExtensions,
		c.validateRateLimits,
	} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func bad(key, format string, args ...any) error {
	return fmt.Errorf("config: %s: "+format, append([]any{key}, args...)...)
}

// checkAddr accepts host:port with a numeric port (host may be empty: all
// interfaces).
func checkAddr(key, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return bad(key, "%q is not a host:port address", addr)
	}
	if strings.ContainsAny(host, " /") {
		return bad(key, "%q is not a host:port address", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return bad(key, "%q has no valid port", addr)
	}
	return nil
}

func checkPositive(key string, d time.Duration) error {
	if d <= 0 {
		return bad(key, "must be a positive duration, got %s", d)
	}
	return nil
}

// checkHTTPURL accepts an absolute http(s) URL with a host and nothing a
// base URL cannot carry (credentials, query, fragment).
func checkHTTPURL(key, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return bad(key, "%q is not an http(s) URL", raw)
	}
	if u.User != nil {
		return bad(key, "%q must not carry credentials", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.Contains(raw, "#") {
		return bad(key, "%q must not have a query or fragment", raw)
	}
	return nil
}

func (c *Config) validateListeners() error {
	if err := checkAddr("listen", c.Listen); err != nil {
		return err
	}
	if err := checkHTTPURL("public_url", c.PublicURL); err != nil {
		return err
	}
	if u, _ := url.Parse(c.PublicURL); u.Path != "" && u.Path != "/" {
		return bad("public_url", "%q must be an origin without a path (Superset is served at the root)", c.PublicURL)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		if c.TLS.CertFile == "" {
			return bad("tls.cert_file", "is required when tls.key_file is set")
		}
		return bad("tls.key_file", "is required when tls.cert_file is set")
	}
	if c.TLS.Enabled() && !strings.HasPrefix(c.PublicURL, "https://") {
		return bad("public_url", "%q must be https:// when TLS is configured", c.PublicURL)
	}
	if c.TLS.RedirectHTTPListen != "" {
		if !c.TLS.Enabled() {
			return bad("tls.redirect_http_listen", "needs tls.cert_file and tls.key_file (it redirects to https)")
		}
		if err := checkAddr("tls.redirect_http_listen", c.TLS.RedirectHTTPListen); err != nil {
			return err
		}
		if c.TLS.RedirectHTTPListen == c.Listen {
			return bad("tls.redirect_http_listen", "%q is also listen", c.TLS.RedirectHTTPListen)
		}
	}
	for i, p := range c.TrustedProxies {
		key := fmt.Sprintf("trusted_proxies[%d]", i)
		if _, err := ParsePrefix(p); err != nil {
			return bad(key, "%q is not a CIDR or IP address", p)
		}
	}
	seenHdr := map[string]int{}
	for i, name := range c.TrustedHeaders {
		key := fmt.Sprintf("trusted_headers[%d]", i)
		canon := http.CanonicalHeaderKey(name)
		switch {
		case !validToken(name):
			return bad(key, "%q is not an HTTP header name", name)
		case strings.Contains(name, "_"):
			return bad(key, "%q contains \"_\": the gateway never forwards such headers (headers.underscore_headers); have the sign-on proxy use hyphens", name)
		case strings.HasPrefix(canon, "X-Forwarded-") || canon == "Forwarded" || canon == "X-Real-Ip" || canon == "X-Request-Id":
			return bad(key, "%s is a forwarding header: trusted_proxies already governs it", canon)
		case slices.Contains([]string{"Host", "Cookie", "Authorization", "Content-Type", "Content-Length",
			"Transfer-Encoding", "Connection", "X-Csrftoken", "X-Guesttoken"}, canon):
			return bad(key, "%s carries the request itself and cannot be removed", canon)
		}
		if j, dup := seenHdr[canon]; dup {
			return bad(key, "%s repeats trusted_headers[%d]", canon, j)
		}
		seenHdr[canon] = i
	}
	if err := c.Tracing.validate(); err != nil {
		return err
	}
	if c.Metrics.Listen != "" {
		if err := checkAddr("metrics.listen", c.Metrics.Listen); err != nil {
			return err
		}
		if c.Metrics.Listen == c.Listen {
			return bad("metrics.listen", "%q is also listen", c.Metrics.Listen)
		}
	}
	return nil
}

// ParsePrefix parses a trusted_proxies entry: a CIDR, or a single address
// meaning just that host (policy.ParseCIDR, shared with access tokens).
func ParsePrefix(s string) (netip.Prefix, error) { return policy.ParseCIDR(s) }

func (c *Config) validateUpstreams() error {
	if len(c.Upstreams) == 0 {
		return bad("upstreams", "at least one Superset URL is required")
	}
	seen := map[string]int{}
	for i, u := range c.Upstreams {
		key := fmt.Sprintf("upstreams[%d]", i)
		if err := checkHTTPURL(key, u); err != nil {
			return err
		}
		norm := strings.TrimSuffix(strings.ToLower(u), "/")
		if j, dup := seen[norm]; dup {
			return bad(key, "%q repeats upstreams[%d]", u, j)
		}
		seen[norm] = i
	}
	switch c.Balance {
	case "round_robin", "least_conn":
	default:
		return bad("balance", "%q is not round_robin or least_conn", c.Balance)
	}
	h := c.HealthCheck
	if !strings.HasPrefix(h.Path, "/") {
		return bad("health_check.path", "%q must start with /", h.Path)
	}
	if err := checkPositive("health_check.interval", h.Interval); err != nil {
		return err
	}
	if err := checkPositive("health_check.timeout", h.Timeout); err != nil {
		return err
	}
	if h.Timeout > h.Interval {
		return bad("health_check.timeout", "%s is longer than health_check.interval (%s)", h.Timeout, h.Interval)
	}
	if h.UnhealthyThreshold < 1 {
		return bad("health_check.unhealthy_threshold", "must be at least 1, got %d", h.UnhealthyThreshold)
	}
	if h.HealthyThreshold < 1 {
		return bad("health_check.healthy_threshold", "must be at least 1, got %d", h.HealthyThreshold)
	}
	if c.Passive.MaxFails < 0 {
		return bad("passive.max_fails", "must be 0 (off) or more, got %d", c.Passive.MaxFails)
	}
	if c.Passive.MaxFails > 0 {
		if err := checkPositive("passive.cooldown", c.Passive.Cooldown); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) validateSuperset() error {
	if c.Superset.ServiceUserID < 0 {
		return bad("superset.service_user_id", "must not be negative")
	}
	if strings.TrimSpace(c.Superset.ServiceUser) == "" {
		return bad("superset.service_user", "must not be empty")
	}
	if c.Superset.JWTSecretFile != "" && c.Superset.SecretKeyFile == "" {
		return bad("superset.jwt_secret_file", "is set but superset.secret_key_file is not")
	}
	if err := c.validateFABAPIKeys(); err != nil {
		return err
	}
	if c.ReconcileInterval < 0 {
		return bad("reconcile_interval", "must be 0 (off) or positive, got %s", c.ReconcileInterval)
	}
	if c.ReconcileInterval > 0 && c.ReconcileInterval < time.Second {
		return bad("reconcile_interval", "%s is shorter than 1s", c.ReconcileInterval)
	}
	return nil
}

func (c *Config) validateStore() error {
	if r := c.Store.RedisURL; r != "" {
		// Only the scheme is checked here; store/redis parses the rest
		// (Sentinel and Cluster URLs list several hosts, which net/url
		// does not accept). Errors never echo the URL: it may hold a password.
		scheme, _, ok := strings.Cut(r, "://")
		switch strings.ToLower(scheme) {
		case "redis", "rediss", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster":
		default:
			if !ok {
				return bad("store.redis_url", "has no scheme (want redis://, rediss://, redis+sentinel:// or redis+cluster://)")
			}
			return bad("store.redis_url", "scheme %q is not redis, rediss, redis+sentinel or redis+cluster (or their rediss+ forms)", scheme)
		}
	}
	if c.Store.RedisTimeout < 10*time.Millisecond || c.Store.RedisTimeout > 30*time.Second {
		return bad("store.redis_timeout", "%s is not between 10ms and 30s", c.Store.RedisTimeout)
	}
	if c.Store.RedisWaitReplicas < 0 || c.Store.RedisWaitReplicas > 16 {
		return bad("store.redis_wait_replicas", "%d is not between 0 and 16", c.Store.RedisWaitReplicas)
	}
	if c.Store.RedisWaitReplicas > 0 && (c.Store.RedisWaitTimeout < 10*time.Millisecond || c.Store.RedisWaitTimeout > 10*time.Second) {
		return bad("store.redis_wait_timeout", "%s is not between 10ms and 10s", c.Store.RedisWaitTimeout)
	}
	if c.Store.RedisURL == "" {
		if c.Store.RedisWaitReplicas != 0 {
			return bad("store.redis_wait_replicas", "is set but store.redis_url is empty (the embedded store is in use)")
		}
		for _, kv := range [][2]string{
			{"store.redis_tls_ca_file", c.Store.RedisTLSCAFile},
			{"store.redis_tls_server_name", c.Store.RedisTLSServerName},
			{"store.redis_sentinel_username", c.Store.RedisSentinelUsername},
			{"store.redis_sentinel_password_file", c.Store.RedisSentinelPasswordFile},
		} {
			if kv[1] != "" {
				return bad(kv[0], "is set but store.redis_url is empty (the embedded store is in use)")
			}
		}
	}
	if strings.TrimSpace(c.Store.DataDir) == "" {
		return bad("store.data_dir", "must not be empty")
	}
	return nil
}

func (c *Config) validateSession() error {
	s := c.Session
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"session.idle_timeout", s.IdleTimeout},
		{"session.absolute_timeout", s.AbsoluteTimeout},
		{"session.anonymous_idle_timeout", s.AnonymousIdleTimeout},
		{"session.cache_ttl", s.CacheTTL},
	} {
		if err := checkPositive(d.key, d.v); err != nil {
			return err
		}
	}
	if s.IdleTimeout > s.AbsoluteTimeout {
		return bad("session.idle_timeout", "%s is longer than session.absolute_timeout (%s)", s.IdleTimeout, s.AbsoluteTimeout)
	}
	if s.CacheTTL > time.Minute {
		return bad("session.cache_ttl", "%s is longer than 1m (it bounds how long a revoked session keeps working on other replicas)", s.CacheTTL)
	}
	switch s.CookieSameSite {
	case "lax", "strict":
	case "none":
		// Browsers refuse SameSite=None without Secure, and the gateway
		// sets Secure only under an https public URL.
		if !strings.HasPrefix(c.PublicURL, "https://") {
			return bad("session.cookie_samesite", "none needs an https:// public_url (browsers drop SameSite=None cookies that are not Secure), got %q", c.PublicURL)
		}
	default:
		return bad("session.cookie_samesite", "%q is not lax, strict or none", s.CookieSameSite)
	}
	return nil
}

func (c *Config) validateAccessTokens() error {
	a := c.AccessTokens
	if err := checkPositive("access_tokens.max_ttl", a.MaxTTL); err != nil {
		return err
	}
	// Expiries are chosen and shown in whole seconds.
	if a.MaxTTL%time.Second != 0 {
		return bad("access_tokens.max_ttl", "%s is not a whole number of seconds", a.MaxTTL)
	}
	if len(a.TTLChoices) == 0 {
		return bad("access_tokens.ttl_choices", "at least one expiry is required")
	}
	seen := map[time.Duration]int{}
	for i, d := range a.TTLChoices {
		key := fmt.Sprintf("access_tokens.ttl_choices[%d]", i)
		if err := checkPositive(key, d); err != nil {
			return err
		}
		if d%time.Second != 0 {
			return bad(key, "%s is not a whole number of seconds", d)
		}
		if d > a.MaxTTL {
			return bad(key, "%s is longer than access_tokens.max_ttl (%s)", d, a.MaxTTL)
		}
		if j, dup := seen[d]; dup {
			return bad(key, "%s repeats access_tokens.ttl_choices[%d]", d, j)
		}
		seen[d] = i
	}
	if a.MaxPerUser < 1 {
		return bad("access_tokens.max_per_user", "must be at least 1, got %d", a.MaxPerUser)
	}
	if a.MaxCIDRs < 1 {
		return bad("access_tokens.max_cidrs", "must be at least 1, got %d", a.MaxCIDRs)
	}
	return nil
}

func (c *Config) validateAdmin() error {
	for i, r := range c.Admin.Roles {
		if strings.TrimSpace(r) == "" {
			return bad(fmt.Sprintf("admin.roles[%d]", i), "must not be empty")
		}
	}
	if strings.TrimSpace(c.Audit.Output) == "" {
		return bad("audit.output", "must be stdout, stderr or a file path")
	}
	return nil
}

func (c *Config) validateLimits() error {
	l := c.Limits
	if l.MaxHeaderBytes < 4<<10 || l.MaxHeaderBytes > 1<<20 {
		return bad("limits.max_header_bytes", "%d is outside 4096..1048576", l.MaxHeaderBytes)
	}
	if l.MaxBodyBytes < 1 {
		return bad("limits.max_body_bytes", "must be positive, got %d", l.MaxBodyBytes)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"limits.read_header_timeout", l.ReadHeaderTimeout},
		{"limits.idle_timeout", l.IdleTimeout},
		{"limits.upstream_timeout", l.UpstreamTimeout},
		{"limits.shutdown_grace", l.ShutdownGrace},
	} {
		if err := checkPositive(d.key, d.v); err != nil {
			return err
		}
	}
	if l.ReadTimeout < 0 {
		return bad("limits.read_timeout", "must be 0 (none) or positive, got %s", l.ReadTimeout)
	}
	if l.ReadTimeout > 0 && l.ReadHeaderTimeout > l.ReadTimeout {
		return bad("limits.read_header_timeout", "%s is longer than limits.read_timeout (%s)", l.ReadHeaderTimeout, l.ReadTimeout)
	}
	return nil
}

// validToken reports an RFC 9110 token (a header field name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(b)) {
			return false
		}
	}
	return true
}

// validHeaderValue refuses control characters, which would split or
// corrupt the response.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; (b < 0x20 && b != '\t') || b == 0x7f {
			return false
		}
	}
	return true
}

func (c *Config) validateHeaders() error {
	if u := c.Headers.UnderscoreHeaders; u != "drop" && u != "refuse" {
		return bad("headers.underscore_headers", "%q must be drop or refuse", u)
	}
	if strings.TrimSpace(c.Headers.FrameAncestors) == "" || !validHeaderValue(c.Headers.FrameAncestors) || strings.ContainsAny(c.Headers.FrameAncestors, ";,") {
		return bad("headers.frame_ancestors", "must be a CSP source list such as 'self' https://app.example.com")
	}
	prefixes := map[string]int{}
	for i, o := range c.Headers.Overrides {
		key := fmt.Sprintf("headers.overrides[%d]", i)
		if !strings.HasPrefix(o.Prefix, "/") {
			return bad(key+".prefix", "%q must start with /", o.Prefix)
		}
		if j, dup := prefixes[o.Prefix]; dup {
			return bad(key+".prefix", "%q repeats headers.overrides[%d]", o.Prefix, j)
		}
		prefixes[o.Prefix] = i
		if len(o.Set) == 0 && len(o.Remove) == 0 {
			return bad(key, "sets and removes nothing")
		}
		for name, v := range o.Set {
			if !validToken(name) {
				return bad(key+".set", "%q is not a header name", name)
			}
			if !validHeaderValue(v) {
				return bad(key+".set."+name, "contains control characters")
			}
			if strings.TrimSpace(v) == "" {
				return bad(key+".set."+name, "is empty (list the header under remove to drop it)")
			}
		}
		for j, name := range o.Remove {
			if !validToken(name) {
				return bad(fmt.Sprintf("%s.remove[%d]", key, j), "%q is not a header name", name)
			}
			for setName := range o.Set {
				if strings.EqualFold(setName, name) {
					return bad(fmt.Sprintf("%s.remove[%d]", key, j), "%q is also in set", name)
				}
			}
		}
	}
	return nil
}

func (c *Config) validateLog() error {
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
		return nil
	}
	return bad("log.level", "%q is not debug, info, warn or error", c.Log.Level)
}

func (t Tracing) validate() error {
	if t.SampleRatio < 0 || t.SampleRatio > 1 || t.SampleRatio != t.SampleRatio {
		return bad("tracing.sample_ratio", "%v is not between 0 and 1", t.SampleRatio)
	}
	if t.Endpoint == "" {
		return nil
	}
	u, err := url.Parse(t.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return bad("tracing.endpoint", "must be an http(s) URL without credentials")
	}
	if t.ServiceName == "" {
		return bad("tracing.service_name", "must not be empty")
	}
	return nil
}

func (c *Config) validateRateLimits() error {
	rl := c.RateLimits
	for _, k := range []struct {
		key string
		l   RateLimit
	}{{"address", rl.Address}, {"login_address", rl.LoginAddress}, {"login_username", rl.LoginUsername},
		{"login_failures", rl.LoginFailures}, {"api", rl.API}, {"guest_token", rl.GuestToken},
		{"anonymous_session", rl.AnonymousSession}} {
		key := "rate_limits." + k.key
		switch {
		case k.l.Rate < 0 || k.l.Burst < 0:
			return bad(key, "rate and burst must not be negative")
		case k.l.Rate > 0 && k.l.Period < time.Millisecond:
			return bad(key+".period", "must be at least 1ms when rate is set")
		case k.l.Rate > 0 && k.l.Period/time.Duration(k.l.Rate) <= 0:
			return bad(key, "rate %d is too high for period %s", k.l.Rate, k.l.Period)
		case k.l.Rate > 0 && time.Duration(k.l.Burst) > (100*365*24*time.Hour)/(k.l.Period/time.Duration(k.l.Rate)):
			return bad(key+".burst", "%d bursts of period/rate exceed a century", k.l.Burst)
		}
	}
	if rl.KnownDevices < 0 || rl.KnownDevices > 50 {
		return bad("rate_limits.known_devices", "%d is outside 0..50", rl.KnownDevices)
	}
	if rl.LocalKeys < 0 {
		return bad("rate_limits.local_keys", "must not be negative")
	}
	return nil
}
