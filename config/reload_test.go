package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestEveryKeyHasAReloadClass fails when a field of Config (at any depth)
// has no reload class, neither its own nor inherited from a parent struct:
// a new key must say on which side of the reload boundary it falls.
func TestEveryKeyHasAReloadClass(t *testing.T) {
	var walk func(rt reflect.Type, path string, inherited bool)
	walk = func(rt reflect.Type, path string, inherited bool) {
		for i := range rt.NumField() {
			f := rt.Field(i)
			c := f.Tag.Get("reload")
			if c != "" && c != reloadApply && c != reloadRestart {
				t.Errorf("%s.%s: unknown reload class %q", path, f.Name, c)
			}
			has := inherited || c != ""
			if f.Type.Kind() == reflect.Struct && !isDuration(f.Type) {
				walk(f.Type, path+"."+f.Name, has)
				continue
			}
			if !has {
				t.Errorf("%s.%s has no reload class", path, f.Name)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "Config", false)
}

func TestRestartOnlyChanges(t *testing.T) {
	a := Default()
	b := Default()
	if got := RestartOnlyChanges(a, b); len(got) != 0 {
		t.Fatalf("no change reported %v", got)
	}
	// Reloadable keys are not reported.
	b.Upstreams = []string{"http://10.0.0.9:8088"}
	b.Limits.UpstreamTimeout = 5 * time.Second
	b.Headers.FrameAncestors = "'none'"
	b.TrustedHeaders = []string{"X-Remote-User"}
	if got := RestartOnlyChanges(a, b); len(got) != 0 {
		t.Fatalf("reloadable keys reported as restart-only: %v", got)
	}
	// The keys an earlier hand-kept list missed, and a secret file's
	// contents changing under the same path.
	b.Store.RedisTLSCAFile = "/ca.pem"
	b.Store.RedisTLSServerName = "redis.internal"
	b.Store.RedisSentinelUsername = "s"
	b.Store.RedisSentinelPasswordFile = "/pw"
	b.Superset.AllowWeakSecrets = true
	b.Limits.MaxBodyBytes = 1 << 20
	b.AccessTokens.Pepper = Secret("another pepper")
	b.Listen = "127.0.0.1:9"
	got := RestartOnlyChanges(a, b)
	want := []string{"listen", "superset.allow_weak_secrets", "store.redis_tls_ca_file", "store.redis_tls_server_name",
		"store.redis_sentinel_username", "store.redis_sentinel_password_file", "access_tokens.pepper_file (contents)",
		"limits.max_body_bytes"}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("%q not reported; got %v", w, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d keys %v, want %d", len(got), got, len(want))
	}
	for _, k := range got {
		if strings.Contains(k, "pepper") && strings.Contains(k, "another") {
			t.Fatalf("a secret value leaked into a key name: %q", k)
		}
	}
}

func TestKeepRestartOnly(t *testing.T) {
	a := Default()
	b := Default()
	b.Listen = "127.0.0.1:9"
	b.Limits.MaxBodyBytes = 1
	b.Limits.UpstreamTimeout = 7 * time.Second
	b.Superset.SecretKey = Secret("new key")
	b.Upstreams = []string{"http://127.0.0.1:1"}
	k := KeepRestartOnly(a, b)
	if k.Listen != a.Listen || k.Limits.MaxBodyBytes != a.Limits.MaxBodyBytes || string(k.Superset.SecretKey) != string(a.Superset.SecretKey) {
		t.Errorf("restart-only values not kept: %+v", k)
	}
	if k.Limits.UpstreamTimeout != 7*time.Second || k.Upstreams[0] != "http://127.0.0.1:1" {
		t.Errorf("reloadable values not applied: %+v", k)
	}
	if b.Listen != "127.0.0.1:9" {
		t.Error("KeepRestartOnly modified its argument")
	}
	if len(RestartOnlyChanges(a, k)) != 0 {
		t.Errorf("kept config still differs: %v", RestartOnlyChanges(a, k))
	}
}

// TestAccessTokensKeysNeedARestart: a reload that changes any
// access_tokens key reports it (the manager, page and guard are built once).
func TestAccessTokensKeysNeedARestart(t *testing.T) {
	base, err := Parse(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for key, env := range map[string]string{
		"access_tokens.enabled":      "SG_ACCESS_TOKENS_ENABLED=false",
		"access_tokens.max_ttl":      "SG_ACCESS_TOKENS_MAX_TTL=720h",
		"access_tokens.ttl_choices":  "SG_ACCESS_TOKENS_TTL_CHOICES=1h,24h",
		"access_tokens.max_per_user": "SG_ACCESS_TOKENS_MAX_PER_USER=5",
		"access_tokens.max_cidrs":    "SG_ACCESS_TOKENS_MAX_CIDRS=2",
		"access_tokens.pepper_file":  "SG_ACCESS_TOKENS_PEPPER_FILE=/run/secrets/pepper",
	} {
		next, err := Parse(nil, []string{env})
		if err != nil {
			t.Fatal(err)
		}
		got := RestartOnlyChanges(base, next)
		want := []string{key}
		if key == "access_tokens.max_ttl" {
			want = append(want, "access_tokens.ttl_choices") // derived from max_ttl
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: restart-only changes %v, want %v", env, got, want)
		}
	}
}
