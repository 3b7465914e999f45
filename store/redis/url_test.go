package redis

import (
	"reflect"
	"strings"
	"testing"
)

var urlCases = []struct {
	in      string
	want    Config
	wantErr string // substring of the error; empty means success
}{
	{in: "redis://localhost", want: Config{Addrs: []string{"localhost:6379"}}},
	{in: "redis://127.0.0.1:6380/2", want: Config{Addrs: []string{"127.0.0.1:6380"}, DB: 2}},
	{in: "REDIS://h:1/", want: Config{Addrs: []string{"h:1"}}},
	{in: "redis://:p%40ss@h:6379/0", want: Config{Addrs: []string{"h:6379"}, Password: "p@ss"}},
	{in: "redis://user:pw@h", want: Config{Addrs: []string{"h:6379"}, Username: "user", Password: "pw"}},
	{in: "redis://user@h", want: Config{Addrs: []string{"h:6379"}, Username: "user"}},
	{in: "redis://u:p@ss:w@rd@h", want: Config{Addrs: []string{"h:6379"}, Username: "u", Password: "p@ss:w@rd"}},
	{in: "redis://[::1]:7000/3", want: Config{Addrs: []string{"[::1]:7000"}, DB: 3}},
	{in: "redis://[::1]", want: Config{Addrs: []string{"[::1]:6379"}}},
	{in: "rediss://cache.example.com:6380", want: Config{TLS: true, Addrs: []string{"cache.example.com:6380"}}},
	{in: "redis+sentinel://s1:26379,s2,[fe80::1]:5000/mymaster", want: Config{Mode: Sentinel, Addrs: []string{"s1:26379", "s2:26379", "[fe80::1]:5000"}, Master: "mymaster"}},
	{in: "redis+sentinel://u:p@s1/mymaster?db=4", want: Config{Mode: Sentinel, Addrs: []string{"s1:26379"}, Master: "mymaster", DB: 4, Username: "u", Password: "p"}},
	{in: "rediss+sentinel://s1/m%2Dx", want: Config{Mode: Sentinel, TLS: true, Addrs: []string{"s1:26379"}, Master: "m-x"}},
	{in: "redis+cluster://n1:7000,n2:7001", want: Config{Mode: Cluster, Addrs: []string{"n1:7000", "n2:7001"}}},
	{in: "redis+cluster://:pw@n1:7000/", want: Config{Mode: Cluster, Addrs: []string{"n1:7000"}, Password: "pw"}},
	{in: "rediss+cluster://n1:7000/0", want: Config{Mode: Cluster, TLS: true, Addrs: []string{"n1:7000"}}},

	{in: "localhost:6379", wantErr: "missing scheme"},
	{in: "http://h", wantErr: "unsupported scheme \"http\""},
	{in: "redis://", wantErr: "no host"},
	{in: "redis://:pw@", wantErr: "no host"},
	{in: "redis://h:0", wantErr: "invalid port \"0\""},
	{in: "redis://h:65536", wantErr: "invalid port"},
	{in: "redis://h:+1", wantErr: "invalid port"},
	{in: "redis://h:abc", wantErr: "invalid port"},
	{in: "redis://h:", wantErr: "invalid port"},
	{in: "redis://::1", wantErr: "IPv6 addresses must be in brackets"},
	{in: "redis://[::1", wantErr: "unclosed '['"},
	{in: "redis://[::1]x", wantErr: "after ']'"},
	{in: "redis://[nothost]:1", wantErr: "invalid IPv6"},
	{in: "redis://h/x", wantErr: "invalid database number \"x\""},
	{in: "redis://h/-1", wantErr: "invalid database number"},
	{in: "redis://h/1/2", wantErr: "invalid database number"},
	{in: "redis://h/0?db=1", wantErr: "unknown query parameter \"db\" for single"},
	{in: "redis://h?timeout=1", wantErr: "unknown query parameter \"timeout\""},
	{in: "redis://h1,h2", wantErr: "several hosts need"},
	{in: "redis://h1,", wantErr: "host 2: empty host"},
	{in: "redis://h%41", wantErr: "invalid character '%' in host name"},
	{in: "redis://ho st", wantErr: "invalid character ' '"},
	{in: "redis://:pw%zz@h", wantErr: "password is not validly percent-encoded"},
	{in: "redis://u%zz:pw@h", wantErr: "username is not validly percent-encoded"},
	{in: "redis://:pa#ss@h", wantErr: "'#' is not allowed"},
	{in: "redis+sentinel://s1", wantErr: "needs the master name"},
	{in: "redis+sentinel://s1/", wantErr: "needs the master name"},
	{in: "redis+sentinel://s1/a/b", wantErr: "invalid sentinel master name"},
	{in: "redis+sentinel://s1/m?db=x", wantErr: "invalid database number"},
	{in: "redis+sentinel://s1/m?db=1&db=2", wantErr: "more than once"},
	{in: "redis+sentinel://s1/m?master=x", wantErr: "unknown query parameter \"master\""},
	{in: "redis+cluster://n1/1", wantErr: "only database 0"},
	{in: "redis+cluster://n1?db=0", wantErr: "unknown query parameter"},
}

func TestParseURL(t *testing.T) {
	for _, tc := range urlCases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseURL(tc.in)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseURL(%q) = %+v, want error containing %q", tc.in, got, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseURL(%q) error = %q, want it to contain %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseURL(%q) =\n %+v, want\n %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseURLErrorsHidePassword(t *testing.T) {
	for _, in := range []string{
		"redis://u:Sup3rSecret@h:99999",
		"redis://u:Sup3rSecret@h/x",
		"redis://u:Sup3rSecret@h1,h2",
		"redis://u:Sup3rSecret@ho st",
		"redis+sentinel://u:Sup3rSecret@s1",
		"redis+cluster://u:Sup3rSecret@n1?x=1",
		"redis://u:Sup3rSecret%zz@h",
		"redis://u:Sup3rSecret#@h",
		"ftp://u:Sup3rSecret@h",
	} {
		_, err := ParseURL(in)
		if err == nil {
			t.Fatalf("ParseURL(%q) succeeded", in)
		}
		if strings.Contains(err.Error(), "Sup3rSecret") {
			t.Fatalf("ParseURL(%q) error echoes the password: %v", in, err)
		}
	}
}

func TestRedacted(t *testing.T) {
	for in, want := range map[string]string{
		"redis://:pw@h/2":                       "redis://:xxxxx@h:6379/2",
		"rediss://us%3Aer:pw@h:1":               "rediss://us%3Aer:xxxxx@h:1/0",
		"redis://u@h":                           "redis://u@h:6379/0",
		"redis+sentinel://s1,s2/my%20m?db=3":    "redis+sentinel://s1:26379,s2:26379/my%20m?db=3",
		"rediss+cluster://:pw@[::1]:7000,n2:70": "rediss+cluster://:xxxxx@[::1]:7000,n2:70",
	} {
		c, err := ParseURL(in)
		if err != nil {
			t.Fatalf("ParseURL(%q): %v", in, err)
		}
		if got := c.Redacted(); got != want {
			t.Fatalf("Redacted(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseURL checks, for any input: no panic; a parsed Config is
// internally valid and survives a Redacted round trip; and an error never
// contains a password, found by planting a marker password in the input.
func FuzzParseURL(f *testing.F) {
	for _, tc := range urlCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := ParseURL(raw)
		if err == nil {
			checkConfig(t, raw, c)
		}

		const marker = "PLANTEDpw"
		scheme, rest, ok := strings.Cut(raw, "://")
		if !ok || strings.Contains(raw, marker) {
			return
		}
		planted := scheme + "://u:" + marker + "@" + rest
		pc, perr := ParseURL(planted)
		if perr != nil {
			if strings.Contains(perr.Error(), marker) {
				t.Fatalf("ParseURL(%q) error leaks the password: %v", planted, perr)
			}
			return
		}
		if strings.Contains(pc.Redacted(), marker) {
			t.Fatalf("Redacted() of %q leaks the password: %q", planted, pc.Redacted())
		}
		checkConfig(t, planted, pc)
	})
}

func checkConfig(t *testing.T, raw string, c Config) {
	t.Helper()
	if len(c.Addrs) == 0 {
		t.Fatalf("ParseURL(%q) gave no addresses", raw)
	}
	if c.Mode == Single && len(c.Addrs) != 1 {
		t.Fatalf("ParseURL(%q) gave %d addresses for a single server", raw, len(c.Addrs))
	}
	if (c.Mode == Sentinel) != (c.Master != "") {
		t.Fatalf("ParseURL(%q): mode %v with master %q", raw, c.Mode, c.Master)
	}
	if c.DB < 0 || (c.Mode == Cluster && c.DB != 0) {
		t.Fatalf("ParseURL(%q): db %d in mode %v", raw, c.DB, c.Mode)
	}
	back, err := ParseURL(c.Redacted())
	if err != nil {
		t.Fatalf("ParseURL(Redacted(%q) = %q): %v", raw, c.Redacted(), err)
	}
	want := c
	if want.Password != "" {
		want.Password = "xxxxx"
	}
	if !reflect.DeepEqual(back, want) {
		t.Fatalf("round trip of %q via %q:\n got %+v\nwant %+v", raw, c.Redacted(), back, want)
	}
}
