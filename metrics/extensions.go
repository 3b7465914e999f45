package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Names of the extension-policy collectors.
const (
	NameExtensionDecisionsTotal     = namespace + "_extension_decisions_total"
	NameExtensionAdvisoriesOK       = namespace + "_extension_advisories_ok"
	NameExtensionAdvisoriesNewest   = namespace + "_extension_advisories_newest_timestamp_seconds"
	NameExtensionAdvisoryLoadsTotal = namespace + "_extension_advisory_loads_total"
)

// maxExtensionReasons bounds the reason label (policy.Reason constants).
const maxExtensionReasons = 16

// Extensions counts the extension policy's decisions and the state of
// its advisory data. It implements enforce.Observer.
type Extensions struct {
	decisions *childCache[[2]string, prometheus.Counter]
	ok        prometheus.Gauge
	newest    prometheus.Gauge
	loads     *prometheus.CounterVec
}

// NewExtensions creates the collectors and registers them.
func NewExtensions(reg prometheus.Registerer) *Extensions {
	d := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameExtensionDecisionsTotal,
		Help: "Extension policy decisions: requests for an extension's files or backend routes, and list entries, by outcome (allowed, refused) and reason.",
	}, []string{"outcome", "reason"})
	ok := prometheus.NewGauge(prometheus.GaugeOpts{Name: NameExtensionAdvisoriesOK,
		Help: "1 when the extension advisory data loaded and is fresh, 0 when missing, unreadable or stale (extensions.on_unavailable applies)."})
	newest := prometheus.NewGauge(prometheus.GaugeOpts{Name: NameExtensionAdvisoriesNewest,
		Help: "Modified time of the newest advisory record loaded (Unix seconds)."})
	loads := prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameExtensionAdvisoryLoadsTotal,
		Help: "Advisory data loads, by result (ok, unavailable)."}, []string{"result"})
	reg.MustRegister(d, ok, newest, loads)
	return &Extensions{
		decisions: newChildCache(maxExtensionReasons, [2]string{overflowLabel, overflowLabel}, func(k [2]string) prometheus.Counter { return d.WithLabelValues(k[0], k[1]) }),
		ok:        ok, newest: newest, loads: loads,
	}
}

// ExtensionDecision counts one decision.
func (e *Extensions) ExtensionDecision(outcome, reason string) {
	if reason == "" {
		reason = "ok"
	}
	e.decisions.get([2]string{outcome, reason}).Inc()
}

// ExtensionAdvisories records one load of the advisory data.
func (e *Extensions) ExtensionAdvisories(ok bool, newest time.Time) {
	if ok {
		e.ok.Set(1)
		e.loads.WithLabelValues("ok").Inc()
	} else {
		e.ok.Set(0)
		e.loads.WithLabelValues("unavailable").Inc()
	}
	if !newest.IsZero() {
		e.newest.Set(float64(newest.Unix()))
	}
}
