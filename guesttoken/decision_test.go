package guesttoken

import (
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

func TestCheckRevocation(t *testing.T) {
	stamp := t0.UnixMilli()
	cases := []struct {
		name    string
		iat     time.Time
		ms      int64
		stamped bool
		want    Decision
	}{
		{"no stamp", t0, 0, false, Decision{Allow: true, Reason: ReasonOK}},
		{"issued before", t0.Add(-time.Second), stamp, true, Decision{Reason: ReasonRevoked}},
		{"issued in the stamp's millisecond", t0.Add(900 * time.Microsecond), stamp, true, Decision{Reason: ReasonRevoked}},
		{"issued exactly at", t0, stamp, true, Decision{Reason: ReasonRevoked}},
		{"issued the next millisecond", t0.Add(time.Millisecond), stamp, true, Decision{Allow: true, Reason: ReasonOK}},
		{"stamp at zero still applies", time.UnixMilli(0), 0, true, Decision{Reason: ReasonRevoked}},
	}
	for _, c := range cases {
		if got := CheckRevocation(c.iat, c.ms, c.stamped); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestCheckClaims(t *testing.T) {
	claims := func(lifetime time.Duration, res ...guestjwt.Resource) *guestjwt.Claims {
		return &guestjwt.Claims{Resources: res, IssuedAt: t0, ExpiresAt: t0.Add(lifetime)}
	}
	dash := guestjwt.Resource{Type: "dashboard", ID: "12"}
	many := make([]guestjwt.Resource, DefaultMaxResources+1)
	for i := range many {
		many[i] = dash
	}
	cases := []struct {
		name string
		c    *guestjwt.Claims
		p    Policy
		want policy.Reason
	}{
		{"plain", claims(5*time.Minute, dash), Policy{}, ReasonOK},
		{"within cap", claims(5*time.Minute, dash), Policy{MaxLifetime: 5 * time.Minute}, ReasonOK},
		{"over cap", claims(time.Hour, dash), Policy{MaxLifetime: 5 * time.Minute}, ReasonLifetime},
		{"too many", claims(time.Minute, many...), Policy{}, ReasonTooManyResources},
		{"custom max", claims(time.Minute, dash, dash), Policy{MaxResources: 1}, ReasonTooManyResources},
		{"control char", claims(time.Minute, guestjwt.Resource{Type: "dashboard", ID: "1\n2"}), Policy{}, ReasonBadResource},
		{"overlong id", claims(time.Minute, guestjwt.Resource{Type: "dashboard", ID: strings.Repeat("a", 256)}), Policy{}, ReasonBadResource},
		{"colon in type", claims(time.Minute, guestjwt.Resource{Type: "dashboard:1", ID: "2"}), Policy{}, ReasonBadResource},
		{"slug with colon is fine", claims(time.Minute, guestjwt.Resource{Type: "dashboard", ID: "sales:eu"}), Policy{}, ReasonOK},
		{"unicode slug", claims(time.Minute, guestjwt.Resource{Type: "dashboard", ID: "ventes-été"}), Policy{}, ReasonOK},
	}
	for _, c := range cases {
		got := CheckClaims(c.c, c.p)
		if got.Reason != c.want || got.Allow != (c.want == ReasonOK) {
			t.Errorf("%s: %+v, want %s", c.name, got, c.want)
		}
	}
}

func TestCanonicalAlias(t *testing.T) {
	for in, want := range map[string]string{
		"12": "12", "0012": "12", "0": "0", "000": "0", "sales": "sales", "Sales": "Sales",
		"5B1A6C1E-2F3D-4E5F-8A9B-0C1D2E3F4A5B": "5b1a6c1e-2f3d-4e5f-8a9b-0c1d2e3f4a5b",
		"5b1a6c1e2f3d4e5f8a9b0c1d2e3f4a5b":     "5b1a6c1e-2f3d-4e5f-8a9b-0c1d2e3f4a5b",
		"5b1a6c1e-2f3d-4e5f-8a9b-0c1d2e3f4a5g": "5b1a6c1e-2f3d-4e5f-8a9b-0c1d2e3f4a5g",
		"5b1a6c1e-2f3d-4e5f-8a9b0-c1d2e3f4a5b": "5b1a6c1e-2f3d-4e5f-8a9b0-c1d2e3f4a5b",
	} {
		if got := CanonicalAlias(in); got != want {
			t.Errorf("CanonicalAlias(%q) = %q, want %q", in, got, want)
		}
	}
	if DashboardKey("0012") != DashboardKey("12") {
		t.Error("keys differ for spellings of one id")
	}
}
