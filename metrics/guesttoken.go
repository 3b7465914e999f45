package metrics

import "github.com/prometheus/client_golang/prometheus"

// Guest-token metric names (A3).
const (
	NameGuestTokensCheckedTotal    = namespace + "_guest_tokens_checked_total"
	NameGuestTokensIssuedTotal     = namespace + "_guest_tokens_issued_total"
	NameGuestTokenRevocationsTotal = namespace + "_guest_token_revocations_total"
	maxGuestDashboards             = 256
)

// GuestTokens counts guest-token checks, issuance and revocations (refusals
// are counted, like every refusal, in NameRefusalsTotal). It implements
// guesttoken.Observer. Dashboards are a label of the issued counter; past
// maxGuestDashboards distinct ones they are counted under "other".
type GuestTokens struct {
	checked     prometheus.Counter
	issued      *childCache[string, prometheus.Counter]
	revocations *childCache[string, prometheus.Counter]
}

// NewGuestTokens creates the guest-token collectors and registers them.
func NewGuestTokens(reg prometheus.Registerer) *GuestTokens {
	checked := prometheus.NewCounter(prometheus.CounterOpts{
		Name: NameGuestTokensCheckedTotal,
		Help: "Requests carrying a guest token that the gateway checked.",
	})
	issued := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameGuestTokensIssuedTotal,
		Help: "Guest tokens Superset issued through the gateway, by dashboard named in the token.",
	}, []string{"dashboard"})
	revocations := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameGuestTokenRevocationsTotal,
		Help: "Guest-token revocations acknowledged, by scope (dashboard, global).",
	}, []string{"scope"})
	reg.MustRegister(checked, issued, revocations)
	counter := func(v *prometheus.CounterVec) func(string) prometheus.Counter {
		return func(l string) prometheus.Counter { return v.WithLabelValues(l) }
	}
	return &GuestTokens{
		checked:     checked,
		issued:      newChildCache(maxGuestDashboards, overflowLabel, counter(issued)),
		revocations: newChildCache(8, overflowLabel, counter(revocations)),
	}
}

func (g *GuestTokens) ObserveGuestTokenChecked()                { g.checked.Inc() }
func (g *GuestTokens) ObserveGuestTokenIssued(dashboard string) { g.issued.get(dashboard).Inc() }
func (g *GuestTokens) ObserveGuestTokenRevocation(scope string) { g.revocations.get(scope).Inc() }
