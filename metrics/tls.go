package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// NameTLSCertExpiry is the expiry of the certificate the gateway serves.
const NameTLSCertExpiry = namespace + "_tls_certificate_expiry_timestamp_seconds"

// TLS publishes the served certificate's expiry. It is registered only when
// the gateway terminates TLS.
type TLS struct{ expiry prometheus.Gauge }

// NewTLS registers the TLS metrics with reg.
func NewTLS(reg prometheus.Registerer) *TLS {
	t := &TLS{expiry: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: NameTLSCertExpiry,
		Help: "Unix time at which the TLS certificate the gateway serves (tls.cert_file, reloaded when it changes) expires.",
	})}
	reg.MustRegister(t.expiry)
	return t
}

// SetCertExpiry records the expiry of the certificate just loaded.
func (t *TLS) SetCertExpiry(notAfter time.Time) { t.expiry.Set(float64(notAfter.Unix())) }
