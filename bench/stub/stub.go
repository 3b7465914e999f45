// Package stub is the upstream the bench proxies to: a stand-in for Superset
// that answers instantly with fixed bodies, so that what the bench measures
// is the proxy in front of it. It counts accepted connections, which shows
// whether a proxy reuses its upstream connections.
package stub

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/flaskcookie"
)

// Paths served by the stub. They look like Superset's so that the gateway
// classifies them as an API call and a static asset.
const (
	JSONPath   = "/api/v1/chart/1"
	StaticPath = "/static/assets/bench.js"
	// LargeJSONPath is an API answer of StaticSize: what a credential
	// limited to the API (a scoped access token never opens /static/)
	// fetches in place of StaticPath to move as many bytes.
	LargeJSONPath = "/api/v1/dashboard/1/charts"
	HealthPath    = "/health"
	// LoginPath signs in like Superset's form login: POST sets a Flask
	// session cookie whose _user_id is BenchUserID.
	LoginPath = "/login/"
)

// BenchUserID is the Superset user id LoginPath signs in.
const BenchUserID = "1"

// Sizes of the two bodies.
const (
	JSONSize   = 2 << 10
	StaticSize = 20 << 10
)

// Server is a running stub. Its zero value is not usable; use Start.
type Server struct {
	URL string // http://127.0.0.1:port
	// SecretKey is the stub's Superset SECRET_KEY, random per Start: the
	// gateway needs it to read the identity in the session cookie.
	SecretKey string
	srv       *http.Server
	accepted  atomic.Int64
}

// Start listens on a free loopback port and serves until Close.
func Start() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("stub: listen: %w", err)
	}
	key := make([]byte, 48)
	_, _ = rand.Read(key)
	s := &Server{URL: "http://" + ln.Addr().String(), SecretKey: hex.EncodeToString(key)}
	s.srv = &http.Server{
		Handler:           Handler(s.SecretKey),
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
// API answer, LargeJSONPath with a 20 KB one, StaticPath with a 20 KB
// script, HealthPath with "OK", a POST to LoginPath with a 302 that sets a
// Flask session cookie for BenchUserID signed with secretKey, and 404
// otherwise. The bodies are built once.
//
// A request whose Authorization is a Bearer credential not shaped like a
// JWT (three non-empty dot-separated parts) gets 401, whatever the path:
// a gateway access token ("Bearer sgw_…") that a proxy passed on instead
// of replacing it with a JWT then counts as an error in the bench, never
// as a 200. Signatures are not checked.
func Handler(secretKey string) http.Handler {
	jsonBody := jsonDoc(JSONSize)
	largeJSON := jsonDoc(StaticSize)
	static := staticDoc(StaticSize)
	jsonLen := strconv.Itoa(len(jsonBody))
	largeJSONLen := strconv.Itoa(len(largeJSON))
	staticLen := strconv.Itoa(len(static))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if !bearerIsJWT(r.Header.Get("Authorization")) {
			h.Set("Content-Type", "application/json")
			h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"msg":"Bearer credential is not a JWT"}` + "\n"))
			return
		}
		switch r.URL.Path {
		case JSONPath:
			h.Set("Content-Type", "application/json")
			h.Set("Content-Length", jsonLen)
			_, _ = w.Write(jsonBody)
		case LargeJSONPath:
			h.Set("Content-Type", "application/json")
			h.Set("Content-Length", largeJSONLen)
			_, _ = w.Write(largeJSON)
		case StaticPath:
			h.Set("Content-Type", "text/javascript; charset=utf-8")
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
			h.Set("Content-Length", staticLen)
			_, _ = w.Write(static)
		case HealthPath:
			h.Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("OK"))
		case LoginPath:
			if r.Method != http.MethodPost {
				http.Error(w, "POST only", http.StatusMethodNotAllowed)
				return
			}
			v, err := flaskcookie.Encode(flaskcookie.Session{"_user_id": BenchUserID, "_fresh": true}, secretKey, time.Now())
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: "session", Value: v, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
			http.Redirect(w, r, "/superset/welcome/", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	})
}

// bearerIsJWT reports whether an Authorization value is either not a
// Bearer credential or one shaped like a JWT.
func bearerIsJWT(auth string) bool {
	if len(auth) < 7 || !strings.EqualFold(auth[:7], "Bearer ") {
		return true
	}
	parts := strings.Split(auth[7:], ".")
	return len(parts) == 3 && parts[0] != "" && parts[1] != "" && parts[2] != ""
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
