package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/config"
	"github.com/superset-gateway/superset-gateway/gateway"
	"github.com/superset-gateway/superset-gateway/proxy"
)

// serve runs the gateway until ctx is done: config → gateway.New → the
// listener, with SIGHUP reloading. Configuration problems are usageErrors
// (exit 2); everything else, such as an unreachable Redis or a port in
// use, is a plain error (exit 1).
func serve(ctx context.Context, path string, env []string, stdout, stderr io.Writer) error {
	l, err := loadConfig(path, env)
	if err != nil {
		return err
	}
	cfg := l.Config
	log, stopLog, err := newLogger(cfg.Log.Level, stderr)
	if err != nil {
		return usageError{fmt.Errorf("config: log.level: %w", err)}
	}
	// Runs last: flushes the buffered records, shutdown's included.
	defer stopLog()
	for _, w := range l.Warnings {
		log.Warn(w)
	}
	version, revision := buildVersion()
	log.Info("starting", zap.String("version", version), zap.String("revision", revision),
		zap.String("listen", cfg.Listen), zap.String("public_url", cfg.PublicURL),
		zap.Strings("upstreams", cfg.Upstreams), zap.Bool("embedded_store", cfg.Store.RedisURL == ""))

	g, err := gateway.New(ctx, gateway.Options{Config: l, Logger: log, Stdout: stdout, Stderr: stderr,
		Version: version, Revision: revision})
	if err != nil {
		if errors.As(err, new(config.InvalidError)) {
			return usageError{err}
		}
		return err
	}
	defer g.Close()

	var certLoaded func(time.Time)
	if cfg.TLS.CertFile != "" {
		certLoaded = g.CertExpiryObserver()
	}
	srv, err := proxy.NewServer(proxy.ServerOptions{
		CertLoaded:        certLoaded,
		Addr:              cfg.Listen,
		Handler:           g.Handler(),
		CertFile:          cfg.TLS.CertFile,
		KeyFile:           cfg.TLS.KeyFile,
		RedirectAddr:      cfg.TLS.RedirectHTTPListen,
		RedirectTo:        cfg.PublicURL,
		ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
		ReadTimeout:       cfg.Limits.ReadTimeout,
		IdleTimeout:       cfg.Limits.IdleTimeout,
		MaxHeaderBytes:    cfg.Limits.MaxHeaderBytes,
		ShutdownTimeout:   cfg.Limits.ShutdownGrace,
		Logger:            log.Named("server"),
	})
	if err != nil {
		return err
	}

	if cfg.Metrics.Listen != "" {
		stopMetrics, err := serveMetrics(cfg.Metrics.Listen, g.MetricsHandler(), log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}

	// SIGHUP reloads. The loop has its own context so that it also ends
	// when Run fails (a port in use) while ctx is still live.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	loopCtx, endLoop := context.WithCancel(ctx)
	reloaded := make(chan struct{})
	go func() {
		defer close(reloaded)
		for {
			select {
			case <-loopCtx.Done():
				return
			case <-hup:
				next, err := loadConfig(path, env)
				if err == nil {
					err = g.Reload(ctx, next)
				}
				if err != nil {
					log.Error("reload failed; the running configuration stays", zap.Error(err))
					continue
				}
				log.Info("configuration reloaded")
			}
		}
	}()

	// Start-up records are out before the first request, not a flush later.
	_ = log.Sync()
	runErr := srv.Run(ctx)
	endLoop()
	<-reloaded
	if runErr != nil {
		return runErr
	}
	log.Info("stopped")
	return nil
}

// serveMetrics serves h at /metrics on its own listener and returns the
// function that stops it. Binding happens before it returns, so a port in
// use is reported at start.
func serveMetrics(addr string, h http.Handler, log *zap.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          zap.NewStdLog(log.Named("metrics")),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		log.Info("metrics listening", zap.String("addr", ln.Addr().String()))
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", zap.Error(err))
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}
