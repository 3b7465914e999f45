package metrics_test

import (
	"github.com/superset-gateway/superset-gateway/metrics"
	"github.com/superset-gateway/superset-gateway/proxy"
	"github.com/superset-gateway/superset-gateway/proxy/upstream"
	"github.com/superset-gateway/superset-gateway/store/instrument"
)

// *Metrics is wired into these packages by cmd; the guards live in a test
// so that metrics itself imports nothing above it.
var (
	_ proxy.Observer      = (*metrics.Metrics)(nil)
	_ upstream.Observer   = (*metrics.Metrics)(nil)
	_ instrument.Observer = (*metrics.Metrics)(nil)
)
