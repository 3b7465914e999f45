// Package stub is the upstream the bench proxies to: a stand-in for Superset
// that answers instantly with fixed bodies, so that what the bench measures
// is the proxy in front of it. It counts accepted connections, which shows
// whether a proxy reuses its upstream connections.
package stub

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Paths served by the stub. They look like Superset's so that the gateway
// classifies them as an API call and a static asset.
const (
	JSONPath   = "/api/v1/chart/1"
	StaticPath = "/static/assets/bench.js"
	HealthPath = "/health"
)

// Sizes of the two bodies.
const (
	JSONSize   = 2 << 10
	StaticSize = 20 << 10
)

// Server is a running stub. Its zero value is not usable; use Start.
type Server struct {
	URL      string // http://127.0.0.1:port
	srv      *http.Server
	accepted atomic.Int64
}

// Start listens on a free loopback port and serves until Close.
func Start() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("stub: listen: %w", err)
	}
	s := &Server{URL: "http://" + ln.Addr().String()}
	s.srv = &http.Server{
		Handler:           Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.accepted.Add(1)
			}
		},
	}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Accepted returns the number of connections accepted so far.
func (s *Server) Accepted() int64 { return s.accepted.Load() }

// Close stops the server.
func (s *Server) Close(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// Handler answers JSONPath with a ~2 KB JSON document shaped like a Superset
// API answer, StaticPath with a 20 KB script, HealthPath with "OK", and 404
// otherwise. The bodies are built once.
func Handler() http.Handler {
	jsonBody := jsonDoc(JSONSize)
	static := staticDoc(StaticSize)
	jsonLen := strconv.Itoa(len(jsonBody))
	staticLen := strconv.Itoa(len(static))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.URL.Path {
		case JSONPath:
			h.Set("Content-Type", "application/json")
			h.Set("Content-Length", jsonLen)
			_, _ = w.Write(jsonBody)
		case StaticPath:
			h.Set("Content-Type", "text/javascript; charset=utf-8")
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
			h.Set("Content-Length", staticLen)
			_, _ = w.Write(static)
		case HealthPath:
			h.Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("OK"))
		default:
			http.NotFound(w, r)
		}
	})
}

// jsonDoc builds a chart-like JSON document of exactly size bytes.
func jsonDoc(size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"id":1,"result":{"slice_name":"Bench chart","viz_type":"table","params":"{}","owners":[`)
	for i := 0; b.Len() < size-200; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"first_name":"User","last_name":"Number%d"}`, i, i)
	}
	b.WriteString(`]},"pad":"`)
	for b.Len() < size-2 {
		b.WriteByte('x')
	}
	b.WriteString(`"}`)
	return b.Bytes()
}

// staticDoc builds a script of exactly size bytes.
func staticDoc(size int) []byte {
	line := []byte("console.log('superset-gateway bench static asset');\n")
	b := bytes.Repeat(line, size/len(line)+1)
	b = b[:size]
	b[size-1] = '\n'
	return b
}
