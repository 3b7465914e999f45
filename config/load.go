package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment variable the gateway reads.
const EnvPrefix = "SG_"

// Load reads the YAML file at path, applies the SG_… variables found in env
// ("KEY=value" entries, as os.Environ returns), fills defaults, validates,
// and finally reads every secret named by a …_file key. Any problem is one
// error, prefixed "config: " and naming the key or variable at fault; it
// never contains a secret's value. An empty path means "no file": defaults
// and environment only.
func Load(path string, env []string) (*Config, error) {
	var data []byte
	if path != "" {
		var err error
		data, err = os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	c, err := Parse(data, env)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := c.loadSecrets(); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse is Load without the file system: it decodes data (YAML; unknown keys
// refused), applies the SG_… overrides from env and derived defaults. It
// neither validates nor reads secret files.
func Parse(data []byte, env []string) (*Config, error) {
	c := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	// The file is decoded into a yaml.Node and walked by decodeNode, which
	// refuses unknown keys itself so that the error can name the key's full
	// path. KnownFields does nothing for a Node target; it is set so that a
	// future decode straight into Config stays strict.
	dec.KnownFields(true)
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		// Empty file: defaults and environment only.
	case err != nil:
		return nil, fmt.Errorf("config: %s", oneLine(err))
	default:
		var extra yaml.Node
		if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
			return nil, errors.New("config: the file holds more than one YAML document")
		}
		if err := decodeNode(&doc, reflect.ValueOf(c).Elem(), ""); err != nil {
			return nil, err
		}
	}
	if err := applyEnv(c, env); err != nil {
		return nil, err
	}
	c.derive()
	return c, nil
}

// derive fills the defaults that depend on other keys.
func (c *Config) derive() {
	if c.PublicURL == "" {
		scheme := "http"
		if c.TLS.Enabled() {
			scheme = "https"
		}
		host, port, err := net.SplitHostPort(c.Listen)
		if err == nil {
			if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
				host = "localhost"
			}
			c.PublicURL = scheme + "://" + net.JoinHostPort(host, port)
		}
	}
	if a := &c.AccessTokens; a.TTLChoices == nil && a.MaxTTL > 0 {
		for _, d := range []time.Duration{24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour, 90 * 24 * time.Hour} {
			if d < a.MaxTTL {
				a.TTLChoices = append(a.TTLChoices, d)
			}
		}
		a.TTLChoices = append(a.TTLChoices, a.MaxTTL)
	}
}

// oneLine flattens yaml's multi-line error text.
func oneLine(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	return strings.Join(strings.Fields(s), " ")
}

// isDuration reports time.Duration, which is decoded from "5s" rather
// than from a number of nanoseconds.
func isDuration(t reflect.Type) bool { return t == reflect.TypeFor[time.Duration]() }

// yamlFields maps a struct type's YAML keys to field indexes, skipping "-".
func yamlFields(t reflect.Type) (names []string, index map[string]int) {
	index = map[string]int{}
	for i := range t.NumField() {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		names = append(names, tag)
		index[tag] = i
	}
	return names, index
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decodeNode decodes n into v, walking structs, lists and maps itself so
// that an unknown key or a bad value is reported with its full key path.
func decodeNode(n *yaml.Node, v reflect.Value, path string) error {
	for n.Kind == yaml.DocumentNode || n.Kind == yaml.AliasNode {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		} else if len(n.Content) == 1 {
			n = n.Content[0]
		} else {
			return nil
		}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // "key:" with no value keeps the default
	}
	where := func() string {
		if path == "" {
			return fmt.Sprintf("line %d", n.Line)
		}
		return fmt.Sprintf("%s (line %d)", path, n.Line)
	}
	switch {
	case v.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("config: %s: want a mapping of keys", where())
		}
		names, index := yamlFields(v.Type())
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return fmt.Errorf("config: %s: keys must be plain names", where())
			}
			fi, ok := index[k.Value]
			if !ok {
				return fmt.Errorf("config: %s (line %d): unknown key (known: %s)", join(path, k.Value), k.Line, strings.Join(names, ", "))
			}
			if seen[k.Value] {
				return fmt.Errorf("config: %s (line %d): key given twice", join(path, k.Value), k.Line)
			}
			seen[k.Value] = true
			if err := decodeNode(val, v.Field(fi), join(path, k.Value)); err != nil {
				return err
			}
		}
		return nil
	case v.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return fmt.Errorf("config: %s: want a list", where())
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, e := range n.Content {
			if err := decodeNode(e, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case v.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("config: %s: want a mapping", where())
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return fmt.Errorf("config: %s: keys must be plain names", where())
			}
			kv := reflect.New(v.Type().Key()).Elem()
			kv.SetString(k.Value)
			if m.MapIndex(kv).IsValid() {
				return fmt.Errorf("config: %s.%s (line %d): key given twice", path, k.Value, k.Line)
			}
			ev := reflect.New(v.Type().Elem()).Elem()
			if err := decodeNode(val, ev, path+"."+k.Value); err != nil {
				return err
			}
			m.SetMapIndex(kv, ev)
		}
		v.Set(m)
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("config: %s: want a single value, not a %s", where(), kindName(n.Kind))
	}
	switch {
	case isDuration(v.Type()):
		d, err := time.ParseDuration(n.Value)
		if err != nil {
			return fmt.Errorf("config: %s: %q is not a duration (write it like 5s, 1m30s)", where(), n.Value)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(n.Value)
	default:
		// Ints and bools: the YAML decoder's own rules (0x10, true/false).
		if err := n.Decode(v.Addr().Interface()); err != nil {
			return fmt.Errorf("config: %s: %q is not %s", where(), n.Value, typeName(v.Type()))
		}
	}
	return nil
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "value"
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "a whole number"
	}
	return "a " + t.String()
}

// envTarget is one SG_… variable: the key path it sets and the field.
type envTarget struct {
	path  string
	field reflect.Value
}

// envTargets lists every settable key of v under its environment name.
// Structs are walked; every other field (including lists) is one variable.
func envTargets(v reflect.Value, path string, out map[string]envTarget) {
	names, index := yamlFields(v.Type())
	for _, name := range names {
		f := v.Field(index[name])
		p := join(path, name)
		if f.Kind() == reflect.Struct && !isDuration(f.Type()) {
			envTargets(f, p, out)
			continue
		}
		out[EnvName(p)] = envTarget{path: p, field: f}
	}
}

// EnvName is the environment variable that overrides the key path
// ("store.redis_url" → "SG_STORE_REDIS_URL").
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// EnvNames lists every environment variable Load understands, sorted.
func EnvNames() []string {
	out := map[string]envTarget{}
	envTargets(reflect.ValueOf(Default()).Elem(), "", out)
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// notConfig reports SG_… variables that belong to the project's tooling
// (the Makefile's cache directory) or to the admin commands (revoke,
// tokens and store take the gateway's URL and an admin token from them),
// not to the gateway's config, so that running the gateway or a command
// that reads the config from a shell that exported them is not an error.
func notConfig(name string) bool {
	switch name {
	case "SG_CACHE", "SG_ADMIN_TOKEN", "SG_ADMIN_URL":
		return true
	}
	return false
}

// printableName is name as an error can show it on one line: quoted when
// it holds a control character (an environment name may hold anything but
// "=", and an error is one line; FuzzParse found "SG_\n").
func printableName(name string) string {
	if strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return strconv.Quote(name)
	}
	return name
}

// applyEnv sets the key of every SG_… variable in env. Lists take
// comma-separated values; lists of mappings (headers.overrides) take YAML
// flow syntax. An unknown SG_… variable is an error naming it.
func applyEnv(c *Config, env []string) error {
	targets := map[string]envTarget{}
	envTargets(reflect.ValueOf(c).Elem(), "", targets)
	seen := map[string]bool{}
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || notConfig(name) {
			continue
		}
		if seen[name] {
			continue // the first entry wins, as with os.Getenv
		}
		seen[name] = true
		t, ok := targets[name]
		if !ok {
			if _, isFile := targets[name+"_FILE"]; isFile {
				return fmt.Errorf("config: unknown environment variable %s (secrets are read from files: set %s_FILE)", name, name)
			}
			return fmt.Errorf("config: unknown environment variable %s", printableName(name))
		}
		if err := setFromEnv(t.field, value); err != nil {
			return fmt.Errorf("config: %s (%s): %w", name, t.path, err)
		}
	}
	return nil
}

func setFromEnv(f reflect.Value, value string) error {
	switch {
	case isDuration(f.Type()):
		d, err := time.ParseDuration(value)
		if err != nil {
			return fmt.Errorf("%q is not a duration (write it like 5s, 1m30s)", value)
		}
		f.SetInt(int64(d))
	case f.Kind() == reflect.String:
		f.SetString(value)
	case f.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("%q is not true or false", value)
		}
		f.SetBool(b)
	case f.Kind() == reflect.Int || f.Kind() == reflect.Int64:
		i, err := strconv.ParseInt(value, 10, 64)
		if err != nil || f.OverflowInt(i) {
			return fmt.Errorf("%q is not a whole number", value)
		}
		f.SetInt(i)
	case f.Kind() == reflect.Float64:
		x, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", value)
		}
		f.SetFloat(x)
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		var items []string
		for _, s := range strings.Split(value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		f.Set(reflect.ValueOf(items).Convert(f.Type()))
	case f.Kind() == reflect.Slice && isDuration(f.Type().Elem()):
		var items []time.Duration
		for _, s := range strings.Split(value, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("%q is not a duration (write it like 5s, 1m30s)", s)
			}
			items = append(items, d)
		}
		f.Set(reflect.ValueOf(items))
	default:
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(value), &n); err != nil {
			return fmt.Errorf("not valid YAML: %s", oneLine(err))
		}
		fresh := reflect.New(f.Type()).Elem()
		if err := decodeNode(&n, fresh, ""); err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), "config: "))
		}
		f.Set(fresh)
	}
	return nil
}

// loadSecrets reads every secret named by a …_file key.
func (c *Config) loadSecrets() error {
	files := []struct {
		key  string
		path string
		dst  *Secret
	}{
		{"superset.secret_key_file", c.Superset.SecretKeyFile, &c.Superset.SecretKey},
		{"superset.jwt_secret_file", c.Superset.JWTSecretFile, &c.Superset.JWTSecret},
		{"superset.guest_token_secret_file", c.Superset.GuestTokenSecretFile, &c.Superset.GuestTokenSecret},
		{"session.cookie_keys_file", c.Session.CookieKeysFile, &c.Session.CookieKeys},
		{"admin.tokens_file", c.Admin.TokensFile, &c.Admin.Tokens},
		{"access_tokens.pepper_file", c.AccessTokens.PepperFile, &c.AccessTokens.Pepper},
		{"store.redis_sentinel_password_file", c.Store.RedisSentinelPasswordFile, &c.Store.RedisSentinelPassword},
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		b, err := ReadSecretFile(f.path)
		if err != nil {
			return fmt.Errorf("config: %s: %w", f.key, err)
		}
		*f.dst = b
	}
	if c.Superset.JWTSecretFile == "" {
		c.Superset.JWTSecret = c.Superset.SecretKey
	}
	return nil
}

// ReadSecretFile reads a secret file, dropping one trailing newline (what
// editors and `echo` add). The error names the file, never its content.
func ReadSecretFile(path string) (Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if bytes.HasSuffix(b, []byte("\r\n")) {
		b = b[:len(b)-2]
	} else if bytes.HasSuffix(b, []byte("\n")) {
		b = b[:len(b)-1]
	}
	return Secret(b), nil
}
