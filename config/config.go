// Package config loads the gateway's configuration: a YAML file, then SG_…
// environment overrides, then the secrets named by …_file keys. The result
// is a tree of plain structs; cmd turns it into each package's own options,
// so no domain package imports config.
//
// Every key has a default (Default), unknown YAML keys and unknown SG_…
// variables are errors, and Validate reports the first bad value as one line
// that names its key. Secret values are held in Secret, which never prints.
// Strength checks of secrets live in policy (pure decisions) and are applied
// by cmd, because config may import only the standard library and YAML.
package config

import "time"

// Config is the whole configuration. Field comments give the YAML key; the
// environment name is SG_ plus the upper-cased key path joined by "_"
// (store.redis_url → SG_STORE_REDIS_URL). docs/configuration.md is the
// operator's reference and must list every key here.
type Config struct {
	// Listen is the address the gateway serves on (host:port).
	Listen string `yaml:"listen" reload:"restart"`
	// PublicURL is the origin users reach the gateway at. https:// turns on
	// Secure + __Host- cookies and HSTS. Default: http://<listen>.
	PublicURL string `yaml:"public_url" reload:"restart"`
	TLS       TLS    `yaml:"tls" reload:"restart"`
	// TrustedProxies are CIDRs (or single addresses) whose X-Forwarded-* and
	// X-Request-ID headers are honoured; from anyone else they are replaced.
	TrustedProxies []string `yaml:"trusted_proxies" reload:"apply"`
	// TrustedHeaders are request headers only trusted proxies may set
	// (a sign-on proxy's user header for Superset's REMOTE_USER); from
	// anyone else they are removed before Superset sees the request.
	TrustedHeaders []string `yaml:"trusted_headers" reload:"apply"`
	// Upstreams are the Superset nodes' base URLs (http or https).
	Upstreams []string `yaml:"upstreams" reload:"apply"`
	// Balance is "round_robin" or "least_conn".
	Balance     string      `yaml:"balance" reload:"apply"`
	HealthCheck HealthCheck `yaml:"health_check" reload:"apply"`
	Passive     Passive     `yaml:"passive" reload:"apply"`
	Superset    Superset    `yaml:"superset" reload:"restart"`
	Store       Store       `yaml:"store" reload:"restart"`
	Session     Session     `yaml:"session" reload:"restart"`
	// AccessTokens configures the scoped access tokens (/-/tokens and
	// `Authorization: Bearer sgw_…`).
	AccessTokens AccessTokens `yaml:"access_tokens" reload:"restart"`
	// ReconcileInterval is how often the reconciler lists Superset's users;
	// 0 turns it off.
	ReconcileInterval time.Duration `yaml:"reconcile_interval" reload:"restart"`
	Admin             Admin         `yaml:"admin" reload:"restart"`
	Metrics           Metrics       `yaml:"metrics" reload:"restart"`
	Audit             Audit         `yaml:"audit" reload:"restart"`
	Limits            Limits        `yaml:"limits" reload:"restart"`
	Headers           Headers       `yaml:"headers" reload:"apply"`
	// RateLimits are the request classes' limits (docs/ratelimits.md).
	RateLimits RateLimits `yaml:"rate_limits" reload:"restart"`
	Log        Log        `yaml:"log" reload:"restart"`
	// Extensions: the extension supply-chain policy at the proxy.
	Extensions Extensions `yaml:"extensions" reload:"restart"`
	// Tracing exports OpenTelemetry spans; off unless an endpoint is set.
	Tracing Tracing `yaml:"tracing" reload:"restart"`
}

// Tracing configures the OTLP/HTTP span export (package tracing).
type Tracing struct {
	// Endpoint is the collector's OTLP/HTTP traces URL
	// ("http://collector:4318/v1/traces"); empty turns tracing off.
	Endpoint string `yaml:"endpoint"`
	// SampleRatio is the share of new traces recorded, 0 to 1.
	SampleRatio float64 `yaml:"sample_ratio"`
	// ServiceName is the service.name of the spans.
	ServiceName string `yaml:"service_name"`
}

// RateLimits configures the rate-limit stage. Each class is a GCRA
// bucket: rate events per period, burst at once; rate 0 turns a class off.
type RateLimits struct {
	// Enabled false turns every class off (the anonymous-session class
	// then falls back to the vault's per-replica limit).
	Enabled          bool      `yaml:"enabled"`
	Address          RateLimit `yaml:"address"`
	LoginAddress     RateLimit `yaml:"login_address"`
	LoginUsername    RateLimit `yaml:"login_username"`
	LoginFailures    RateLimit `yaml:"login_failures"`
	API              RateLimit `yaml:"api"`
	GuestToken       RateLimit `yaml:"guest_token"`
	AnonymousSession RateLimit `yaml:"anonymous_session"`
	// KnownDevices is how many usernames one browser's known-device
	// cookie remembers.
	KnownDevices int `yaml:"known_devices"`
	// LocalKeys bounds the per-process buckets (embedded store, Redis
	// outage).
	LocalKeys int `yaml:"local_keys"`
}

// RateLimit is one class's bucket.
type RateLimit struct {
	Rate   int           `yaml:"rate"`
	Period time.Duration `yaml:"period"`
	Burst  int           `yaml:"burst"`
}

// TLS configures TLS termination. Both files empty means plain HTTP.
type TLS struct {
	// CertFile and KeyFile are PEM files, re-read when they change.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// RedirectHTTPListen, when set, is a plain-HTTP listener that only
	// redirects to public_url (requires TLS).
	RedirectHTTPListen string `yaml:"redirect_http_listen"`
}

// Enabled reports whether TLS termination is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// HealthCheck configures the active health check of every upstream node.
type HealthCheck struct {
	// Path is requested on each node with GET; a 2xx answer is healthy.
	Path     string        `yaml:"path"`
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one probe; it must not exceed Interval.
	Timeout time.Duration `yaml:"timeout"`
	// UnhealthyThreshold consecutive failed probes mark a node down;
	// HealthyThreshold consecutive good ones bring it back.
	UnhealthyThreshold int `yaml:"unhealthy_threshold"`
	HealthyThreshold   int `yaml:"healthy_threshold"`
}

// Passive configures ejection of a node after failures seen on real traffic.
type Passive struct {
	// MaxFails consecutive failed proxied requests eject the node; 0 turns
	// passive ejection off.
	MaxFails int `yaml:"max_fails"`
	// Cooldown is how long an ejected node stays out before it is tried again.
	Cooldown time.Duration `yaml:"cooldown"`
}

// Superset describes the Superset deployment behind the gateway. The
// secrets are read from the …_file keys by Load; the loaded values never
// appear in YAML.
type Superset struct {
	// SecretKeyFile holds Superset's SECRET_KEY (signs its cookies).
	SecretKeyFile string `yaml:"secret_key_file"`
	// JWTSecretFile holds JWT_SECRET_KEY when it differs from SECRET_KEY;
	// empty means the secret key is also the JWT secret.
	JWTSecretFile string `yaml:"jwt_secret_file"`
	// GuestTokenSecretFile holds GUEST_TOKEN_JWT_SECRET.
	GuestTokenSecretFile string `yaml:"guest_token_secret_file"`
	// GuestTokenAudience is GUEST_TOKEN_JWT_AUDIENCE; empty: not checked.
	GuestTokenAudience string `yaml:"guest_token_audience"`
	// ServiceUser is the Superset identity the gateway acts as (reconciler,
	// dashboard alias lookup).
	ServiceUser string `yaml:"service_user"`
	// ServiceUserID is the numeric Superset user id of ServiceUser. The
	// gateway calls Superset's API as that user with short-lived access
	// JWTs it mints with Superset's JWT secret, which works whatever
	// AUTH_TYPE Superset uses and needs no password. 0 turns off what needs
	// it (dashboard alias lookup for guest-token revocation, the reconciler):
	// those answer with an error naming this key.
	ServiceUserID int `yaml:"service_user_id"`
	// AllowWeakSecrets lets the gateway start with Superset secrets and its
	// own secrets that fail the strength check (empty, short, published
	// defaults). It exists for throw-away test and demo setups that run
	// Superset with its shipped defaults; in production it means anyone can
	// forge Superset cookies and tokens, so it is off by default and the
	// gateway logs a warning at every start when it is on.
	AllowWeakSecrets bool `yaml:"allow_weak_secrets"`
	// RefuseMismatchedUpstreamSecret takes out of the upstream pool a node
	// whose Superset signs its session cookies or guest tokens with
	// another key than the configured ones (upstreamsecret). Off, such a
	// node is only reported. A reload builds a new pool, which re-checks
	// every node, so it applies at once.
	RefuseMismatchedUpstreamSecret bool `yaml:"refuse_mismatched_upstream_secret" reload:"apply"`
	// AllowGuestSecretEqualSecretKey accepts a GUEST_TOKEN_JWT_SECRET equal
	// to SECRET_KEY (or JWT_SECRET_KEY): anyone who learns the guest secret
	// from an embedding backend could then also sign session cookies and
	// API tokens, so it is refused by default.
	AllowGuestSecretEqualSecretKey bool `yaml:"allow_guest_secret_equal_secret_key" reload:"restart"`
	// FABAPIKeys decides Flask-AppBuilder API keys (`Authorization: Bearer
	// sst_…`, which Superset accepts with FAB >= 5.2 and
	// FAB_API_KEY_ENABLED): "refuse" (the default and, for now, the only
	// value) answers them and the key management routes with their own
	// reasons. "enforce" is reserved and refused as not implemented (see
	// docs/fab-api-keys.md).
	FABAPIKeys string `yaml:"fab_api_keys" reload:"restart"`
	// FABAPIKeyPrefixes are the key prefixes Superset's
	// FAB_API_KEY_PREFIXES lists (FAB's default: sst_). A bearer starting
	// with any of them is a FAB API key to the gateway.
	FABAPIKeyPrefixes []string `yaml:"fab_api_key_prefixes" reload:"restart"`
	// FABAPIKeyCacheTTL (enforce) is how long a key Superset confirmed is
	// trusted without asking again: a key revoked at Superset directly,
	// not through the gateway, works at most this long.
	FABAPIKeyCacheTTL time.Duration `yaml:"fab_api_key_cache_ttl" reload:"restart"`

	// Loaded by Load from the files above; nil when the file key is empty.
	SecretKey        Secret `yaml:"-"`
	JWTSecret        Secret `yaml:"-"` // equals SecretKey when JWTSecretFile is empty
	GuestTokenSecret Secret `yaml:"-"`
}

// Store selects the storage backend.
type Store struct {
	// RedisURL selects Redis: redis://, rediss:// (TLS),
	// redis+sentinel://h1,h2/<master>, redis+cluster://h1,h2 (and rediss+
	// forms), with an optional ACL user and password. Empty selects the
	// embedded bbolt file <data_dir>/gateway.db.
	RedisURL string `yaml:"redis_url"`
	// DataDir holds the embedded store and generated cookie keys.
	DataDir string `yaml:"data_dir"`
	// RedisTLSCAFile is a PEM bundle that verifies a rediss:// server;
	// empty means the system roots.
	RedisTLSCAFile string `yaml:"redis_tls_ca_file"`
	// RedisTLSServerName overrides the name checked in the Redis server's
	// certificate (default: the URL's host).
	RedisTLSServerName string `yaml:"redis_tls_server_name"`
	// RedisSentinelUsername and RedisSentinelPasswordFile authenticate to
	// Sentinels whose credentials differ from the master's (in the URL).
	RedisSentinelUsername     string `yaml:"redis_sentinel_username"`
	RedisSentinelPasswordFile string `yaml:"redis_sentinel_password_file"`
	// RedisWaitReplicas, above 0, makes every write wait until that many
	// replicas acknowledged it (Redis WAIT), so that a Sentinel failover
	// keeps every revocation the gateway acknowledged; a write not
	// acknowledged in RedisWaitTimeout is answered 503 and can be repeated.
	RedisWaitReplicas int `yaml:"redis_wait_replicas"`
	// RedisTimeout bounds each Redis command (socket read and write): a
	// slow Redis answers 503 in bounded time instead of holding requests.
	RedisTimeout     time.Duration `yaml:"redis_timeout"`
	RedisWaitTimeout time.Duration `yaml:"redis_wait_timeout"`

	// RedisSentinelPassword is the content of RedisSentinelPasswordFile,
	// loaded by Load.
	RedisSentinelPassword Secret `yaml:"-"`
}

// Session configures gateway sessions.
type Session struct {
	// CookieKeysFile holds the cookie hash/encryption keys, newest first;
	// empty means keys generated into <data_dir>/cookie-keys.
	CookieKeysFile       string        `yaml:"cookie_keys_file"`
	IdleTimeout          time.Duration `yaml:"idle_timeout"`
	AbsoluteTimeout      time.Duration `yaml:"absolute_timeout"`
	AnonymousIdleTimeout time.Duration `yaml:"anonymous_idle_timeout"`
	// CacheTTL bounds how long a replica may serve a cached session or epoch
	// (the bound on cross-replica propagation).
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// CookieSameSite is the gateway cookie's SameSite attribute: "lax"
	// (default), "strict" or "none". "none" lets a cross-site page (an
	// embedding host) send the cookie and needs an https public_url, since
	// browsers drop SameSite=None cookies that are not Secure.
	CookieSameSite string `yaml:"cookie_samesite"`

	// CookieKeys is the content of CookieKeysFile, loaded by Load; nil when
	// the key is empty (cmd then generates or reuses keys in data_dir).
	CookieKeys Secret `yaml:"-"`
}

// AccessTokens configures the scoped access tokens users create on
// /-/tokens. cmd turns it into accesstoken.Policy and the manager's pepper.
type AccessTokens struct {
	// Enabled serves /-/tokens and accepts `Bearer sgw_…`. false removes
	// the page and refuses every such bearer with 401 before it can reach
	// Superset; admins can still list and revoke existing tokens.
	Enabled bool `yaml:"enabled"`
	// MaxTTL is the longest expiry a token may have.
	MaxTTL time.Duration `yaml:"max_ttl"`
	// TTLChoices are the expiries the page offers, in this order (the
	// first is preselected). Each is a whole number of seconds, positive
	// and at most MaxTTL. Left out (nil), it is derived from MaxTTL: those
	// of 1, 7, 30 and 90 days that fit, and MaxTTL itself.
	TTLChoices []time.Duration `yaml:"ttl_choices"`
	// MaxPerUser bounds a user's live (not expired, not revoked) tokens.
	MaxPerUser int `yaml:"max_per_user"`
	// MaxCIDRs bounds the source networks of one token.
	MaxCIDRs int `yaml:"max_cidrs"`
	// PepperFile holds the pepper that keys the HMAC of token secrets (at
	// least 32 bytes). Empty: derived from the oldest cookie-key
	// generation, so retiring that generation invalidates every token.
	// Changing the pepper invalidates every token.
	PepperFile string `yaml:"pepper_file"`

	// Pepper is the content of PepperFile, loaded by Load; nil when the
	// key is empty.
	Pepper Secret `yaml:"-"`
}

// Admin configures the admin surface.
type Admin struct {
	// Roles are the Superset roles whose members may use the admin API.
	Roles []string `yaml:"roles"`
	// TokensFile lists admin API tokens as "<name> <sha256-hex>" lines.
	TokensFile string `yaml:"tokens_file"`

	// Tokens is the content of TokensFile, loaded by Load.
	Tokens Secret `yaml:"-"`
}

// Metrics configures the Prometheus listener.
type Metrics struct {
	// Listen serves /metrics on its own address; empty turns it off.
	Listen string `yaml:"listen"`
	// SlowRequestThreshold: a request Superset answered that took at least
	// this long in total is counted per endpoint class and logged with its
	// request id; zero turns it off.
	SlowRequestThreshold time.Duration `yaml:"slow_request_threshold"`
}

// Audit configures the audit sink.
type Audit struct {
	// Output is "stdout", "stderr" or a file path (appended to).
	Output string `yaml:"output"`
}

// Limits bounds what one client can make the gateway hold.
type Limits struct {
	// MaxHeaderBytes bounds the request line and headers (431 beyond).
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBodyBytes bounds a request body (413 beyond).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ReadHeaderTimeout, ReadTimeout and IdleTimeout are the server's
	// defences against slow clients (http.Server fields of the same names).
	// ReadTimeout bounds the whole request, body included; 0 (the default)
	// means none, because net/http keeps that deadline on upgraded
	// connections, so any bound would also cut WebSocket sessions and slow
	// but legitimate uploads.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	// UpstreamTimeout bounds the wait for an upstream's response headers
	// (504 beyond).
	UpstreamTimeout time.Duration `yaml:"upstream_timeout" reload:"apply"`
	// ShutdownGrace is how long in-flight requests may drain on SIGTERM.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
}

// Headers configures the security headers the gateway adds.
type Headers struct {
	// FrameAncestors is the CSP frame-ancestors source list sent on
	// /embedded/ (where X-Frame-Options is not sent).
	FrameAncestors string `yaml:"frame_ancestors"`
	// Overrides change the defaults for paths starting with Prefix; the
	// longest matching prefix wins.
	Overrides []HeaderOverride `yaml:"overrides"`
	// UnderscoreHeaders is what happens to a request header whose name
	// contains "_": "drop" (the default, as nginx's
	// underscores_in_headers off) or "refuse" (400). Such a header never
	// reaches Superset: gunicorn keeps it only from the gateway's address,
	// and then SCRIPT_NAME moves Superset's routing away from the path the
	// gateway decided on, and X_Remote_User would pass for X-Remote-User.
	UnderscoreHeaders string `yaml:"underscore_headers"`
}

// HeaderOverride sets and removes response headers under a path prefix.
type HeaderOverride struct {
	Prefix string            `yaml:"prefix"`
	Set    map[string]string `yaml:"set"`
	Remove []string          `yaml:"remove"`
}

// Log configures the gateway's own log (JSON lines on stderr).
type Log struct {
	// Level is "debug", "info", "warn" or "error".
	Level string `yaml:"level"`
}

// Default returns the configuration used for every key the file and the
// environment leave out.
func Default() *Config {
	return &Config{
		Listen:    "127.0.0.1:8080",
		Upstreams: []string{"http://127.0.0.1:8088"},
		Balance:   "round_robin",
		HealthCheck: HealthCheck{
			Path:               "/health",
			Interval:           5 * time.Second,
			Timeout:            2 * time.Second,
			UnhealthyThreshold: 3,
			HealthyThreshold:   2,
		},
		Passive: Passive{MaxFails: 3, Cooldown: 10 * time.Second},
		Superset: Superset{ServiceUser: "admin", FABAPIKeys: FABAPIKeysRefuse, FABAPIKeyPrefixes: []string{"sst_"},
			FABAPIKeyCacheTTL: 30 * time.Second},
		Store: Store{DataDir: "./data", RedisTimeout: time.Second, RedisWaitTimeout: 500 * time.Millisecond},
		Session: Session{
			IdleTimeout:          8 * time.Hour,
			AbsoluteTimeout:      24 * time.Hour,
			AnonymousIdleTimeout: 30 * time.Minute,
			CacheTTL:             time.Second,
			CookieSameSite:       "lax",
		},
		// access_tokens.ttl_choices is derived from max_ttl by Parse.
		AccessTokens:      AccessTokens{Enabled: true, MaxTTL: 90 * 24 * time.Hour, MaxPerUser: 20, MaxCIDRs: 16},
		ReconcileInterval: 60 * time.Second,
		Admin:             Admin{Roles: []string{"Admin"}},
		Metrics:           Metrics{Listen: "127.0.0.1:9464", SlowRequestThreshold: 5 * time.Second},
		Tracing:           Tracing{SampleRatio: 1, ServiceName: "superset-gateway"},
		Audit:             Audit{Output: "stdout"},
		// Sized for Superset: a dashboard opens with one request per
		// chart, so the per-address and per-principal classes are
		// generous; sign-ins follow OWASP's credential-stuffing advice.
		RateLimits: RateLimits{
			Enabled:          true,
			Address:          RateLimit{Rate: 100, Period: time.Second, Burst: 300},
			LoginAddress:     RateLimit{Rate: 10, Period: time.Minute, Burst: 10},
			LoginUsername:    RateLimit{Rate: 10, Period: time.Minute, Burst: 10},
			LoginFailures:    RateLimit{Rate: 5, Period: 15 * time.Minute, Burst: 5},
			API:              RateLimit{Rate: 50, Period: time.Second, Burst: 200},
			GuestToken:       RateLimit{Rate: 60, Period: time.Minute, Burst: 30},
			AnonymousSession: RateLimit{Rate: 60, Period: time.Minute, Burst: 20},
			KnownDevices:     5,
			LocalKeys:        100000,
		},
		Limits: Limits{
			MaxHeaderBytes:    64 << 10,
			MaxBodyBytes:      32 << 20,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       120 * time.Second,
			UpstreamTimeout:   60 * time.Second,
			ShutdownGrace:     20 * time.Second,
		},
		Headers: Headers{FrameAncestors: "'self'", UnderscoreHeaders: "drop"},
		Log:     Log{Level: "info"},
		Extensions: Extensions{OnUnavailable: "closed", RefreshInterval: 10 * time.Minute,
			MaxDataAge: 7 * 24 * time.Hour},
	}
}
