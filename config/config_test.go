package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(writeFile(t, "c.yaml", "# nothing but a comment\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.PublicURL = "http://127.0.0.1:8080"
	want.AccessTokens.TTLChoices = []time.Duration{24 * time.Hour, 168 * time.Hour, 720 * time.Hour, 2160 * time.Hour}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	if c.Limits.MaxHeaderBytes != 64<<10 || c.Limits.MaxBodyBytes != 32<<20 ||
		c.Limits.UpstreamTimeout != 60*time.Second || c.Limits.ShutdownGrace != 20*time.Second ||
		c.Headers.FrameAncestors != "'self'" || c.Headers.UnderscoreHeaders != "drop" || c.Balance != "round_robin" || c.Store.DataDir != "./data" ||
		!c.AccessTokens.Enabled || c.AccessTokens.MaxTTL != 2160*time.Hour || c.AccessTokens.MaxPerUser != 20 ||
		c.AccessTokens.MaxCIDRs != 16 || c.AccessTokens.PepperFile != "" || c.AccessTokens.Pepper != nil {
		t.Fatalf("defaults differ from the documented ones: %+v", c)
	}
}

func TestLoadEmptyPathIsDefaultsAndEnv(t *testing.T) {
	c, err := Load("", []string{"SG_LISTEN=127.0.0.1:9999"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9999" || c.PublicURL != "http://127.0.0.1:9999" {
		t.Fatalf("listen %q public_url %q", c.Listen, c.PublicURL)
	}
}

func TestLoadFullFile(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "sk")
	guest := filepath.Join(dir, "gk")
	pepper := filepath.Join(dir, "pepper")
	os.WriteFile(pepper, []byte("the-pepper-value\n"), 0o600)
	os.WriteFile(secret, []byte("the-secret-value\n"), 0o600)
	os.WriteFile(guest, []byte("guest-value\r\n"), 0o600)
	y := fmt.Sprintf(`
listen: 0.0.0.0:8443
public_url: https://bi.example.com
tls: {cert_file: /c.pem, key_file: /k.pem, redirect_http_listen: ":8080"}
trusted_proxies: [10.0.0.0/8, 192.168.1.1, "::1"]
upstreams: [http://a:8088, "https://b:8088/"]
balance: least_conn
health_check: {path: /health, interval: 3s, timeout: 1s, unhealthy_threshold: 2, healthy_threshold: 1}
passive: {max_fails: 5, cooldown: 30s}
superset:
  secret_key_file: %s
  guest_token_secret_file: %s
  guest_token_audience: superset
  service_user: gateway
  allow_weak_secrets: true
store: {redis_url: "redis://:pw@r:6379/0", data_dir: /var/lib/sg}
session: {idle_timeout: 1h, absolute_timeout: 12h, anonymous_idle_timeout: 10m, cache_ttl: 500ms}
access_tokens: {enabled: false, max_ttl: 720h, ttl_choices: [1h, 168h, 720h], max_per_user: 5, max_cidrs: 4, pepper_file: %s}
reconcile_interval: 0s
admin: {roles: [Admin, Ops]}
metrics: {listen: ""}
audit: {output: /var/log/sg-audit.jsonl}
limits: {max_header_bytes: 8192, max_body_bytes: 1048576, read_header_timeout: 2s, read_timeout: 30s, idle_timeout: 60s, upstream_timeout: 10s, shutdown_grace: 5s}
headers:
  frame_ancestors: "'self' https://app.example.com"
  underscore_headers: refuse
  overrides:
    - prefix: /static/
      set: {Cache-Control: "public, max-age=3600"}
      remove: [Permissions-Policy]
log: {level: debug}
`, secret, guest, pepper)
	c, err := Load(writeFile(t, "c.yaml", y), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Superset.SecretKey) != "the-secret-value" || string(c.Superset.JWTSecret) != "the-secret-value" {
		t.Fatal("secret key not read, or its newline kept, or jwt secret not defaulted to it")
	}
	if string(c.Superset.GuestTokenSecret) != "guest-value" {
		t.Fatalf("guest secret: CRLF not trimmed")
	}
	if c.Balance != "least_conn" || len(c.Upstreams) != 2 || c.Passive.MaxFails != 5 ||
		c.HealthCheck.Interval != 3*time.Second || c.Session.CacheTTL != 500*time.Millisecond ||
		c.Limits.MaxBodyBytes != 1<<20 || c.Metrics.Listen != "" || c.ReconcileInterval != 0 ||
		c.TLS.RedirectHTTPListen != ":8080" || !c.Superset.AllowWeakSecrets || c.Log.Level != "debug" ||
		c.Headers.Overrides[0].Set["Cache-Control"] != "public, max-age=3600" ||
		c.Headers.Overrides[0].Remove[0] != "Permissions-Policy" || c.Headers.UnderscoreHeaders != "refuse" {
		t.Fatalf("values not applied: %+v", c)
	}
	a := c.AccessTokens
	if a.Enabled || a.MaxTTL != 720*time.Hour || !reflect.DeepEqual(a.TTLChoices, []time.Duration{time.Hour, 168 * time.Hour, 720 * time.Hour}) ||
		a.MaxPerUser != 5 || a.MaxCIDRs != 4 || string(a.Pepper) != "the-pepper-value" {
		t.Fatalf("access_tokens not applied (or the pepper's newline kept): %+v", a)
	}
	// Keys left out keep their defaults.
	if c.Session.CookieKeysFile != "" || c.Admin.TokensFile != "" {
		t.Fatal("absent keys not defaulted")
	}
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		yaml string
		want string
	}{
		{"listn: 1.2.3.4:80\n", "config: listn (line 1): unknown key"},
		{"health_check: {intervall: 5s}\n", "config: health_check.intervall (line 1): unknown key"},
		{"headers: {overrides: [{prefix: /x, sett: {A: b}}]}\n", "config: headers.overrides[0].sett (line 1): unknown key"},
		{"listen: a\nlisten: b\n", "config: listen (line 2): key given twice"},
		{"health_check: {interval: 5}\n", `config: health_check.interval (line 1): "5" is not a duration`},
		{"health_check: {interval: fast}\n", `config: health_check.interval (line 1): "fast" is not a duration`},
		{"limits: {max_body_bytes: 32MiB}\n", `config: limits.max_body_bytes (line 1): "32MiB" is not a whole number`},
		{"superset: {allow_weak_secrets: perhaps}\n", `config: superset.allow_weak_secrets (line 1): "perhaps" is not true or false`},
		{"upstreams: http://a\n", "config: upstreams (line 1): want a list"},
		{"tls: [a]\n", "config: tls (line 1): want a mapping of keys"},
		{"listen: [a]\n", "config: listen (line 1): want a single value, not a list"},
		{"upstreams: [http://a, ftp://x]\n", `config: upstreams[1]: "ftp://x" is not an http(s) URL`},
		{"upstreams: []\n", "config: upstreams: at least one Superset URL is required"},
		{"upstreams: [http://a, http://a/]\n", `config: upstreams[1]: "http://a/" repeats upstreams[0]`},
		{"upstreams: [\"http://u:p@a\"]\n", `config: upstreams[0]: "http://u:p@a" must not carry credentials`},
		{"listen: localhost\n", `config: listen: "localhost" is not a host:port address`},
		{"public_url: https://x/superset\n", "config: public_url: \"https://x/superset\" must be an origin without a path"},
		{"tls: {cert_file: /c}\n", "config: tls.key_file: is required when tls.cert_file is set"},
		{"public_url: http://x\ntls: {cert_file: /c, key_file: /k}\n", `config: public_url: "http://x" must be https:// when TLS is configured`},
		{"tls: {redirect_http_listen: \":80\"}\n", "config: tls.redirect_http_listen: needs tls.cert_file"},
		{"trusted_proxies: [10.0.0.0/33]\n", `config: trusted_proxies[0]: "10.0.0.0/33" is not a CIDR`},
		{"trusted_headers: [\"X Remote\"]\n", `config: trusted_headers[0]: "X Remote" is not an HTTP header name`},
		{"trusted_headers: [X-Forwarded-User]\n", `config: trusted_headers[0]: X-Forwarded-User is a forwarding header`},
		{"trusted_headers: [cookie]\n", `config: trusted_headers[0]: Cookie carries the request itself`},
		{"trusted_headers: [X-Remote-User, x-remote-user]\n", `config: trusted_headers[1]: X-Remote-User repeats trusted_headers[0]`},
		{"trusted_headers: [X_Remote_User]\n", `config: trusted_headers[0]: "X_Remote_User" contains "_"`},
		{"headers: {underscore_headers: allow}\n", `config: headers.underscore_headers: "allow" must be drop or refuse`},
		{"balance: random\n", `config: balance: "random" is not round_robin or least_conn`},
		{"health_check: {path: health}\n", `config: health_check.path: "health" must start with /`},
		{"health_check: {interval: 1s, timeout: 2s}\n", "config: health_check.timeout: 2s is longer than health_check.interval"},
		{"health_check: {unhealthy_threshold: 0}\n", "config: health_check.unhealthy_threshold: must be at least 1"},
		{"passive: {max_fails: -1}\n", "config: passive.max_fails: must be 0 (off) or more"},
		{"passive: {cooldown: 0s}\n", "config: passive.cooldown: must be a positive duration"},
		{"store: {redis_url: \"http://r\"}\n", `config: store.redis_url: scheme "http" is not redis`},
		{"store: {data_dir: \"\"}\n", "config: store.data_dir: must not be empty"},
		{"session: {idle_timeout: 48h}\n", "config: session.idle_timeout: 48h0m0s is longer than session.absolute_timeout"},
		{"session: {cache_ttl: 5m}\n", "config: session.cache_ttl: 5m0s is longer than 1m"},
		{"session: {anonymous_idle_timeout: -1s}\n", "config: session.anonymous_idle_timeout: must be a positive duration"},
		{"session: {cookie_samesite: None}\n", `config: session.cookie_samesite: "None" is not lax, strict or none`},
		{"public_url: http://gw.example\nsession: {cookie_samesite: none}\n", `config: session.cookie_samesite: none needs an https:// public_url`},
		{"metrics: {listen: \"127.0.0.1:8080\"}\n", `config: metrics.listen: "127.0.0.1:8080" is also listen`},
		{"limits: {max_header_bytes: 10}\n", "config: limits.max_header_bytes: 10 is outside"},
		{"limits: {upstream_timeout: 0s}\n", "config: limits.upstream_timeout: must be a positive duration"},
		{"headers: {frame_ancestors: \"'self'; script-src *\"}\n", "config: headers.frame_ancestors: must be a CSP source list"},
		{"headers: {underscore_headers: \"\"}\n", `config: headers.underscore_headers: "" must be drop or refuse`},
		{"headers: {overrides: [{prefix: x, set: {A: b}}]}\n", `config: headers.overrides[0].prefix: "x" must start with /`},
		{"headers: {overrides: [{prefix: /x, set: {\"Bad Name\": b}}]}\n", `config: headers.overrides[0].set: "Bad Name" is not a header name`},
		{"headers: {overrides: [{prefix: /x, set: {X-A: \"a\\r\\nSet-Cookie: x\"}}]}\n", "config: headers.overrides[0].set.X-A: contains control characters"},
		{"headers: {overrides: [{prefix: /x, set: {X-A: a}, remove: [x-a]}]}\n", `config: headers.overrides[0].remove[0]: "x-a" is also in set`},
		{"headers: {overrides: [{prefix: /x}]}\n", "config: headers.overrides[0]: sets and removes nothing"},
		{"log: {level: verbose}\n", `config: log.level: "verbose" is not debug, info, warn or error`},
		{"reconcile_interval: 10ms\n", "config: reconcile_interval: 10ms is shorter than 1s"},
		{"store: {redis_wait_replicas: 1}\n", "config: store.redis_wait_replicas: is set but store.redis_url is empty (the embedded store is in use)"},
		{"store: {redis_url: redis://r, redis_wait_replicas: -1}\n", "config: store.redis_wait_replicas: -1 is not between 0 and 16"},
		{"store: {redis_url: redis://r, redis_wait_replicas: 1, redis_wait_timeout: 1ms}\n", "config: store.redis_wait_timeout: 1ms is not between 10ms and 10s"},
		{"access_tokens: {max_ttl: 90d}\n", `config: access_tokens.max_ttl (line 1): "90d" is not a duration`},
		{"access_tokens: {max_ttl: 0s}\n", "config: access_tokens.max_ttl: must be a positive duration"},
		{"access_tokens: {max_ttl: 1500ms, ttl_choices: [1s]}\n", "config: access_tokens.max_ttl: 1.5s is not a whole number of seconds"},
		{"access_tokens: {ttl_choices: []}\n", "config: access_tokens.ttl_choices: at least one expiry is required"},
		{"access_tokens: {ttl_choices: [24h, 0s]}\n", "config: access_tokens.ttl_choices[1]: must be a positive duration"},
		{"access_tokens: {ttl_choices: [24h, -1h]}\n", "config: access_tokens.ttl_choices[1]: must be a positive duration"},
		{"access_tokens: {ttl_choices: [1500ms]}\n", "config: access_tokens.ttl_choices[0]: 1.5s is not a whole number of seconds"},
		{"access_tokens: {max_ttl: 720h, ttl_choices: [24h, 2160h]}\n", "config: access_tokens.ttl_choices[1]: 2160h0m0s is longer than access_tokens.max_ttl (720h0m0s)"},
		{"access_tokens: {ttl_choices: [24h, 1d]}\n", `config: access_tokens.ttl_choices[1] (line 1): "1d" is not a duration`},
		{"access_tokens: {ttl_choices: [24h, 1h, 24h]}\n", "config: access_tokens.ttl_choices[2]: 24h0m0s repeats access_tokens.ttl_choices[0]"},
		{"access_tokens: {ttl_choices: 24h}\n", "config: access_tokens.ttl_choices (line 1): want a list"},
		{"access_tokens: {max_per_user: 0}\n", "config: access_tokens.max_per_user: must be at least 1, got 0"},
		{"access_tokens: {max_cidrs: -1}\n", "config: access_tokens.max_cidrs: must be at least 1, got -1"},
		{"access_tokens: {enabled: maybe}\n", `config: access_tokens.enabled (line 1): "maybe" is not true or false`},
		{"access_tokens: {pepper: x}\n", "config: access_tokens.pepper (line 1): unknown key"},
		{"superset: {service_user: \"\"}\n", "config: superset.service_user: must not be empty"},
		{"a: b\n---\nc: d\n", "config: the file holds more than one YAML document"},
		{"listen: [\n", "config: line 1: did not find expected node content"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := Load(writeFile(t, "c.yaml", tt.yaml), nil)
			if err == nil {
				t.Fatalf("accepted %q", tt.yaml)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error %q, want prefix %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
		})
	}
}

func TestEnvOverrides(t *testing.T) {
	dir := t.TempDir()
	sk := filepath.Join(dir, "sk")
	os.WriteFile(sk, []byte("from-env-file\n"), 0o600)
	env := []string{
		"HOME=/root",
		"SG_STORE_REDIS_URL=redis://127.0.0.1:6390/1",
		"SG_SESSION_CACHE_TTL=250ms",
		"SG_UPSTREAMS=http://a:1, http://b:2,,",
		"SG_SUPERSET_SECRET_KEY_FILE=" + sk,
		"SG_SUPERSET_ALLOW_WEAK_SECRETS=true",
		"SG_LIMITS_MAX_BODY_BYTES=1024",
		"SG_TLS_REDIRECT_HTTP_LISTEN=",
		"SG_ADMIN_ROLES=Admin,Security",
		"SG_HEADERS_OVERRIDES=[{prefix: /api/, set: {Cache-Control: no-store}}]",
		"SG_CACHE=/tmp/not-config",
		"SG_ADMIN_TOKEN=sgwa_not-config", // the admin commands' own variables
		"SG_ADMIN_URL=http://127.0.0.1:1",
		"SG_ACCESS_TOKENS_ENABLED=false",
		"SG_ACCESS_TOKENS_MAX_TTL=168h",
		"SG_ACCESS_TOKENS_TTL_CHOICES=3s, 1h,,168h",
		"SG_ACCESS_TOKENS_MAX_PER_USER=3",
		"SG_LISTEN=127.0.0.1:7000",
		"SG_LISTEN=127.0.0.1:7001", // a later duplicate does not win, as with os.Getenv
	}
	c, err := Load(writeFile(t, "c.yaml", "store: {redis_url: redis://file:6379}\nupstreams: [http://file]\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.RedisURL != "redis://127.0.0.1:6390/1" {
		t.Fatalf("env did not override the file: %q", c.Store.RedisURL)
	}
	if c.Session.CacheTTL != 250*time.Millisecond || c.Limits.MaxBodyBytes != 1024 || !c.Superset.AllowWeakSecrets {
		t.Fatalf("scalars: %+v", c)
	}
	if !reflect.DeepEqual(c.Upstreams, []string{"http://a:1", "http://b:2"}) {
		t.Fatalf("upstreams %q", c.Upstreams)
	}
	if !reflect.DeepEqual(c.Admin.Roles, []string{"Admin", "Security"}) {
		t.Fatalf("roles %q", c.Admin.Roles)
	}
	if len(c.Headers.Overrides) != 1 || c.Headers.Overrides[0].Set["Cache-Control"] != "no-store" {
		t.Fatalf("overrides %+v", c.Headers.Overrides)
	}
	if string(c.Superset.SecretKey) != "from-env-file" {
		t.Fatal("secret file from env not read")
	}
	if c.Listen != "127.0.0.1:7000" {
		t.Fatalf("listen %q", c.Listen)
	}
	if a := c.AccessTokens; a.Enabled || a.MaxTTL != 168*time.Hour || a.MaxPerUser != 3 ||
		!reflect.DeepEqual(a.TTLChoices, []time.Duration{3 * time.Second, time.Hour, 168 * time.Hour}) {
		t.Fatalf("access_tokens %+v", a)
	}
}

func TestEnvErrors(t *testing.T) {
	tests := []struct {
		env  string
		want string
	}{
		{"SG_STORE_REDIS=x", "config: unknown environment variable SG_STORE_REDIS"},
		{"SG_SUPERSET_SECRET_KEY=hunter2", "config: unknown environment variable SG_SUPERSET_SECRET_KEY (secrets are read from files: set SG_SUPERSET_SECRET_KEY_FILE)"},
		{"SG_SESSION_CACHE_TTL=5", `config: SG_SESSION_CACHE_TTL (session.cache_ttl): "5" is not a duration`},
		{"SG_LIMITS_MAX_HEADER_BYTES=64k", `config: SG_LIMITS_MAX_HEADER_BYTES (limits.max_header_bytes): "64k" is not a whole number`},
		{"SG_SUPERSET_ALLOW_WEAK_SECRETS=yes", `config: SG_SUPERSET_ALLOW_WEAK_SECRETS (superset.allow_weak_secrets): "yes" is not true or false`},
		{"SG_HEADERS_OVERRIDES=[{prefx: /}]", "config: SG_HEADERS_OVERRIDES (headers.overrides): [0].prefx (line 1): unknown key"},
		{"SG_UPSTREAMS=http://a,ftp://b", `config: upstreams[1]: "ftp://b" is not an http(s) URL`},
		{"SG_ACCESS_TOKENS_TTL_CHOICES=24h,7d", `config: SG_ACCESS_TOKENS_TTL_CHOICES (access_tokens.ttl_choices): "7d" is not a duration`},
		{"SG_ACCESS_TOKENS_TTL_CHOICES=24h,4000h", "config: access_tokens.ttl_choices[1]: 4000h0m0s is longer than access_tokens.max_ttl (2160h0m0s)"},
		{"SG_ACCESS_TOKENS_MAX_PER_USER=0", "config: access_tokens.max_per_user: must be at least 1"},
		{"SG_ACCESS_TOKENS_PEPPER=hunter2", "config: unknown environment variable SG_ACCESS_TOKENS_PEPPER (secrets are read from files: set SG_ACCESS_TOKENS_PEPPER_FILE)"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			_, err := Load("", []string{tt.env})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error %v, want prefix %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatal("error echoes the value")
			}
		})
	}
}

func TestEnvNamesAreUniqueAndCoverEveryKey(t *testing.T) {
	names := EnvNames()
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Fatalf("two keys share %s", n)
		}
		seen[n] = true
	}
	for _, n := range []string{"SG_STORE_REDIS_URL", "SG_SESSION_CACHE_TTL", "SG_UPSTREAMS", "SG_SUPERSET_SECRET_KEY_FILE",
		"SG_TLS_REDIRECT_HTTP_LISTEN", "SG_HEALTH_CHECK_UNHEALTHY_THRESHOLD", "SG_PASSIVE_COOLDOWN", "SG_LOG_LEVEL",
		"SG_LIMITS_SHUTDOWN_GRACE", "SG_HEADERS_FRAME_ANCESTORS", "SG_HEADERS_OVERRIDES", "SG_METRICS_LISTEN", "SG_AUDIT_OUTPUT",
		"SG_ACCESS_TOKENS_ENABLED", "SG_ACCESS_TOKENS_MAX_TTL", "SG_ACCESS_TOKENS_TTL_CHOICES", "SG_ACCESS_TOKENS_MAX_PER_USER",
		"SG_ACCESS_TOKENS_MAX_CIDRS", "SG_ACCESS_TOKENS_PEPPER_FILE"} {
		if !seen[n] {
			t.Errorf("missing %s", n)
		}
	}
	// Every env name is documented in the operator's reference.
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !strings.Contains(string(doc), "`"+n+"`") {
			t.Errorf("docs/configuration.md does not document %s", n)
		}
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope")
	_, err := Load("", []string{"SG_SUPERSET_GUEST_TOKEN_SECRET_FILE=" + missing})
	if err == nil || !strings.HasPrefix(err.Error(), "config: superset.guest_token_secret_file: open "+missing) {
		t.Fatalf("error %v", err)
	}
	// Only one trailing newline is dropped: a key that ends in a newline
	// on purpose keeps the rest.
	p := filepath.Join(dir, "k")
	os.WriteFile(p, []byte("abc\n\n"), 0o600)
	s, err := ReadSecretFile(p)
	if err != nil || string(s) != "abc\n" {
		t.Fatalf("%q %v", []byte(s), err)
	}
	// Separate jwt secret file.
	jwt := filepath.Join(dir, "jwt")
	os.WriteFile(jwt, []byte("jwt-secret"), 0o600)
	c, err := Load("", []string{"SG_SUPERSET_SECRET_KEY_FILE=" + p, "SG_SUPERSET_JWT_SECRET_FILE=" + jwt})
	if err != nil || string(c.Superset.JWTSecret) != "jwt-secret" {
		t.Fatalf("jwt secret %v", err)
	}
}

// TestAccessTokensTTLChoicesDerived: without ttl_choices, the page offers
// the usual choices that fit under max_ttl and max_ttl itself; given ones
// are kept as written, in their order.
func TestAccessTokensTTLChoicesDerived(t *testing.T) {
	const day = 24 * time.Hour
	for _, tt := range []struct {
		yaml string
		want []time.Duration
	}{
		{"", []time.Duration{day, 7 * day, 30 * day, 90 * day}},
		{"access_tokens: {max_ttl: 720h}\n", []time.Duration{day, 7 * day, 30 * day}},
		{"access_tokens: {max_ttl: 336h}\n", []time.Duration{day, 7 * day, 14 * day}},
		{"access_tokens: {max_ttl: 8760h}\n", []time.Duration{day, 7 * day, 30 * day, 90 * day, 365 * day}},
		{"access_tokens: {max_ttl: 12h}\n", []time.Duration{12 * time.Hour}},
		{"access_tokens: {max_ttl: 12h, ttl_choices: [1h, 30s]}\n", []time.Duration{time.Hour, 30 * time.Second}},
		{"access_tokens: {ttl_choices: }\n", []time.Duration{day, 7 * day, 30 * day, 90 * day}},
	} {
		c, err := Load(writeFile(t, "c.yaml", tt.yaml), nil)
		if err != nil {
			t.Fatalf("%q: %v", tt.yaml, err)
		}
		if !reflect.DeepEqual(c.AccessTokens.TTLChoices, tt.want) {
			t.Errorf("%q: ttl_choices %v, want %v", tt.yaml, c.AccessTokens.TTLChoices, tt.want)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	const value = "very-secret-value-0123456789"
	c := Default()
	c.Superset.SecretKey = Secret(value)
	c.Session.CookieKeys = Secret(value)
	c.AccessTokens.Pepper = Secret(value)
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(c.Superset)
	if err != nil {
		t.Fatal(err)
	}
	outs := []string{
		string(y), string(j),
		fmt.Sprintf("%v %+v %#v %s %x %X %q %d", c, c, c, c.Superset.SecretKey, c.Superset.SecretKey, c.Superset.SecretKey, c.Superset.SecretKey, c.Superset.SecretKey),
		fmt.Sprint(c.Superset.SecretKey), c.Superset.SecretKey.String(),
	}
	hex := fmt.Sprintf("%x", []byte(value))
	for _, o := range outs {
		if strings.Contains(o, value) || strings.Contains(o, hex) || strings.Contains(o, "118 101 114") {
			t.Fatalf("secret printed: %s", o)
		}
	}
	if !strings.Contains(fmt.Sprint(c.Superset.SecretKey), "[redacted]") {
		t.Fatal("no redaction marker")
	}
	if Secret(nil).String() != "" {
		t.Fatal("an absent secret should print as empty")
	}
}

func TestPublicURLDerived(t *testing.T) {
	c, err := Parse([]byte("listen: \":9000\"\ntls: {cert_file: /c, key_file: /k}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicURL != "https://localhost:9000" {
		t.Fatalf("public_url %q", c.PublicURL)
	}
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{"10.1.2.3/8": "10.0.0.0/8", "192.168.1.1": "192.168.1.1/32", "::1": "::1/128"} {
		p, err := ParsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("%s → %v %v, want %s", in, p, err, want)
		}
	}
	if _, err := ParsePrefix("example.com"); err == nil {
		t.Error("accepted a host name")
	}
}

// FuzzParse feeds arbitrary YAML and one SG_ variable to the parser: it must
// never panic, and whatever it accepts must survive validation without
// panicking and print no secret.
func FuzzParse(f *testing.F) {
	f.Add([]byte("listen: 127.0.0.1:8080\nupstreams: [http://a]\n"), "SG_UPSTREAMS=http://x,http://y")
	f.Add([]byte("headers: {overrides: [{prefix: /x, set: {A: b}, remove: [C]}]}\n"), "SG_HEADERS_OVERRIDES=[{prefix: /a, remove: [B]}]")
	f.Add([]byte("health_check: {interval: 5s}\n"), "SG_SESSION_CACHE_TTL=1s")
	f.Add([]byte("a: &x {b: *x}\n"), "SG_LIMITS_MAX_BODY_BYTES=12")
	f.Add([]byte("tls: [\n"), "SG_=")
	f.Add([]byte("limits: {max_header_bytes: 0x10}\n"), "SG_SUPERSET_ALLOW_WEAK_SECRETS=1")
	f.Fuzz(func(t *testing.T, data []byte, env string) {
		c, err := Parse(data, []string{env})
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		_ = c.Validate()
	})
}

// The shipped examples must load (secret files aside) and full.yaml must
// set every key, so that it stays a complete reference.
func TestExamples(t *testing.T) {
	for _, name := range []string{"local.yaml", "full.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", "deploy", "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		c, err := Parse(data, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	local, _ := os.ReadFile("../deploy/examples/local.yaml")
	c, _ := Parse(local, nil)
	if c.Listen != "127.0.0.1:8080" || c.Upstreams[0] != "http://127.0.0.1:8088" || c.Store.RedisURL != "" ||
		c.Store.DataDir != "./data" || c.Metrics.Listen != "127.0.0.1:9464" {
		t.Fatalf("local.yaml is not what make run promises: %+v", c)
	}
	full, _ := os.ReadFile("../deploy/examples/full.yaml")
	var n yaml.Node
	if err := yaml.Unmarshal(full, &n); err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	var walk func(*yaml.Node, string)
	walk = func(n *yaml.Node, path string) {
		if n.Kind == yaml.DocumentNode {
			walk(n.Content[0], path)
			return
		}
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(path, n.Content[i].Value)
			present[EnvName(p)] = true
			if p != "headers.overrides" {
				walk(n.Content[i+1], p)
			}
		}
	}
	walk(&n, "")
	for _, name := range EnvNames() {
		if !present[name] {
			t.Errorf("full.yaml lacks the key of %s", name)
		}
	}
}
