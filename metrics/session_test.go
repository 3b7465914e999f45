package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSessionsCountsEachDecision(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := NewSessions(reg)
	s.SessionCreated("anonymous")
	s.SessionCreated("anonymous")
	s.SessionCreated("user")
	s.SessionRotated()
	s.SessionDestroyed("logout")
	s.SessionLookup("hit")
	s.SessionLookup("bad_cookie")
	s.SessionRateLimited()

	for _, c := range []struct {
		name, label, value string
		want               float64
	}{
		{NameSessionsCreatedTotal, "kind", "anonymous", 2},
		{NameSessionsCreatedTotal, "kind", "user", 1},
		{NameSessionsDestroyedTotal, "reason", "logout", 1},
		{NameSessionLookupsTotal, "result", "hit", 1},
		{NameSessionLookupsTotal, "result", "bad_cookie", 1},
	} {
		got := labelValue(t, reg, c.name, c.label, c.value)
		if got != c.want {
			t.Errorf("%s{%s=%q} = %v, want %v", c.name, c.label, c.value, got, c.want)
		}
	}
	if got := testutil.ToFloat64(s.rotated); got != 1 {
		t.Errorf("rotations = %v, want 1", got)
	}
	if got := testutil.ToFloat64(s.rateLimited); got != 1 {
		t.Errorf("rate limited = %v, want 1", got)
	}
}

func TestSessionsLabelsStayBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := NewSessions(reg)
	for i := 0; i < 100; i++ {
		s.SessionLookup(string(rune('a'+i%26)) + string(rune('a'+i/26)))
	}
	n, err := testutil.GatherAndCount(reg, NameSessionLookupsTotal)
	if err != nil {
		t.Fatal(err)
	}
	if n > 17 {
		t.Fatalf("%d lookup series after 100 distinct labels, want at most 17 (16 + overflow)", n)
	}
}

func labelValue(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestGuestTokensCountsEachDecision(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := NewGuestTokens(reg)
	g.ObserveGuestTokenChecked()
	g.ObserveGuestTokenChecked()
	g.ObserveGuestTokenIssued("7")
	g.ObserveGuestTokenRevocation("global")
	if got := testutil.ToFloat64(g.checked); got != 2 {
		t.Errorf("checked = %v, want 2", got)
	}
	for _, c := range []struct {
		name, label, value string
	}{
		{NameGuestTokensIssuedTotal, "dashboard", "7"},
		{NameGuestTokenRevocationsTotal, "scope", "global"},
	} {
		if got := labelValue(t, reg, c.name, c.label, c.value); got != 1 {
			t.Errorf("%s{%s=%q} = %v, want 1", c.name, c.label, c.value, got)
		}
	}
}

func TestEpochsCountsStampsAndJWTDecisions(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := NewEpochs(reg)
	e.ObserveStamp("admin")
	e.ObserveJWTChecked("access_jwt")
	if got := labelValue(t, reg, NameEpochStampsTotal, "trigger", "admin"); got != 1 {
		t.Errorf("stamps{admin} = %v", got)
	}
	if got := labelValue(t, reg, NameJWTChecksTotal, "kind", "access_jwt"); got != 1 {
		t.Errorf("checks{access_jwt} = %v", got)
	}
}
