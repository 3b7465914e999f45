package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reconciler metric names.
const (
	NameReconcilerRunsTotal            = namespace + "_reconciler_runs_total"
	NameReconcilerLastSuccessTimestamp = namespace + "_reconciler_last_success_timestamp_seconds"
)

// Reconciler counts the epoch reconciler's runs; it implements
// epoch.ReconcileObserver.
type Reconciler struct {
	runs *childCache[string, prometheus.Counter]
	last prometheus.Gauge
	now  func() time.Time
}

// NewReconciler registers the reconciler metrics with reg. They exist only
// when the reconciler runs, so "no series" means "turned off".
func NewReconciler(reg prometheus.Registerer) *Reconciler {
	runs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameReconcilerRunsTotal,
		Help: "Reconciler runs on this replica, by outcome (ok: held the lease and reconciled; standby: another replica holds the lease; error).",
	}, []string{"outcome"})
	last := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: NameReconcilerLastSuccessTimestamp,
		Help: "Unix time of this replica's last successful reconcile as lease holder; 0 if none yet. The maximum over replicas says when Superset's users were last reconciled.",
	})
	reg.MustRegister(runs, last)
	r := &Reconciler{last: last, now: time.Now}
	r.runs = newChildCache(8, overflowLabel, func(o string) prometheus.Counter { return runs.WithLabelValues(o) })
	for _, o := range []string{"ok", "standby", "error"} {
		r.runs.get(o)
	}
	return r
}

// ObserveReconcile counts one run.
func (r *Reconciler) ObserveReconcile(outcome string) {
	r.runs.get(outcome).Inc()
	if outcome == "ok" {
		r.last.Set(float64(r.now().UnixNano()) / 1e9)
	}
}
