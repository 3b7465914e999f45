package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/metrics"
)

var _ audit.DropObserver = (*metrics.Audit)(nil)

func TestAuditDroppedCountsByEvent(t *testing.T) {
	reg := metrics.NewRegistry()
	a := metrics.NewAudit(reg)
	a.ObserveAuditDropped("jwt.refused")
	a.ObserveAuditDropped("jwt.refused")
	a.ObserveAuditDropped("guest_token.refused")
	if n := testutil.CollectAndCount(reg, metrics.NameAuditRefusalsDroppedTotal); n != 2 {
		t.Fatalf("%d series, want 2", n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metrics.NameAuditRefusalsDroppedTotal {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == "jwt.refused" && m.GetCounter().GetValue() != 2 {
				t.Errorf("jwt.refused dropped %v, want 2", m.GetCounter().GetValue())
			}
		}
	}
}
