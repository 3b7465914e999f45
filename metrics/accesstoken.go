package metrics

import "github.com/prometheus/client_golang/prometheus"

// Access-token metric names (issue T).
const (
	NameAccessTokenRequestsTotal = namespace + "_access_token_requests_total"
	NameAccessTokensManagedTotal = namespace + "_access_tokens_managed_total"
)

// accessTokenKey is one (scope, outcome) pair.
type accessTokenKey struct{ scope, outcome string }

// AccessTokens counts access-token requests and management. It implements
// accesstoken.Observer. Scopes and outcomes are fixed sets; past 256
// distinct pairs they are counted under "other".
type AccessTokens struct {
	requests *childCache[accessTokenKey, prometheus.Counter]
	managed  *childCache[string, prometheus.Counter]
}

// NewAccessTokens creates the access-token collectors and registers them.
func NewAccessTokens(reg prometheus.Registerer) *AccessTokens {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameAccessTokenRequestsTotal,
		Help: "Requests carrying a gateway access token, by scope (the granting or missing one; none before the scope check) and outcome (allowed or the refusal reason).",
	}, []string{"scope", "outcome"})
	managed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameAccessTokensManagedTotal,
		Help: "Access tokens created and revoked, by operation.",
	}, []string{"op"})
	reg.MustRegister(requests, managed)
	return &AccessTokens{
		requests: newChildCache(256, accessTokenKey{overflowLabel, overflowLabel}, func(k accessTokenKey) prometheus.Counter {
			return requests.WithLabelValues(k.scope, k.outcome)
		}),
		managed: newChildCache(8, overflowLabel, func(op string) prometheus.Counter { return managed.WithLabelValues(op) }),
	}
}

// ObserveAccessTokenRequest counts one token request.
func (a *AccessTokens) ObserveAccessTokenRequest(scope, outcome string) {
	a.requests.get(accessTokenKey{scope, outcome}).Inc()
}

// ObserveAccessTokenManaged counts a created or revoked token.
func (a *AccessTokens) ObserveAccessTokenManaged(op string) { a.managed.get(op).Inc() }
