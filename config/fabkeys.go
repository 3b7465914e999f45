package config

import (
	"strings"
	"time"
)

// The values of superset.fab_api_keys.
const (
	FABAPIKeysRefuse  = "refuse"
	FABAPIKeysEnforce = "enforce"
)

// fabKeyPrefixMax is the width of Flask-AppBuilder's ab_api_key.key_prefix
// column (String(16)): FAB cannot store a longer prefix.
const fabKeyPrefixMax = 16

func (c *Config) validateFABAPIKeys() error {
	switch c.Superset.FABAPIKeys {
	case FABAPIKeysRefuse, FABAPIKeysEnforce:
	default:
		return bad("superset.fab_api_keys", "must be %q or %q, got %q", FABAPIKeysRefuse, FABAPIKeysEnforce, c.Superset.FABAPIKeys)
	}
	if c.Superset.FABAPIKeyCacheTTL <= 0 || c.Superset.FABAPIKeyCacheTTL > 10*time.Minute {
		return bad("superset.fab_api_key_cache_ttl", "must be more than 0 and at most 10m (how long a key revoked at Superset directly keeps working), got %s", c.Superset.FABAPIKeyCacheTTL)
	}
	if len(c.Superset.FABAPIKeyPrefixes) == 0 {
		return bad("superset.fab_api_key_prefixes", "must list at least one prefix (Flask-AppBuilder's default is sst_)")
	}
	for _, p := range c.Superset.FABAPIKeyPrefixes {
		if p == "" || len(p) > fabKeyPrefixMax {
			return bad("superset.fab_api_key_prefixes", "a prefix must be 1 to %d characters, got %d", fabKeyPrefixMax, len(p))
		}
		for i := 0; i < len(p); i++ {
			if p[i] <= ' ' || p[i] >= 0x7f {
				return bad("superset.fab_api_key_prefixes", "a prefix must be printable ASCII without spaces")
			}
		}
		// A prefix overlapping the gateway's own tokens or a JWT (whose
		// base64url header always starts "eyJ") would make one credential
		// look like another.
		for _, other := range []string{"sgw_", "eyJ"} {
			if strings.HasPrefix(p, other) || strings.HasPrefix(other, p) {
				return bad("superset.fab_api_key_prefixes", "%q overlaps %q (gateway access tokens start sgw_, JWTs eyJ)", p, other)
			}
		}
	}
	return nil
}
