package metrics_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkObserveRequest is the per-request cost the proxy pays: in-flight
// up and down, one request counted with its duration, one upstream latency.
func BenchmarkObserveRequest(b *testing.B) {
	m, _ := newMetrics(b)
	classes := []string{"api", "static", "chart_data", "login", "embedded"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c := classes[i%len(classes)]
			m.InFlight(1)
			m.ObserveUpstream("http://127.0.0.1:8088", c, 200, 3*time.Millisecond)
			m.ObserveRequest(c, 200+i%3*100, 4*time.Millisecond)
			m.InFlight(-1)
			i++
		}
	})
}

// BenchmarkWithLabelValues is the naive alternative ObserveRequest avoids,
// kept for comparison.
func BenchmarkWithLabelValues(b *testing.B) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"class", "code"})
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "x_seconds", Help: "x"}, []string{"class"})
	reg.MustRegister(c, h)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.WithLabelValues("api", "2xx").Inc()
			h.WithLabelValues("api").Observe(0.004)
		}
	})
}
