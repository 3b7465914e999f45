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
	_ proxy.Observer    = observers{}
	_ upstream.Observer = observers{}
	_ RefusalObserver   = observers{}
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
	o.ov.ObserveUpstream(node, class, status, d)
}

func (o observers) SetNodeHealthy(node string, healthy bool) {
	o.m.SetNodeHealthy(node, healthy)
	o.ov.SetNodeHealthy(node, healthy)
}

func (o observers) ObserveCredentialRefusal(kind, reason string) {
	o.m.ObserveCredentialRefusal(kind, reason)
	o.ov.ObserveCredentialRefusal(kind, reason)
}
