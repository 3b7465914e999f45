package metrics

import "github.com/prometheus/client_golang/prometheus"

// Invalidation-epoch and Superset API JWT metric names (A2).
const (
	NameEpochStampsTotal = namespace + "_epoch_stamps_total"
	NameJWTChecksTotal   = namespace + "_api_jwt_checks_total"
	NameJWTRefusedTotal  = namespace + "_api_jwt_refused_total"
)

// Epochs counts acknowledged epoch stamps by trigger and Superset API JWT
// checks and refusals by kind (access_jwt, refresh_jwt) and reason. It
// implements epoch.Observer and jwtguard.Observer.
type Epochs struct {
	stamps  *childCache[string, prometheus.Counter]
	checked *childCache[string, prometheus.Counter]
	refused *childCache[[2]string, prometheus.Counter]
}

// NewEpochs creates the collectors and registers them with reg.
func NewEpochs(reg prometheus.Registerer) *Epochs {
	stamps := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameEpochStampsTotal,
		Help: "Invalidation epochs stamped and acknowledged by the store, by trigger (admin, user_disabled, user_deleted, password_changed, reconciler, store_wiped).",
	}, []string{"trigger"})
	checked := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameJWTChecksTotal,
		Help: "Superset API JWTs the gateway verified, by kind (access_jwt, refresh_jwt).",
	}, []string{"kind"})
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameJWTRefusedTotal,
		Help: "Superset API JWTs refused by the gateway before reaching Superset, by kind and reason.",
	}, []string{"kind", "reason"})
	reg.MustRegister(stamps, checked, refused)
	return &Epochs{
		stamps:  newChildCache(16, overflowLabel, func(l string) prometheus.Counter { return stamps.WithLabelValues(l) }),
		checked: newChildCache(8, overflowLabel, func(l string) prometheus.Counter { return checked.WithLabelValues(l) }),
		refused: newChildCache(64, [2]string{overflowLabel, overflowLabel}, func(k [2]string) prometheus.Counter {
			return refused.WithLabelValues(k[0], k[1])
		}),
	}
}

func (e *Epochs) ObserveStamp(trigger string)           { e.stamps.get(trigger).Inc() }
func (e *Epochs) ObserveJWTChecked(kind string)         { e.checked.get(kind).Inc() }
func (e *Epochs) ObserveJWTRefused(kind, reason string) { e.refused.get([2]string{kind, reason}).Inc() }
