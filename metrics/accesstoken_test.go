package metrics

import (
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestAccessTokensCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := NewAccessTokens(reg)
	a.ObserveAccessTokenRequest("charts:read", "allowed")
	a.ObserveAccessTokenRequest("charts:read", "allowed")
	a.ObserveAccessTokenRequest("none", "revoked")
	a.ObserveAccessTokenManaged("created")
	if got := testutil.ToFloat64(a.requests.get(accessTokenKey{"charts:read", "allowed"})); got != 2 {
		t.Errorf("allowed charts:read = %v, want 2", got)
	}
	if got := testutil.ToFloat64(a.requests.get(accessTokenKey{"none", "revoked"})); got != 1 {
		t.Errorf("revoked = %v, want 1", got)
	}
	if got := labelValue(t, reg, NameAccessTokensManagedTotal, "op", "created"); got != 1 {
		t.Errorf("created = %v, want 1", got)
	}
}

func TestAccessTokensLabelsStayBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := NewAccessTokens(reg)
	for i := 0; i < 1000; i++ {
		a.ObserveAccessTokenRequest("s"+strconv.Itoa(i), "o")
	}
	n, err := testutil.GatherAndCount(reg, NameAccessTokenRequestsTotal)
	if err != nil {
		t.Fatal(err)
	}
	if n > 257 {
		t.Fatalf("%d series, want at most 257", n)
	}
}
