// Package bareproxy is the baseline of the bench: what any Go operator gets
// from the standard library, an httputil.ReverseProxy with a pooled
// transport and otherwise default settings (no buffer pool, default
// flushing, default error handling). The gateway is measured against it.
package bareproxy

import (
	"net/http"
	"net/http/httputil"
	"net/url"
)

// IdleConnsPerHost is how many idle upstream connections the transport
// keeps. http.DefaultTransport keeps 2 per host, which under load closes and
// redials on almost every request; a pooled transport keeps enough for the
// bench's highest concurrency.
const IdleConnsPerHost = 512

// New returns a reverse proxy to target.
func New(target *url.URL) http.Handler {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = IdleConnsPerHost
	tr.MaxIdleConnsPerHost = IdleConnsPerHost
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.SetXForwarded()
		},
		Transport: tr,
	}
}
