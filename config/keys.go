package config

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/superset-gateway/superset-gateway/policy"
)

// InvalidError marks an error as the operator's configuration at fault
// (a bad key, a weak secret, a malformed keys file): the command exits 2
// with its one line, rather than 1 as for a runtime failure.
type InvalidError struct{ Err error }

func (e InvalidError) Error() string { return e.Err.Error() }
func (e InvalidError) Unwrap() error { return e.Err }

// Sizes of generated cookie keys: a 64-byte HMAC-SHA256 hash key (the size
// securecookie recommends) and a 32-byte AES-256 encryption key.
const (
	cookieHashKeyBytes  = 64
	cookieBlockKeyBytes = 32
	CookieKeysFileName  = "cookie-keys"
)

// CookieKeyPair is one generation of gateway cookie keys.
type CookieKeyPair struct {
	Hash  []byte
	Block []byte
}

// AdminToken is one admin API token as configured: a name and the SHA-256
// of the token (the token itself is never stored).
type AdminToken struct {
	Name   string
	SHA256 [sha256.Size]byte
}

// Checked is a validated config plus the secrets parsed out of it.
type Checked struct {
	Config *Config
	// CookieKeys is nil when session.cookie_keys_file is empty: the
	// gateway then generates or reuses <data_dir>/cookie-keys
	// (EnsureCookieKeys).
	CookieKeys  []CookieKeyPair
	AdminTokens []AdminToken
	// Warnings are for the log once it exists (weak secrets accepted
	// under superset.allow_weak_secrets).
	Warnings []string
	// judge holds the strength policy, for the cookie keys the gateway
	// may generate or reuse later.
	judge *judge
}

// LoadChecked loads and validates the config and judges every secret in it.
// minPepper is the shortest access-token pepper accepted even under
// superset.allow_weak_secrets (the token manager cannot be built with a
// shorter one); extra, when set, runs first on the loaded config, for the
// checks that need libraries config does not import (a Redis URL). Every
// error is an InvalidError.
func LoadChecked(path string, env []string, minPepper int, extra func(*Config) error) (*Checked, error) {
	cfg, err := Load(path, env)
	if err != nil {
		return nil, InvalidError{err}
	}
	if extra != nil {
		if err := extra(cfg); err != nil {
			return nil, InvalidError{err}
		}
	}
	l := &Checked{Config: cfg}
	j := &judge{allowWeak: cfg.Superset.AllowWeakSecrets}
	l.judge = j
	if j.allowWeak {
		j.warnings = append(j.warnings, "superset.allow_weak_secrets is true: weak or default secrets are accepted; never use this in production")
	}
	defer func() { l.Warnings = j.warnings }()
	check := j.check
	s := cfg.Superset
	if s.SecretKeyFile != "" {
		if err := check("superset.secret_key_file", s.SecretKey); err != nil {
			return nil, err
		}
	}
	if s.JWTSecretFile != "" {
		if err := check("superset.jwt_secret_file", s.JWTSecret); err != nil {
			return nil, err
		}
	}
	if s.GuestTokenSecretFile != "" {
		if err := check("superset.guest_token_secret_file", s.GuestTokenSecret); err != nil {
			return nil, err
		}
	}
	if err := checkGuestSecretShared(s); err != nil {
		return nil, err
	}
	if cfg.Session.CookieKeysFile != "" {
		if l.CookieKeys, err = parseCookieKeys("session.cookie_keys_file", cfg.Session.CookieKeys, j); err != nil {
			return nil, err
		}
	}
	if cfg.Admin.TokensFile != "" {
		if l.AdminTokens, err = parseAdminTokens("admin.tokens_file", cfg.Admin.Tokens, j); err != nil {
			return nil, err
		}
	}
	if cfg.AccessTokens.PepperFile != "" {
		if err := checkPepper("access_tokens.pepper_file", cfg.AccessTokens.Pepper, minPepper, j); err != nil {
			return nil, err
		}
	}
	if s.SecretKeyFile == "" {
		// Checked last so that a more specific mistake elsewhere is
		// reported first. The session vault reads who logged in from
		// Superset's signed session cookie; without the key it cannot
		// rotate sessions.
		return nil, InvalidError{errors.New("config: superset.secret_key_file: required: the gateway verifies Superset's session cookie with Superset's SECRET_KEY")}
	}
	return l, nil
}

// judge applies the secret strength policy and the operator's opt-out.
type judge struct {
	allowWeak bool
	warnings  []string
}

// check refuses a weak secret (usageError naming key) unless the opt-out is
// set, in which case it records a warning. Empty secrets are refused even
// with the opt-out: nothing can be verified with them, so the opt-out would
// only hide a mistake.
func (j *judge) check(key string, v []byte) error {
	d := policy.CheckSecret(key, v, policy.DefaultMinSecretBytes)
	if d.OK {
		return nil
	}
	if len(v) == 0 {
		return InvalidError{fmt.Errorf("config: %s", d.Problem)}
	}
	return j.weak(d.Problem)
}

// weak refuses for reason unless the opt-out is set.
func (j *judge) weak(reason string) error {
	if j.allowWeak {
		j.warnings = append(j.warnings, "weak secret accepted (superset.allow_weak_secrets): "+reason)
		return nil
	}
	return InvalidError{fmt.Errorf("config: %s (superset.allow_weak_secrets: true accepts it, for throw-away test setups only)", reason)}
}

// checkPepper judges the access-token pepper like every other secret, and
// then refuses one shorter than min even under superset.allow_weak_secrets:
// the token manager cannot be built with it.
func checkPepper(key string, v []byte, min int, j *judge) error {
	if err := j.check(key, v); err != nil {
		return err
	}
	if len(v) < min {
		return InvalidError{fmt.Errorf("config: %s: %s (superset.allow_weak_secrets does not lift this)", key, policy.SecretTooShort(min))}
	}
	return nil
}

// parseCookieKeys reads a cookie keys file: one generation per line, newest
// first, "<hash key> <encryption key>" in standard base64; blank lines and
// lines starting with # are ignored. Hash keys must pass the strength check;
// encryption keys must be exactly 32 bytes (AES-256) and pass it too.
// Errors name the key and line, never the key material.
func parseCookieKeys(key string, data []byte, j *judge) ([]CookieKeyPair, error) {
	var out []CookieKeyPair
	err := pairLines(key, data, "<hash key> <encryption key>\" in base64", func(where string, _ int, fields [2]string) error {
		hash, err1 := base64.StdEncoding.DecodeString(fields[0])
		block, err2 := base64.StdEncoding.DecodeString(fields[1])
		if err1 != nil || err2 != nil {
			return InvalidError{fmt.Errorf("config: %s: keys must be standard base64", where)}
		}
		if len(block) != cookieBlockKeyBytes {
			return InvalidError{fmt.Errorf("config: %s: the encryption key must be %d bytes, got %d", where, cookieBlockKeyBytes, len(block))}
		}
		if err := j.check(where+" hash key", hash); err != nil {
			return err
		}
		if err := j.check(where+" encryption key", block); err != nil {
			return err
		}
		out = append(out, CookieKeyPair{Hash: hash, Block: block})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, InvalidError{fmt.Errorf("config: %s: holds no keys", key)}
	}
	return out, nil
}

// pairLines calls each with every line of data that holds two fields
// ("where" names the key and line for errors, never the fields); blank
// lines and lines starting with # are skipped, and a line of another shape
// is refused with want ("<a> <b>\"…") in the message.
func pairLines(key string, data []byte, want string, each func(where string, line int, fields [2]string) error) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		where := fmt.Sprintf("%s line %d", key, line)
		fields := strings.Fields(text)
		if len(fields) != 2 {
			return InvalidError{fmt.Errorf("config: %s: want \"%s", where, want)}
		}
		if err := each(where, line, [2]string{fields[0], fields[1]}); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return InvalidError{fmt.Errorf("config: %s: %w", key, err)}
	}
	return nil
}

// weakTokens are tokens an operator might hash for a quick test; a
// configured hash of one of them means anyone can guess the admin token.
func weakTokens() []string {
	return []string{"", "admin", "password", "secret", "token", "test", "changeme", "change-me", "CHANGE_ME", "123456", "admin-token"}
}

// parseAdminTokens reads "<name> <sha256-hex>" lines (# comments and blank
// lines ignored). A hash of a well-known weak token, or one that is not
// 64 hex digits, is refused; so is a name given twice.
func parseAdminTokens(key string, data []byte, j *judge) ([]AdminToken, error) {
	weak := map[[sha256.Size]byte]bool{}
	for _, w := range weakTokens() {
		weak[sha256.Sum256([]byte(w))] = true
	}
	var out []AdminToken
	names := map[string]int{} // name → line
	err := pairLines(key, data, "<name> <sha256 hex of the token>\"", func(where string, line int, fields [2]string) error {
		// Errors name the line, never a field: an operator who swapped
		// the columns or pasted the token itself must not see it logged.
		name := fields[0]
		if first, dup := names[name]; dup {
			return InvalidError{fmt.Errorf("config: %s: the name of line %d is given again", where, first)}
		}
		names[name] = line
		raw, err := hex.DecodeString(fields[1])
		if err != nil || len(raw) != sha256.Size {
			return InvalidError{fmt.Errorf("config: %s: the hash must be 64 hex digits (sha256sum of the token)", where)}
		}
		var t AdminToken
		t.Name = name
		copy(t.SHA256[:], raw)
		if weak[t.SHA256] {
			if err := j.weak(where + ": is the hash of a well-known weak token"); err != nil {
				return err
			}
		} else if err := j.check(where, raw); err != nil {
			// A real SHA-256 never has visibly low entropy; a made-up
			// one ("000…") means no real token was hashed.
			return err
		}
		out = append(out, t)
		return nil
	})
	return out, err
}

// EnsureCookieKeys returns the keys in <dataDir>/cookie-keys, creating the
// file with fresh random keys (mode 0600) when it does not exist. Creation
// is atomic and never replaces an existing file, so two gateways starting
// on the same data_dir agree on one set of keys. A generated file that was
// since edited is held to the same checks as a configured one. created
// reports a first start.
func (c *Checked) EnsureCookieKeys() (keys []CookieKeyPair, path string, created bool, err error) {
	dataDir, j := c.Config.Store.DataDir, c.judge
	defer func() { c.Warnings = j.warnings }()
	path = filepath.Join(dataDir, CookieKeysFileName)
	data, err := ReadSecretFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, path, false, fmt.Errorf("cookie keys: %w", err)
		}
		created, err = writeNewCookieKeys(path)
		if err != nil {
			return nil, path, false, err
		}
		data, err = ReadSecretFile(path)
	}
	if err != nil {
		return nil, path, false, fmt.Errorf("cookie keys: %w", err)
	}
	keys, err = parseCookieKeys(path, data, j)
	return keys, path, created, err
}

// writeNewCookieKeys writes a fresh key pair to path unless it exists: the
// keys go to a temporary file that is synced and then hard-linked into
// place, which fails (and leaves the other writer's file) if path exists.
func writeNewCookieKeys(path string) (created bool, err error) {
	hash := make([]byte, cookieHashKeyBytes)
	block := make([]byte, cookieBlockKeyBytes)
	if _, err := rand.Read(hash); err != nil {
		return false, fmt.Errorf("cookie keys: %w", err)
	}
	if _, err := rand.Read(block); err != nil {
		return false, fmt.Errorf("cookie keys: %w", err)
	}
	content := "# superset-gateway cookie keys, generated at first start; newest first.\n" +
		"# <hash key> <encryption key>, base64. Keep this file secret and shared by all replicas.\n" +
		base64.StdEncoding.EncodeToString(hash) + " " + base64.StdEncoding.EncodeToString(block) + "\n"
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cookie-keys-*")
	if err != nil {
		return false, fmt.Errorf("cookie keys: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp already uses 0600; Chmod states the intent.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return false, fmt.Errorf("cookie keys: %w", err)
	}
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return false, fmt.Errorf("cookie keys: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, fmt.Errorf("cookie keys: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("cookie keys: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil // another process won the race; use its keys
		}
		return false, fmt.Errorf("cookie keys: %w", err)
	}
	return true, nil
}

// checkGuestSecretShared refuses a GUEST_TOKEN_JWT_SECRET equal to SECRET_KEY
// or JWT_SECRET_KEY (the readiness analysis's second finding): the guest
// secret is handed to every embedding backend, and with it anyone there
// could sign Superset session cookies and API tokens as any user.
// superset.allow_guest_secret_equal_secret_key is the explicit opt-out;
// allow_weak_secrets is not, because the two secrets may each be strong.
func checkGuestSecretShared(s Superset) error {
	g := s.GuestTokenSecret
	if len(g) == 0 || s.AllowGuestSecretEqualSecretKey {
		return nil
	}
	for _, other := range []struct {
		key string
		v   Secret
	}{{"superset.secret_key_file", s.SecretKey}, {"superset.jwt_secret_file", s.JWTSecret}} {
		if len(other.v) > 0 && subtle.ConstantTimeCompare(g, other.v) == 1 {
			return InvalidError{fmt.Errorf("config: superset.guest_token_secret_file: is the same secret as %s: whoever holds the guest secret (every embedding backend) could sign Superset session cookies and API tokens; give GUEST_TOKEN_JWT_SECRET its own value, or set superset.allow_guest_secret_equal_secret_key: true", other.key)}
		}
	}
	return nil
}
