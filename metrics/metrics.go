// Package metrics holds every Prometheus collector of the gateway: it is the
// one place where a superset_gateway_* name is spelled. Other packages
// declare the small Observer interfaces they need (proxy.Observer,
// upstream.Observer, instrument.Observer) and *Metrics implements all of
// them, so no other package imports client_golang to count something.
//
// Label values are bounded: route classes, refusal reasons, store operations
// and upstream nodes come from code and config, never from the request. As a
// second line of defence each label keeps at most a fixed number of distinct
// values and folds the rest into "other".
package metrics

import (
	"errors"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/superset-gateway/superset-gateway/store"
)

const namespace = "superset_gateway"

// Metric names, exported so that dashboards, alert-rule tests and other
// packages' tests refer to them instead of repeating the strings.
const (
	NameRequestsTotal             = namespace + "_requests_total"
	NameRequestDuration           = namespace + "_request_duration_seconds"
	NameInFlight                  = namespace + "_in_flight_requests"
	NameRefusalsTotal             = namespace + "_refusals_total"
	NameUpstreamDuration          = namespace + "_upstream_request_duration_seconds"
	NameUpstreamErrorsTotal       = namespace + "_upstream_errors_total"
	NameUpstreamHealthy           = namespace + "_upstream_healthy"
	NameStoreOperationDuration    = namespace + "_store_operation_duration_seconds"
	NameStoreOperationErrorsTotal = namespace + "_store_operation_errors_total"
	NameStoreDurable              = namespace + "_store_durable"
	NameBuildInfo                 = namespace + "_build_info"
)

// Cardinality caps per label (see the package comment).
const (
	maxClasses = 64
	maxReasons = 128
	maxNodes   = 64
	maxOps     = 64
)

// Buckets. Requests through the gateway span a cached static asset (well
// under a millisecond) to a slow SQL Lab query (tens of seconds); store
// operations are loopback or LAN round trips.
var (
	requestBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	storeBuckets   = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}
)

// statusClasses are the values of the code label, indexed by statusIndex.
var statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"}

// statusIndex maps an HTTP status to its index in statusClasses.
func statusIndex(status int) int {
	if status < 100 || status > 599 {
		return len(statusClasses) - 1
	}
	return status/100 - 1
}

// Metrics implements the observers of proxy, proxy/upstream and
// store/instrument. All methods are safe for concurrent use. The zero value
// is not usable; use New.
type Metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	inFlight  prometheus.Gauge
	refusals  *prometheus.CounterVec
	upDur     *prometheus.HistogramVec
	upErr     *prometheus.CounterVec
	upHealthy *prometheus.GaugeVec
	// nodes are the upHealthy series published, for RetainNodes.
	nodesMu  sync.Mutex
	nodes    map[string]bool
	storeDur *prometheus.HistogramVec
	storeErr *prometheus.CounterVec
	durable  *prometheus.GaugeVec
	build    *prometheus.GaugeVec

	// Pre-resolved children, so that the per-request methods neither hash
	// label values nor allocate.
	byClass    *childCache[string, *classSeries]
	byReason   *childCache[[2]string, prometheus.Counter]
	byUpstream *childCache[nodeClass, *upstreamSeries]
	byOp       *childCache[string, *opSeries]

	superset *supersetVecs // Superset performance (superset.go)
}

type classSeries struct {
	byStatus [len(statusClasses)]prometheus.Counter
	duration prometheus.Observer
}

type nodeClass struct{ node, class string }

type upstreamSeries struct {
	duration prometheus.Observer
	errors   prometheus.Counter
}

type opSeries struct {
	duration prometheus.Observer
	errors   prometheus.Counter
}

// New creates the collectors and registers them with reg. It panics if a
// collector is already registered there (two Metrics on one registry are a
// wiring bug); tests give each Metrics its own prometheus.NewRegistry().
// The build info is filled from the binary's embedded build information and
// can be overridden with SetBuildInfo.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		nodes: map[string]bool{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameRequestsTotal,
			Help: "Requests answered by the gateway, by route class and status class (2xx, 4xx, …).",
		}, []string{"class", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameRequestDuration,
			Help:    "Time from request received to response handler returned, by route class.",
			Buckets: requestBuckets,
		}, []string{"class"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: NameInFlight,
			Help: "Requests being served right now.",
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameRefusalsTotal,
			Help: "Requests the gateway refused itself, by reason and by the kind of credential refused (none for request hygiene and upstream failures; session, access_jwt, refresh_jwt, access_token, guest_token, fab_api_key).",
		}, []string{"reason", "credential"}),
		upDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameUpstreamDuration,
			Help:    "Superset's latency as seen by the gateway (request sent to response headers), by node and route class.",
			Buckets: requestBuckets,
		}, []string{"node", "class"}),
		upErr: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameUpstreamErrorsTotal,
			Help: "Upstream round trips that got no response (connect failure, timeout, reset), by node and route class.",
		}, []string{"node", "class"}),
		upHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameUpstreamHealthy,
			Help: "1 if the upstream node is in rotation, 0 if health checks or passive ejection took it out.",
		}, []string{"node"}),
		storeDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameStoreOperationDuration,
			Help:    "Store operation latency, by operation.",
			Buckets: storeBuckets,
		}, []string{"op"}),
		storeErr: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameStoreOperationErrorsTotal,
			Help: "Store operations that failed (not-found is not a failure), by operation.",
		}, []string{"op"}),
		durable: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameStoreDurable,
			Help: "1 if an acknowledged store write survives a crash of the backend (bolt, or Redis with appendfsync always), 0 otherwise.",
		}, []string{"backend"}),
		build: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameBuildInfo,
			Help: "Always 1; the labels say which build is running.",
		}, []string{"version", "revision", "goversion"}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight, m.refusals, m.upDur, m.upErr,
		m.upHealthy, m.storeDur, m.storeErr, m.durable, m.build)
	m.superset = newSupersetVecs(reg)

	m.byClass = newChildCache(maxClasses, overflowLabel, func(class string) *classSeries {
		s := &classSeries{duration: m.duration.WithLabelValues(class)}
		for i, code := range statusClasses {
			s.byStatus[i] = m.requests.WithLabelValues(class, code)
		}
		return s
	})
	m.byReason = newChildCache(maxReasons, [2]string{overflowLabel, overflowLabel}, func(k [2]string) prometheus.Counter {
		return m.refusals.WithLabelValues(k[0], k[1])
	})
	m.byUpstream = newChildCache(maxNodes*maxClasses, nodeClass{overflowLabel, overflowLabel}, func(k nodeClass) *upstreamSeries {
		return &upstreamSeries{
			duration: m.upDur.WithLabelValues(k.node, k.class),
			errors:   m.upErr.WithLabelValues(k.node, k.class),
		}
	})
	m.byOp = newChildCache(maxOps, overflowLabel, func(op string) *opSeries {
		return &opSeries{
			duration: m.storeDur.WithLabelValues(op),
			errors:   m.storeErr.WithLabelValues(op),
		}
	})

	version, revision := "(devel)", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	m.SetBuildInfo(version, revision)
	return m
}

// InFlight adds delta (+1 when a request starts, -1 when it ends) to the
// in-flight gauge.
func (m *Metrics) InFlight(delta int) { m.inFlight.Add(float64(delta)) }

// ObserveRequest counts one answered request and its duration. class is the
// route class from the gateway's route table (never the raw path); status is
// the status written to the client, 499 when the client went away.
func (m *Metrics) ObserveRequest(class string, status int, d time.Duration) {
	s := m.byClass.get(class)
	s.byStatus[statusIndex(status)].Inc()
	s.duration.Observe(d.Seconds())
}

// ObserveRefusal counts a request the gateway refused itself. reason is a
// fixed identifier from the deciding package (policy.Decision.Reason), the
// same string the audit event and the tests use.
func (m *Metrics) ObserveRefusal(reason string) { m.byReason.get([2]string{reason, "none"}).Inc() }

// ObserveCredentialRefusal counts a refusal of the request path (the
// gateway's refusal writer) by the kind of credential and the reason.
func (m *Metrics) ObserveCredentialRefusal(kind, reason string) {
	m.byReason.get([2]string{reason, kind}).Inc()
}

// ObserveUpstream records one round trip to an upstream node. status 0 means
// no response arrived (transport error): it is counted in the errors counter
// and kept out of the latency histogram, whose time-to-failure would mix
// connect timeouts into Superset's latency.
func (m *Metrics) ObserveUpstream(node, class string, status int, d time.Duration) {
	s := m.byUpstream.get(nodeClass{node, class})
	if status == 0 {
		s.errors.Inc()
		return
	}
	s.duration.Observe(d.Seconds())
}

// SetNodeHealthy publishes the health of an upstream node.
func (m *Metrics) SetNodeHealthy(node string, healthy bool) {
	m.nodesMu.Lock()
	defer m.nodesMu.Unlock()
	m.nodes[node] = true
	m.upHealthy.WithLabelValues(node).Set(boolFloat(healthy))
}

// RetainNodes drops the health series of every node not in nodes, so that
// a node removed by a reload does not keep reporting its last state (an
// alert on superset_gateway_upstream_healthy == 0 would fire forever).
func (m *Metrics) RetainNodes(nodes []string) {
	keep := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		keep[n] = true
	}
	m.nodesMu.Lock()
	defer m.nodesMu.Unlock()
	for n := range m.nodes {
		if !keep[n] {
			m.upHealthy.DeleteLabelValues(n)
			delete(m.nodes, n)
		}
	}
}

// ObserveStoreOp records one store operation. A store.ErrNotFound result is
// an expected answer ("no session"), so it counts as a success.
func (m *Metrics) ObserveStoreOp(op string, d time.Duration, err error) {
	s := m.byOp.get(op)
	s.duration.Observe(d.Seconds())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.errors.Inc()
	}
}

// SetStoreDurability publishes store.Durability.Durable for the backend in
// use. Any previously published backend is removed, so that a reload from
// bolt to Redis does not leave a stale series behind.
func (m *Metrics) SetStoreDurability(backend string, durable bool) {
	m.durable.Reset()
	m.durable.WithLabelValues(backend).Set(boolFloat(durable))
}

// SetBuildInfo replaces the build info series, for binaries whose version is
// stamped at link time rather than read from the module.
func (m *Metrics) SetBuildInfo(version, revision string) {
	m.build.Reset()
	m.build.WithLabelValues(version, revision, runtime.Version()).Set(1)
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// NewRegistry returns a registry holding the Go runtime and process
// collectors, the usual companions of the gateway's own metrics. It is a
// convenience for cmd; tests use a bare prometheus.NewRegistry().
func NewRegistry() *Registry {
	reg := &Registry{Registry: prometheus.NewRegistry()}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Handler serves the metrics gathered from g in the Prometheus text (or
// negotiated OpenMetrics) format. It is meant for the separate metrics
// listener, never for the proxied one: metrics reveal route classes and
// refusal counts. A collector that fails is reported in the response and the
// rest is still served, so one broken collector does not blind monitoring.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}
