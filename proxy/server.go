package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// ServerOptions configures the listeners. Zero values select the documented
// defaults.
type ServerOptions struct {
	// Addr is the main listen address ("127.0.0.1:8080"); ignored when
	// Listener is set.
	Addr string
	// Listener, if set, is served instead of listening on Addr (tests,
	// socket activation). Run closes it.
	Listener net.Listener
	// Handler serves every request of the main listener. Required.
	Handler http.Handler

	// CertFile and KeyFile, both set, make the main listener TLS (1.2+).
	// The files are re-read when their modification time or size changes,
	// so renewed certificates apply to new connections without a restart.
	CertFile, KeyFile string
	// CertLoaded, when set, is called with the expiry (NotAfter) of the TLS
	// certificate each time it is loaded or reloaded, for monitoring.
	CertLoaded func(notAfter time.Time)

	// RedirectAddr, if set, is a plain HTTP listener that only redirects to
	// RedirectTo (308, path and query kept). Needs TLS.
	RedirectAddr string
	// RedirectListener, if set, is used instead of RedirectAddr.
	RedirectListener net.Listener
	// RedirectTo is the https base URL redirects go to (the public URL),
	// never the request's Host header, which the client controls.
	RedirectTo string

	// ReadHeaderTimeout bounds reading request headers (slowloris); 0 means
	// 10s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included; 0 means
	// none, so that slow but legitimate uploads finish (the body size is
	// bounded by the gateway instead).
	ReadTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections; 0 means 120s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers; larger requests
	// get 431 from net/http. 0 means 64 KiB.
	MaxHeaderBytes int
	// ShutdownTimeout is how long Run waits for in-flight requests after
	// its context is done before closing connections; 0 means 30s.
	ShutdownTimeout time.Duration

	// Logger receives listener events and net/http's errors; nil means
	// zap.NewNop().
	Logger *zap.Logger
}

// Server runs the gateway's listeners. There is deliberately no write
// timeout: Superset's long polling and streamed answers may legitimately
// run for minutes, and a per-connection write deadline would cut them.
// Upstream slowness is bounded by the upstream pool's timeouts instead.
type Server struct {
	opts     ServerOptions
	log      *zap.Logger
	certs    *certReloader
	main     *http.Server
	redirect *http.Server
}

// NewServer validates opts and, for TLS, loads the certificate once so that
// a broken pair fails at start rather than at the first handshake.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.Handler == nil {
		return nil, errors.New("proxy: ServerOptions.Handler is required")
	}
	if opts.Addr == "" && opts.Listener == nil {
		return nil, errors.New("proxy: ServerOptions.Addr is required")
	}
	if (opts.CertFile == "") != (opts.KeyFile == "") {
		return nil, errors.New("proxy: tls needs both cert_file and key_file")
	}
	s := &Server{opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	errLog := zap.NewStdLog(s.log.Named("http"))
	s.main = &http.Server{
		// framingHandler and ConnContext pair with the framing listener
		// (framing.go) that Run puts under every HTTP/1 connection.
		Handler:           framingHandler{next: opts.Handler},
		ConnContext:       framingConnContext,
		ReadHeaderTimeout: orDefault(opts.ReadHeaderTimeout, 10*time.Second),
		ReadTimeout:       opts.ReadTimeout,
		WriteTimeout:      0, // see the type's doc
		IdleTimeout:       orDefault(opts.IdleTimeout, 120*time.Second),
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ErrorLog:          errLog,
		// "OPTIONS *" goes to the handler like every request, so that the
		// framing verdicts stay aligned with the requests served.
		DisableGeneralOptionsHandler: true,
	}
	if s.main.MaxHeaderBytes <= 0 {
		s.main.MaxHeaderBytes = 64 << 10
	}
	if opts.CertFile != "" {
		s.certs = &certReloader{certFile: opts.CertFile, keyFile: opts.KeyFile, log: s.log, loaded: opts.CertLoaded}
		if _, err := s.certs.load(); err != nil {
			return nil, err
		}
		s.main.TLSConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: s.certs.GetCertificate,
			// Run terminates TLS in its own listener (framing.go), so
			// ALPN is set here rather than by ServeTLS; net/http's Serve
			// then serves HTTP/2 on the connections that chose h2.
			NextProtos: []string{"h2", "http/1.1"},
		}
	}
	if opts.RedirectAddr != "" || opts.RedirectListener != nil {
		if s.certs == nil {
			return nil, errors.New("proxy: an https redirect listener needs tls")
		}
		u, err := url.Parse(opts.RedirectTo)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("proxy: redirect target %q must be an https URL", opts.RedirectTo)
		}
		base := "https://" + u.Host
		s.redirect = &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Connection", "close")
				http.Redirect(w, r, base+r.URL.RequestURI(), http.StatusPermanentRedirect)
			}),
			ReadHeaderTimeout: s.main.ReadHeaderTimeout,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      10 * time.Second,
			IdleTimeout:       s.main.IdleTimeout,
			MaxHeaderBytes:    s.main.MaxHeaderBytes,
			ErrorLog:          errLog,
		}
	}
	return s, nil
}

func orDefault(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}

// Run listens and serves until ctx is done, then shuts down gracefully:
// listeners close at once, in-flight requests get ShutdownTimeout to
// finish, and what is left is closed. It returns nil after a clean
// shutdown, or the first listener error.
func (s *Server) Run(ctx context.Context) error {
	ln := s.opts.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.opts.Addr); err != nil {
			return fmt.Errorf("proxy: listen %s: %w", s.opts.Addr, err)
		}
	}
	var rln net.Listener
	if s.redirect != nil {
		rln = s.opts.RedirectListener
		if rln == nil {
			var err error
			if rln, err = net.Listen("tcp", s.opts.RedirectAddr); err != nil {
				ln.Close()
				return fmt.Errorf("proxy: listen %s: %w", s.opts.RedirectAddr, err)
			}
		}
	}

	errs := make(chan error, 2)
	var wg sync.WaitGroup
	serve := func(srv *http.Server, l net.Listener, tlsOn bool) {
		defer wg.Done()
		s.log.Info("listening", zap.String("addr", l.Addr().String()), zap.Bool("tls", tlsOn))
		// TLS, where configured, is the listener's (see below).
		err := srv.Serve(l)
		if !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("proxy: serve %s: %w", l.Addr(), err)
		}
	}
	// Every HTTP/1 connection's framing is followed, so that what
	// net/http would silently reframe is refused (framing.go); under TLS
	// the listener terminates TLS itself to see the plaintext.
	var mainLn net.Listener = framingListener{ln}
	if s.certs != nil {
		mainLn = newTLSFramingListener(ln, s.main.TLSConfig, s.main.ReadHeaderTimeout, s.log)
	}
	wg.Add(1)
	go serve(s.main, mainLn, s.certs != nil)
	if rln != nil {
		wg.Add(1)
		go serve(s.redirect, rln, false)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	s.log.Info("shutting down", zap.Duration("drain", orDefault(s.opts.ShutdownTimeout, 30*time.Second)))
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), orDefault(s.opts.ShutdownTimeout, 30*time.Second))
	defer cancel()
	servers := []*http.Server{s.main}
	if s.redirect != nil {
		servers = append(servers, s.redirect)
	}
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil {
			// Drain deadline passed: cut the stragglers.
			_ = srv.Close()
			if runErr == nil {
				runErr = fmt.Errorf("proxy: shutdown: %w", err)
			}
		}
	}
	wg.Wait()
	return runErr
}

// certReloader serves the certificate from CertFile/KeyFile and reloads it
// when either file's modification time or size changes.
type certReloader struct {
	certFile, keyFile string
	log               *zap.Logger
	loaded            func(notAfter time.Time) // may be nil

	mu    sync.Mutex
	cert  *tls.Certificate
	stamp [2]fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

// load reads the pair if the files changed since the last successful load.
func (c *certReloader) load() (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs, err1 := stampOf(c.certFile)
	ks, err2 := stampOf(c.keyFile)
	if err := errors.Join(err1, err2); err != nil {
		if c.cert != nil {
			return c.cert, nil
		}
		return nil, fmt.Errorf("proxy: tls certificate: %w", err)
	}
	stamp := [2]fileStamp{cs, ks}
	if c.cert != nil && stamp == c.stamp {
		return c.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		if c.cert != nil {
			// Probably caught between writing the two files: keep the
			// old pair and try again on the next handshake.
			c.log.Warn("tls certificate reload failed; keeping the previous one", zap.Error(err))
			return c.cert, nil
		}
		return nil, fmt.Errorf("proxy: tls certificate: %w", err)
	}
	if c.cert != nil {
		c.log.Info("tls certificate reloaded", zap.String("cert_file", c.certFile))
	}
	c.cert, c.stamp = &cert, stamp
	if c.loaded != nil && cert.Leaf != nil {
		c.loaded(cert.Leaf.NotAfter)
	}
	return c.cert, nil
}

// GetCertificate is the tls.Config hook.
func (c *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.load()
}
