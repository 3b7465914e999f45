package metrics

import "github.com/prometheus/client_golang/prometheus"

// NameUpstreamSecretMismatch is the upstream secret check's gauge.
const NameUpstreamSecretMismatch = namespace + "_upstream_secret_mismatch"

// UpstreamSecrets publishes the upstream secret check (upstreamsecret): 1
// for a node whose Superset signs its session cookies (secret="secret_key")
// or guest tokens (secret="guest_token_secret") with another key than the
// gateway's; known names the published Superset secret it matched
// (a knownsecret entry ID, never the value) or "none". A node that verifies
// has no series. It implements upstreamsecret.Observer.
type UpstreamSecrets struct {
	g *prometheus.GaugeVec
}

// NewUpstreamSecrets creates the gauge and registers it with reg.
func NewUpstreamSecrets(reg prometheus.Registerer) *UpstreamSecrets {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: NameUpstreamSecretMismatch,
		Help: "1 when an upstream Superset node signs its session cookies (secret=secret_key) or guest tokens (secret=guest_token_secret) with another key than the gateway's; known is the published Superset secret it matched, or none.",
	}, []string{"node", "secret", "known"})
	reg.MustRegister(g)
	return &UpstreamSecrets{g: g}
}

// SetUpstreamSecretMismatch sets the node's series, or removes every series
// of the node and secret when it verifies (a reload re-checks every node).
// Label values come from configuration and a fixed list, never requests.
func (u *UpstreamSecrets) SetUpstreamSecretMismatch(node, secret, known string, mismatch bool) {
	u.g.DeletePartialMatch(prometheus.Labels{"node": node, "secret": secret})
	if mismatch {
		u.g.WithLabelValues(node, secret, known).Set(1)
	}
}
