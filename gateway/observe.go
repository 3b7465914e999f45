package gateway

import (
	"time"

	"github.com/superset-gateway/superset-gateway/metrics"
	"github.com/superset-gateway/superset-gateway/overview"
	"github.com/superset-gateway/superset-gateway/proxy"
	"github.com/superset-gateway/superset-gateway/proxy/upstream"
)

// observers hands every request measurement to the Prometheus metrics and
// to the admin overview's ring buffer, so the two never disagree about
// what they saw.
type observers struct {
	m  *metrics.Metrics
	ov *overview.Recorder
}

var (
	_ proxy.Observer = observers{}
	// Optional in proxy, so only this line keeps the Superset
	// performance metrics from being dropped silently by the composite.
	_ proxy.SupersetObserver = observers{}
	_ upstream.Observer      = observers{}
	_ RefusalObserver        = observers{}
)

func (o observers) InFlight(delta int) { o.m.InFlight(delta) }

func (o observers) ObserveRequest(class string, status int, d time.Duration) {
	o.m.ObserveRequest(class, status, d)
	o.ov.ObserveRequest(class, status, d)
}

func (o observers) ObserveRefusal(reason string) {
	o.m.ObserveRefusal(reason)
	o.ov.ObserveRefusal(reason)
}

func (o observers) ObserveUpstream(node, class string, status int, d time.Duration) {
	o.m.ObserveUpstream(node, class, status, d)
	// The overview learns the node here; its latency per class comes
	// from ObserveSuperset, by Superset endpoint class.
	o.ov.ObserveUpstream(node, class, 0, d)
}

// ObserveSuperset records Superset's answer in the metrics and the
// overview's latency per endpoint class (superset.Endpoint).
func (o observers) ObserveSuperset(s proxy.SupersetSample) {
	o.m.ObserveSuperset(s)
	o.ov.ObserveUpstream(s.Node, s.Endpoint, s.Status, s.Total)
}

func (o observers) SetNodeHealthy(node string, healthy bool) {
	o.m.SetNodeHealthy(node, healthy)
	o.ov.SetNodeHealthy(node, healthy)
}

func (o observers) ObserveCredentialRefusal(kind, reason string) {
	o.m.ObserveCredentialRefusal(kind, reason)
	o.ov.ObserveCredentialRefusal(kind, reason)
}
