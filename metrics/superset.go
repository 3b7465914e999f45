package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/superset-gateway/superset-gateway/proxy"
	"github.com/superset-gateway/superset-gateway/superset"
)

// Superset performance, seen from the gateway: one observation per request
// Superset answered (proxy.SupersetSample).
const (
	NameSupersetRequestsTotal     = namespace + "_superset_requests_total"
	NameSupersetTTFB              = namespace + "_superset_ttfb_seconds"
	NameSupersetDuration          = namespace + "_superset_duration_seconds"
	NameSupersetRequestBytes      = namespace + "_superset_request_bytes"
	NameSupersetResponseBytes     = namespace + "_superset_response_bytes"
	NameSupersetSlowRequestsTotal = namespace + "_superset_slow_requests_total"
)

// Callers is the closed set of caller classes (principal.Principal.Caller);
// anything else is counted as "other".
var Callers = [...]string{"browser_session", "api_jwt", "access_token", "guest", "anonymous", "fab_api_key"}

var sizeBuckets = prometheus.ExponentialBuckets(256, 4, 10) // 256 B … 64 MiB

// supersetKey indexes the per-request children. endpoint and caller are
// folded into their closed sets before lookup; node is bounded by the
// childCache cap (maxNodes per endpoint and caller).
type supersetKey struct{ endpoint, node, caller string }

type supersetSeries struct {
	byStatus  [len(statusClasses)]prometheus.Counter
	ttfb      prometheus.Observer
	total     prometheus.Observer
	reqBytes  prometheus.Observer
	respBytes prometheus.Observer
	slow      prometheus.Counter
}

type supersetVecs struct {
	requests  *prometheus.CounterVec
	ttfb      *prometheus.HistogramVec
	total     *prometheus.HistogramVec
	reqBytes  *prometheus.HistogramVec
	respBytes *prometheus.HistogramVec
	slow      *prometheus.CounterVec
	cache     *childCache[supersetKey, *supersetSeries]
}

func newSupersetVecs(reg prometheus.Registerer) *supersetVecs {
	labels := []string{"endpoint", "node", "caller"}
	v := &supersetVecs{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameSupersetRequestsTotal,
			Help: "Requests Superset answered, by endpoint class, node, caller class and status class; 5xx over the total is Superset's error rate.",
		}, append(labels, "code")),
		ttfb: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameSupersetTTFB,
			Help:    "Time from sending a request to Superset to its response headers (time to first byte), by endpoint class, node and caller class.",
			Buckets: requestBuckets,
		}, labels),
		total: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameSupersetDuration,
			Help:    "Total time of a request Superset answered, from the gateway receiving it to the last response byte written, by endpoint class, node and caller class.",
			Buckets: requestBuckets,
		}, labels),
		reqBytes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameSupersetRequestBytes,
			Help:    "Declared request body size (Content-Length; chunked bodies count 0) of requests Superset answered, by endpoint class.",
			Buckets: sizeBuckets,
		}, []string{"endpoint"}),
		respBytes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameSupersetResponseBytes,
			Help:    "Response body bytes written to the client for requests Superset answered, by endpoint class.",
			Buckets: sizeBuckets,
		}, []string{"endpoint"}),
		slow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameSupersetSlowRequestsTotal,
			Help: "Requests Superset answered whose total time reached metrics.slow_request_threshold, by endpoint class and caller class; each is also logged with its request id.",
		}, []string{"endpoint", "caller"}),
	}
	reg.MustRegister(v.requests, v.ttfb, v.total, v.reqBytes, v.respBytes, v.slow)
	max := len(superset.EndpointClasses) * len(Callers) * maxNodes
	v.cache = newChildCache(max, supersetKey{overflowLabel, overflowLabel, overflowLabel}, func(k supersetKey) *supersetSeries {
		s := &supersetSeries{
			ttfb:      v.ttfb.WithLabelValues(k.endpoint, k.node, k.caller),
			total:     v.total.WithLabelValues(k.endpoint, k.node, k.caller),
			reqBytes:  v.reqBytes.WithLabelValues(k.endpoint),
			respBytes: v.respBytes.WithLabelValues(k.endpoint),
			slow:      v.slow.WithLabelValues(k.endpoint, k.caller),
		}
		for i, code := range statusClasses {
			s.byStatus[i] = v.requests.WithLabelValues(k.endpoint, k.node, k.caller, code)
		}
		return s
	})
	return v
}

// ObserveSuperset records one request Superset answered. Endpoint and caller
// values outside their closed sets are folded into "other" here, so a bug
// upstream of this call cannot turn request data into labels.
func (m *Metrics) ObserveSuperset(s proxy.SupersetSample) {
	k := supersetKey{foldIn(s.Endpoint, superset.EndpointClasses[:]), s.Node, foldIn(s.Caller, Callers[:])}
	c := m.superset.cache.get(k)
	c.byStatus[statusIndex(s.Status)].Inc()
	c.ttfb.Observe(s.TTFB.Seconds())
	c.total.Observe(s.Total.Seconds())
	c.reqBytes.Observe(float64(s.ReqBytes))
	c.respBytes.Observe(float64(s.RespBytes))
	if s.Slow {
		c.slow.Inc()
	}
}

func foldIn(v string, set []string) string {
	for _, s := range set {
		if s == v {
			return v
		}
	}
	return overflowLabel
}
