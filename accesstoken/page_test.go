package accesstoken_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/policy"
)

var tokenRE = regexp.MustCompile(accesstoken.Pattern)

func form(v url.Values) *strings.Reader { return strings.NewReader(v.Encode()) }

func TestPageCreateListRevoke(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		g := e.gateway(gwOpts{})
		ck := g.signIn("alice", "alice-password")
		formHdr := []string{"Cookie", ck, "Content-Type", "application/x-www-form-urlencoded"}

		r := g.do("GET", "/-/tokens", nil, "Cookie", ck)
		if r.StatusCode != http.StatusOK || !strings.Contains(r.body, "Signed in as <strong>alice</strong>") {
			t.Fatalf("GET /-/tokens = %d", r.StatusCode)
		}
		for _, want := range []string{`<label for="name">`, `<label for="ttl">`, `<label for="cidrs">`, `(scopes)</legend>`,
			`<label for="scope-metadata:read">`, `action="/-/tokens/create"`, "no-store",
			// The shared layout: back to Superset, the gateway's pages, the
			// scopes in plain words and an example request.
			`href="/sqllab/"`, `href="/dashboard/list/"`, `href="/-/sessions"`, `aria-current="page"`,
			"Read chart data", `curl -H "Authorization: Bearer sgw_…"`} {
			if !strings.Contains(r.body+r.Header.Get("Cache-Control"), want) {
				t.Errorf("page lacks %q", want)
			}
		}

		// Create: shown once, in the documented pattern.
		r = g.do("POST", "/-/tokens/create", form(url.Values{"name": {"ingest <b>"}, "scope": {policy.ScopeMetadataRead, policy.ScopeAPIRead},
			"ttl": {"86400"}, "cidrs": {"127.0.0.1, 10.0.0.0/8"}}), formHdr...)
		tok := tokenRE.FindString(r.body)
		if r.StatusCode != http.StatusOK || tok == "" {
			t.Fatalf("create = %d, token found: %v", r.StatusCode, tok != "")
		}
		if strings.Contains(r.body, "ingest <b>") || !strings.Contains(r.body, "ingest &lt;b&gt;") {
			t.Error("the name is not escaped")
		}
		if _, _, err := accesstoken.Parse(tok); err != nil {
			t.Fatal(err)
		}
		if r := g.withToken("GET", "/api/v1/me/", tok); r.StatusCode != http.StatusOK || !strings.Contains(r.body, `"username":"alice"`) {
			t.Fatalf("new token: %d %s", r.StatusCode, r.body)
		}
		// Listed, never shown again.
		r = g.do("GET", "/-/tokens/", nil, "Cookie", ck)
		if !strings.Contains(r.body, "ingest &lt;b&gt;") || strings.Contains(r.body, tok) || !strings.Contains(r.body, "127.0.0.1/32") {
			t.Fatal("the list does not show the token's metadata, or shows the token")
		}
		if !strings.Contains(r.body, "from 127.0.0.1") {
			t.Error("last use address not listed")
		}

		// Invalid input: 400 with the reason, the form kept.
		r = g.do("POST", "/-/tokens/create", form(url.Values{"name": {"x"}, "ttl": {"86400"}}), formHdr...)
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "choose at least one scope") {
			t.Fatalf("no scope: %d", r.StatusCode)
		}
		r = g.do("POST", "/-/tokens/create", form(url.Values{"name": {"x"}, "scope": {policy.ScopeAPIRead}, "ttl": {"999999999"}}), formHdr...)
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "expiry must be at most") {
			t.Fatalf("ttl off the list: %d", r.StatusCode)
		}

		// Bob cannot revoke Alice's token; Alice can.
		id := mustID(t, tok)
		bobCk := g.signIn("bob", "bob-password")
		r = g.do("POST", "/-/tokens/revoke", form(url.Values{"id": {id}}), "Cookie", bobCk, "Content-Type", "application/x-www-form-urlencoded")
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("bob's revoke: %d", r.StatusCode)
		}
		if r := g.withToken("GET", "/api/v1/me/", tok); r.StatusCode != http.StatusOK {
			t.Fatal("bob revoked alice's token")
		}
		if r := g.do("GET", "/-/tokens", nil, "Cookie", bobCk); strings.Contains(r.body, "ingest &lt;b&gt;") {
			t.Fatal("bob sees alice's token")
		}
		r = g.do("POST", "/-/tokens/revoke", form(url.Values{"id": {id}}), formHdr...)
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/-/tokens" {
			t.Fatalf("revoke: %d %q", r.StatusCode, r.Header.Get("Location"))
		}
		if r := g.withToken("GET", "/api/v1/me/", tok); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("revoked token: %d", r.StatusCode)
		}
		if r := g.do("GET", "/-/tokens", nil, "Cookie", ck); !strings.Contains(r.body, "revoked") {
			t.Error("status not shown")
		}
	})
}

func TestPageAttacker(t *testing.T) {
	e := newEnv(t, boltBackend)
	g := e.gateway(gwOpts{})
	ck := g.signIn("alice", "alice-password")
	create := url.Values{"name": {"evil"}, "scope": {policy.ScopeAPIRead}, "ttl": {"86400"}}

	// Not signed in: to the login page.
	r := g.do("GET", "/-/tokens", nil)
	if r.StatusCode != http.StatusFound || r.Header.Get("Location") != "/login/?next=%2F-%2Ftokens" {
		t.Fatalf("anonymous: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	// Cross-site form posts are refused, by Sec-Fetch-Site or by Origin.
	for _, h := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://evil.example"}} {
		r = g.do("POST", "/-/tokens/create", form(create), "Cookie", ck, "Content-Type", "application/x-www-form-urlencoded", h[0], h[1])
		if r.StatusCode != http.StatusForbidden || tokenRE.MatchString(r.body) {
			t.Errorf("cross-site create with %s: %d", h[0], r.StatusCode)
		}
	}
	list, _ := g.m.List(t.Context(), alice.ID)
	if len(list) != 0 {
		t.Fatalf("a cross-site post created %d tokens", len(list))
	}
	// Same-origin works.
	r = g.do("POST", "/-/tokens/create", form(create), "Cookie", ck, "Content-Type", "application/x-www-form-urlencoded",
		"Sec-Fetch-Site", "same-origin")
	if r.StatusCode != http.StatusOK || !tokenRE.MatchString(r.body) {
		t.Fatalf("same-origin create: %d", r.StatusCode)
	}
	tok := tokenRE.FindString(r.body)
	// A token does not open the page (it is not a session), nor does it
	// sign in a browser session as its owner.
	r = g.withToken("GET", "/-/tokens", tok)
	if r.StatusCode != http.StatusFound {
		t.Fatalf("token on the page: %d", r.StatusCode)
	}
	r = g.withToken("GET", "/api/v1/me/", tok)
	for _, c := range r.Cookies() {
		t.Fatalf("a token request was given a cookie %s", c.Name)
	}
	// Other methods: the styled page for a browser, Superset's JSON for a
	// script, Allow on both.
	r = g.do("DELETE", "/-/tokens", nil, "Cookie", ck, "Accept", "text/html")
	if r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "GET, POST" ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") || !strings.Contains(r.body, "gateway.css") ||
		!strings.Contains(r.body, "tokens page") {
		t.Fatalf("DELETE from a browser: %d Allow=%q %q %.200s", r.StatusCode, r.Header.Get("Allow"), r.Header.Get("Content-Type"), r.body)
	}
	r = g.do("DELETE", "/-/tokens", nil, "Cookie", ck)
	if r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "GET, POST" ||
		r.Header.Get("Content-Type") != "application/json" || !strings.HasPrefix(r.body, `{"msg": "This address takes only`) {
		t.Fatalf("DELETE from a script: %d Allow=%q %q %.200s", r.StatusCode, r.Header.Get("Allow"), r.Header.Get("Content-Type"), r.body)
	}
	// A form that cannot be parsed makes nothing and says so.
	r = g.do("POST", "/-/tokens/create", strings.NewReader("name=%zz&scope=api:read&ttl=86400"), "Cookie", ck,
		"Content-Type", "application/x-www-form-urlencoded", "Accept", "text/html")
	if r.StatusCode != http.StatusBadRequest || tokenRE.MatchString(r.body) || !strings.Contains(r.body, "no token was made") {
		t.Fatalf("unparsable form: %d %.200s", r.StatusCode, r.body)
	}
	if list, _ := g.m.List(t.Context(), alice.ID); len(list) != 1 {
		t.Fatalf("after the unparsable form alice has %d tokens, want the one same-origin token", len(list))
	}
}

// TestPageTTLChoiceLabels: the expiry choices are labelled for people
// whatever their size, in the policy's order, with their values in seconds;
// the first is preselected, and one off the list is refused.
func TestPageTTLChoiceLabels(t *testing.T) {
	e := newEnv(t, boltBackend)
	g := e.gateway(gwOpts{policy: accesstoken.Policy{MaxTTL: 90 * day,
		TTLChoices: []time.Duration{3 * time.Second, 30 * time.Second, 5 * time.Minute, time.Hour, 12 * time.Hour, day, 7 * day, 90 * day}}})
	ck := g.signIn("alice", "alice-password")
	r := g.do("GET", "/-/tokens", nil, "Cookie", ck)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET /-/tokens = %d", r.StatusCode)
	}
	got := regexp.MustCompile(`<option value="(\d+)"( selected)?>([^<]*)</option>`).FindAllStringSubmatch(r.body, -1)
	want := [][3]string{{"3", " selected", "3 seconds"}, {"30", "", "30 seconds"}, {"300", "", "5 minutes"}, {"3600", "", "1 hour"},
		{"43200", "", "12 hours"}, {"86400", "", "1 day"}, {"604800", "", "7 days"}, {"7776000", "", "90 days"}}
	if len(got) != len(want) {
		t.Fatalf("options %q, want %d", got, len(want))
	}
	for i, w := range want {
		if got[i][1] != w[0] || got[i][2] != w[1] || got[i][3] != w[2] {
			t.Errorf("option %d = %q, want value %s%s label %q", i, got[i][0], w[0], w[1], w[2])
		}
	}
	formHdr := []string{"Cookie", ck, "Content-Type", "application/x-www-form-urlencoded"}
	r = g.do("POST", "/-/tokens/create", form(url.Values{"name": {"short"}, "scope": {policy.ScopeAPIRead}, "ttl": {"3"}}), formHdr...)
	if r.StatusCode != http.StatusOK || !tokenRE.MatchString(r.body) {
		t.Fatalf("create with the 3-second choice: %d", r.StatusCode)
	}
	r = g.do("POST", "/-/tokens/create", form(url.Values{"name": {"x"}, "scope": {policy.ScopeAPIRead}, "ttl": {"4"}}), formHdr...)
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "the expiry must be at most 90 days") {
		t.Fatalf("ttl off the list: %d", r.StatusCode)
	}
}
