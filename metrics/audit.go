package metrics

import "github.com/prometheus/client_golang/prometheus"

// NameAuditRefusalsDroppedTotal counts refusal audit events the audit
// throttle dropped, by event name.
const NameAuditRefusalsDroppedTotal = namespace + "_audit_refusals_dropped_total"

// maxAuditEvents bounds the event label (refusal event names are fixed
// identifiers, a handful of them).
const maxAuditEvents = 32

// Audit counts what the audit log dropped. It implements
// audit.DropObserver.
type Audit struct {
	dropped *childCache[string, prometheus.Counter]
}

// NewAudit creates the audit collectors and registers them.
func NewAudit(reg prometheus.Registerer) *Audit {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameAuditRefusalsDroppedTotal,
		Help: "Refusal audit events not recorded because their (event, reason) exceeded the audit throttle; each period's drops are summed up in an audit.refusals_dropped event.",
	}, []string{"event"})
	reg.MustRegister(v)
	return &Audit{dropped: newChildCache(maxAuditEvents, overflowLabel, func(e string) prometheus.Counter { return v.WithLabelValues(e) })}
}

// ObserveAuditDropped counts one dropped refusal event.
func (a *Audit) ObserveAuditDropped(event string) { a.dropped.get(event).Inc() }
