package metrics

import "github.com/prometheus/client_golang/prometheus"

// Rate-limit metric names.
const (
	NameRateLimitDecisionsTotal = namespace + "_ratelimit_decisions_total"
	NameRateLimitFallbackTotal  = namespace + "_ratelimit_fallback_total"
)

// RateLimits counts the rate-limit stage's decisions by class and outcome
// (allowed, limited, fallback, known_device, failure, error) and the
// answers the per-process fallback gave while the shared store was down.
// It implements ratelimit.Observer.
type RateLimits struct {
	decisions *childCache[[2]string, prometheus.Counter]
	fallback  prometheus.Counter
}

// NewRateLimits creates the rate-limit collectors and registers them.
func NewRateLimits(reg prometheus.Registerer) *RateLimits {
	d := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameRateLimitDecisionsTotal,
		Help: "Rate-limit decisions, by class and outcome.",
	}, []string{"class", "outcome"})
	f := prometheus.NewCounter(prometheus.CounterOpts{
		Name: NameRateLimitFallbackTotal,
		Help: "Rate-limit checks answered by the per-process fallback because the shared store did not answer.",
	})
	reg.MustRegister(d, f)
	// Classes and outcomes are the ratelimit package's constants: a
	// small fixed set, so the cache never overflows in practice.
	return &RateLimits{
		decisions: newChildCache(64, [2]string{overflowLabel, overflowLabel},
			func(k [2]string) prometheus.Counter { return d.WithLabelValues(k[0], k[1]) }),
		fallback: f,
	}
}

// ObserveRateLimit counts one decision.
func (m *RateLimits) ObserveRateLimit(class, outcome string) {
	m.decisions.get([2]string{class, outcome}).Inc()
}

// RateLimitFallback counts one answer of the per-process fallback.
func (m *RateLimits) RateLimitFallback() { m.fallback.Inc() }
