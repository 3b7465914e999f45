package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFABAPIKeysDefaultsAndEnv(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Superset.FABAPIKeys != "refuse" || !reflect.DeepEqual(c.Superset.FABAPIKeyPrefixes, []string{"sst_"}) || c.Superset.FABAPIKeyCacheTTL != 30*time.Second {
		t.Fatalf("defaults: fab_api_keys %q, prefixes %q; want refuse, [sst_]", c.Superset.FABAPIKeys, c.Superset.FABAPIKeyPrefixes)
	}
	c, err = Load("", []string{"SG_SUPERSET_FAB_API_KEY_PREFIXES=sst_,acme_", "SG_SUPERSET_FAB_API_KEYS=enforce"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Superset.FABAPIKeyPrefixes, []string{"sst_", "acme_"}) || c.Superset.FABAPIKeys != "enforce" {
		t.Fatalf("prefixes from the environment: %q", c.Superset.FABAPIKeyPrefixes)
	}
}

// Every bad value is a clear error naming the key, never a silent default.
func TestFABAPIKeysInvalid(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"superset:\n  fab_api_keys: allow\n", `superset.fab_api_keys: must be "refuse" or "enforce", got "allow"`},
		{"superset:\n  fab_api_keys: Refuse\n", `superset.fab_api_keys: must be "refuse"`},
		{"superset:\n  fab_api_key_cache_ttl: 0s\n", "superset.fab_api_key_cache_ttl: must be more than 0 and at most 10m"},
		{"superset:\n  fab_api_key_cache_ttl: 11m\n", "superset.fab_api_key_cache_ttl: must be more than 0 and at most 10m"},
		{"superset:\n  fab_api_key_prefixes: []\n", "superset.fab_api_key_prefixes: must list at least one prefix"},
		{"superset:\n  fab_api_key_prefixes: ['']\n", "superset.fab_api_key_prefixes: a prefix must be 1 to 16 characters, got 0"},
		{"superset:\n  fab_api_key_prefixes: [abcdefghijklmnopq]\n", "a prefix must be 1 to 16 characters, got 17"},
		{"superset:\n  fab_api_key_prefixes: ['a b']\n", "printable ASCII without spaces"},
		{"superset:\n  fab_api_key_prefixes: [\"k\\u00e9_\"]\n", "printable ASCII without spaces"},
		{"superset:\n  fab_api_key_prefixes: [sgw_]\n", `"sgw_" overlaps "sgw_"`},
		{"superset:\n  fab_api_key_prefixes: [s]\n", `"s" overlaps "sgw_"`},
		{"superset:\n  fab_api_key_prefixes: [eyJhb]\n", `"eyJhb" overlaps "eyJ"`},
		{"superset:\n  fab_api_key_prefixes: [e]\n", `"e" overlaps "eyJ"`},
	} {
		_, err := Load(writeFile(t, "c.yaml", tc.yaml), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.yaml, err, tc.want)
		}
	}
}
