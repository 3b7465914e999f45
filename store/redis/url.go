package redis

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Mode is the Redis deployment a URL names.
type Mode int

const (
	// Single is one server (redis://, rediss://).
	Single Mode = iota
	// Sentinel is a master found through Sentinels (redis+sentinel://).
	Sentinel
	// Cluster is a Redis Cluster (redis+cluster://).
	Cluster
)

func (m Mode) String() string {
	switch m {
	case Single:
		return "single"
	case Sentinel:
		return "sentinel"
	case Cluster:
		return "cluster"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// Config is a parsed store URL.
type Config struct {
	Mode     Mode
	TLS      bool
	Addrs    []string // host:port, at least one; Single has exactly one
	Username string   // ACL user; empty means "default"
	Password string
	DB       int    // always 0 for Cluster
	Master   string // Sentinel master name; empty otherwise
}

const (
	defaultPort         = "6379"
	defaultSentinelPort = "26379"
	maxDB               = 1<<31 - 1
)

// ParseURL parses the store URL forms the gateway accepts:
//
//	redis://[user:pass@]host[:port][/db]
//	rediss://...                                   (TLS)
//	redis+sentinel://[user:pass@]h1[:p1],h2[:p2]/<master>[?db=N]
//	redis+cluster://[user:pass@]h1[:p1],h2[:p2]
//
// (rediss+sentinel and rediss+cluster add TLS). Ports default to 6379, or
// 26379 for Sentinels. user and pass are percent-decoded. Unknown query
// parameters are errors, so a typo cannot silently change behaviour.
//
// Errors name the part that is wrong and never contain the userinfo, so they
// are safe to log even when the URL carries a password.
func ParseURL(raw string) (Config, error) {
	var c Config
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return c, errors.New("redis URL: missing scheme (want redis://, rediss://, redis+sentinel:// or redis+cluster://)")
	}
	switch strings.ToLower(scheme) {
	case "redis":
	case "rediss":
		c.TLS = true
	case "redis+sentinel":
		c.Mode = Sentinel
	case "rediss+sentinel":
		c.Mode, c.TLS = Sentinel, true
	case "redis+cluster":
		c.Mode = Cluster
	case "rediss+cluster":
		c.Mode, c.TLS = Cluster, true
	default:
		return c, fmt.Errorf("redis URL: unsupported scheme %q (want redis, rediss, redis+sentinel or redis+cluster)", clip(scheme))
	}

	// The authority ends at the first '/' or '?'; '#' is not allowed at all,
	// since a fragment is never meaningful here and usually a mangled password.
	if strings.Contains(rest, "#") {
		return c, errors.New("redis URL: '#' is not allowed (percent-encode it as %23 in a password)")
	}
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	path, query, _ := strings.Cut(tail, "?")

	// Split at the last '@': an unencoded '@' in a password still parses.
	hosts := authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo := authority[:i]
		hosts = authority[i+1:]
		user, pass, hasPass := strings.Cut(userinfo, ":")
		var err error
		if c.Username, err = url.PathUnescape(user); err != nil {
			return Config{}, errors.New("redis URL: username is not validly percent-encoded")
		}
		if hasPass {
			if c.Password, err = url.PathUnescape(pass); err != nil {
				return Config{}, errors.New("redis URL: password is not validly percent-encoded")
			}
		}
	}

	def := defaultPort
	if c.Mode == Sentinel {
		def = defaultSentinelPort
	}
	if hosts == "" {
		return Config{}, errors.New("redis URL: no host")
	}
	for i, h := range strings.Split(hosts, ",") {
		addr, err := parseHost(h, def)
		if err != nil {
			return Config{}, fmt.Errorf("redis URL: host %d: %w", i+1, err)
		}
		c.Addrs = append(c.Addrs, addr)
	}
	if c.Mode == Single && len(c.Addrs) > 1 {
		return Config{}, errors.New("redis URL: several hosts need redis+sentinel:// or redis+cluster://")
	}

	params, err := url.ParseQuery(query)
	if err != nil {
		return Config{}, errors.New("redis URL: query is not validly encoded")
	}
	dbParam := ""
	for k, v := range params {
		if k != "db" || c.Mode != Sentinel {
			return Config{}, fmt.Errorf("redis URL: unknown query parameter %q for %s", clip(k), c.Mode)
		}
		if len(v) != 1 {
			return Config{}, errors.New("redis URL: db given more than once")
		}
		dbParam = v[0]
	}

	path = strings.TrimPrefix(path, "/")
	switch c.Mode {
	case Single:
		if path != "" {
			if c.DB, err = parseDB(path); err != nil {
				return Config{}, err
			}
		}
	case Sentinel:
		if path == "" {
			return Config{}, errors.New("redis URL: redis+sentinel needs the master name as its path (redis+sentinel://h1,h2/mymaster)")
		}
		if c.Master, err = url.PathUnescape(path); err != nil || strings.Contains(c.Master, "/") || c.Master == "" {
			return Config{}, errors.New("redis URL: invalid sentinel master name")
		}
		if dbParam != "" {
			if c.DB, err = parseDB(dbParam); err != nil {
				return Config{}, err
			}
		}
	case Cluster:
		if path != "" && path != "0" {
			return Config{}, errors.New("redis URL: redis+cluster has only database 0; drop the path")
		}
	}
	return c, nil
}

func parseHost(h, defPort string) (string, error) {
	if h == "" {
		return "", errors.New("empty host")
	}
	host, port := h, defPort
	if strings.HasPrefix(h, "[") {
		// [v6] or [v6]:port
		close := strings.Index(h, "]")
		if close < 0 {
			return "", errors.New("unclosed '[' in IPv6 address")
		}
		host = h[1:close]
		switch rest := h[close+1:]; {
		case rest == "":
		case strings.HasPrefix(rest, ":"):
			port = rest[1:]
		default:
			return "", errors.New("unexpected text after ']'")
		}
		if net.ParseIP(host) == nil || !strings.Contains(host, ":") {
			return "", fmt.Errorf("invalid IPv6 address %q", clip(host))
		}
	} else {
		if strings.Count(h, ":") > 1 {
			return "", errors.New("IPv6 addresses must be in brackets, e.g. [::1]:6379")
		}
		if i := strings.IndexByte(h, ':'); i >= 0 {
			host, port = h[:i], h[i+1:]
		}
		if host == "" {
			return "", errors.New("empty host name")
		}
		for _, r := range host {
			if !(r == '-' || r == '.' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return "", fmt.Errorf("invalid character %q in host name", r)
			}
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || port[0] == '+' {
		return "", fmt.Errorf("invalid port %q", clip(port))
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

func parseDB(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > maxDB || s[0] == '+' {
		return 0, fmt.Errorf("redis URL: invalid database number %q", clip(s))
	}
	return n, nil
}

// clip bounds what an error echoes, so a pasted blob does not fill the log.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Redacted renders c as a URL with the password replaced by "xxxxx", for
// logs and status pages.
func (c Config) Redacted() string {
	scheme := "redis"
	if c.TLS {
		scheme = "rediss"
	}
	switch c.Mode {
	case Sentinel:
		scheme += "+sentinel"
	case Cluster:
		scheme += "+cluster"
	}
	var b strings.Builder
	b.WriteString(scheme + "://")
	if c.Username != "" || c.Password != "" {
		b.WriteString(escape(c.Username))
		if c.Password != "" {
			b.WriteString(":xxxxx")
		}
		b.WriteString("@")
	}
	b.WriteString(strings.Join(c.Addrs, ","))
	switch c.Mode {
	case Single:
		fmt.Fprintf(&b, "/%d", c.DB)
	case Sentinel:
		b.WriteString("/" + escape(c.Master))
		if c.DB != 0 {
			fmt.Fprintf(&b, "?db=%d", c.DB)
		}
	}
	return b.String()
}

// escape percent-encodes every byte outside RFC 3986's unreserved set, so
// that ParseURL reads back exactly what was written.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}
