package metrics

import "github.com/prometheus/client_golang/prometheus"

// Session metric names (A1: the session vault).
const (
	NameSessionsCreatedTotal     = namespace + "_sessions_created_total"
	NameSessionRotationsTotal    = namespace + "_session_rotations_total"
	NameSessionsDestroyedTotal   = namespace + "_sessions_destroyed_total"
	NameSessionLookupsTotal      = namespace + "_session_lookups_total"
	NameSessionsRateLimitedTotal = namespace + "_sessions_rate_limited_total"
	NameLoginsTotal              = namespace + "_logins_total"
)

// Sessions counts the session vault's decisions. It implements
// session.Observer; every label value comes from a small fixed set chosen by
// the session package, so the label caches stay bounded.
type Sessions struct {
	rotated     prometheus.Counter
	rateLimited prometheus.Counter
	created     *childCache[string, prometheus.Counter]
	destroyed   *childCache[string, prometheus.Counter]
	lookups     *childCache[string, prometheus.Counter]
	logins      *childCache[[2]string, prometheus.Counter]
}

// NewSessions creates the session collectors and registers them with reg.
// Like New, it panics on a duplicate registration (a wiring bug).
func NewSessions(reg prometheus.Registerer) *Sessions {
	created := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameSessionsCreatedTotal,
		Help: "Gateway session records created, by kind (anonymous, user).",
	}, []string{"kind"})
	rotated := prometheus.NewCounter(prometheus.CounterOpts{
		Name: NameSessionRotationsTotal,
		Help: "Session ids rotated because a response changed the session's identity (a login).",
	})
	destroyed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameSessionsDestroyedTotal,
		Help: "Gateway session records deleted, by reason (logout, idle, absolute, rotated, ended, revoked, unidentified, upstream_logout).",
	}, []string{"reason"})
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameSessionLookupsTotal,
		Help: "Gateway cookie lookups, by result (hit, miss, not_found, bad_cookie, error).",
	}, []string{"result"})
	limited := prometheus.NewCounter(prometheus.CounterOpts{
		Name: NameSessionsRateLimitedTotal,
		Help: "Anonymous sessions refused by the per-IP creation limit.",
	})
	logins := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameLoginsTotal,
		Help: "Sign-ins through the gateway's browser sessions, seen by their outcome, by method (form: database or LDAP sign-in form; oauth; remote_user; other) and outcome (success, failure).",
	}, []string{"method", "outcome"})
	reg.MustRegister(created, rotated, destroyed, lookups, limited, logins)
	counter := func(v *prometheus.CounterVec) func(string) prometheus.Counter {
		return func(l string) prometheus.Counter { return v.WithLabelValues(l) }
	}
	return &Sessions{
		rotated:     rotated,
		rateLimited: limited,
		created:     newChildCache(8, overflowLabel, counter(created)),
		destroyed:   newChildCache(16, overflowLabel, counter(destroyed)),
		lookups:     newChildCache(16, overflowLabel, counter(lookups)),
		logins: newChildCache(32, [2]string{overflowLabel, overflowLabel}, func(k [2]string) prometheus.Counter {
			return logins.WithLabelValues(k[0], k[1])
		}),
	}
}

func (s *Sessions) SessionCreated(kind string)     { s.created.get(kind).Inc() }
func (s *Sessions) SessionRotated()                { s.rotated.Inc() }
func (s *Sessions) SessionDestroyed(reason string) { s.destroyed.get(reason).Inc() }
func (s *Sessions) SessionLookup(result string)    { s.lookups.get(result).Inc() }
func (s *Sessions) SessionRateLimited()            { s.rateLimited.Inc() }
func (s *Sessions) Login(method, outcome string)   { s.logins.get([2]string{method, outcome}).Inc() }
