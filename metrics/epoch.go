package metrics

import "github.com/prometheus/client_golang/prometheus"

// Invalidation-epoch and Superset API JWT metric names (A2).
const (
	NameEpochStampsTotal = namespace + "_epoch_stamps_total"
	NameJWTChecksTotal   = namespace + "_api_jwt_checks_total"
)

// Epochs counts acknowledged epoch stamps by trigger and Superset API JWT
// checks by kind (access_jwt, refresh_jwt); refusals are counted, like
// every refusal, in NameRefusalsTotal. It implements epoch.Observer and
// jwtguard.Observer.
type Epochs struct {
	stamps  *childCache[string, prometheus.Counter]
	checked *childCache[string, prometheus.Counter]
}

// NewEpochs creates the collectors and registers them with reg.
func NewEpochs(reg prometheus.Registerer) *Epochs {
	stamps := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameEpochStampsTotal,
		Help: "Invalidation epochs stamped and acknowledged by the store, by trigger (admin, user_disabled, user_deleted, password_changed, reconciler, store_wiped, store_created, sessions_ended).",
	}, []string{"trigger"})
	checked := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameJWTChecksTotal,
		Help: "Superset API JWTs the gateway verified, by kind (access_jwt, refresh_jwt).",
	}, []string{"kind"})
	reg.MustRegister(stamps, checked)
	return &Epochs{
		stamps:  newChildCache(16, overflowLabel, func(l string) prometheus.Counter { return stamps.WithLabelValues(l) }),
		checked: newChildCache(8, overflowLabel, func(l string) prometheus.Counter { return checked.WithLabelValues(l) }),
	}
}

func (e *Epochs) ObserveStamp(trigger string)   { e.stamps.get(trigger).Inc() }
func (e *Epochs) ObserveJWTChecked(kind string) { e.checked.get(kind).Inc() }
