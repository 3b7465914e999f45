package policy_test

import (
	"errors"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/extensions/policy"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	r := policy.Rules{
		Allow:       []string{"acme.tools", "acme.old", "acme.blocked", "acme.v"},
		Block:       []string{"acme.blocked", "acme.v@1.2.3", "other.x"},
		MinVersions: map[string]string{"acme.tools": "2.0.0"},
		MaxAge:      30 * 24 * time.Hour,
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		s    policy.Subject
		want []string
	}{
		{policy.Subject{ID: "acme.tools", Version: "2.0.0", Built: now.Add(-time.Hour)}, nil},
		{policy.Subject{ID: "acme.tools", Version: "1.9.9"}, []string{policy.BelowMinimum}},
		{policy.Subject{ID: "acme.tools", Version: "2.0.0-rc.1"}, []string{policy.BelowMinimum}},
		{policy.Subject{ID: "acme.tools", Version: "two"}, []string{policy.BadVersion}},
		{policy.Subject{ID: "acme.blocked", Version: "9.0.0"}, []string{policy.Blocked}},
		{policy.Subject{ID: "acme.v", Version: "1.2.3"}, []string{policy.Blocked}},
		{policy.Subject{ID: "acme.v", Version: "1.2.4"}, nil},
		{policy.Subject{ID: "acme.old", Version: "1.0.0", Built: now.Add(-31 * 24 * time.Hour)}, []string{policy.TooOld}},
		{policy.Subject{ID: "other.x", Version: "1.0.0"}, []string{policy.NotAllowed, policy.Blocked}},
		// Blocklist and allow-list compare whole ids: a prefix is not a match.
		{policy.Subject{ID: "acme.blocked2", Version: "1.0.0"}, []string{policy.NotAllowed}},
	}
	for _, c := range cases {
		got := r.Decide(c.s, now)
		if len(got) != len(c.want) {
			t.Errorf("%+v: %+v, want %v", c.s, got, c.want)
			continue
		}
		for i := range got {
			if got[i].Kind != c.want[i] {
				t.Errorf("%+v: %+v, want %v", c.s, got, c.want)
			}
		}
	}
	if v := (policy.Rules{}).Decide(policy.Subject{ID: "x", Version: "garbage"}, now); len(v) != 0 {
		t.Errorf("zero rules: %+v", v)
	}
}

func TestValidate(t *testing.T) {
	for _, r := range []policy.Rules{
		{Block: []string{"@1.0.0"}},
		{Block: []string{"a.b@"}},
		{Block: []string{"a.b@one"}},
		{MinVersions: map[string]string{"a.b": "1.x"}},
	} {
		if err := r.Validate(); !errors.Is(err, policy.ErrPolicy) {
			t.Errorf("%+v: %v", r, err)
		}
	}
}
