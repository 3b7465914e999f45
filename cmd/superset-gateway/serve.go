package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/admin"
	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/config"
	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/guesttoken"
	"github.com/superset-gateway/superset-gateway/jwtguard"
	"github.com/superset-gateway/superset-gateway/metrics"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/proxy"
	"github.com/superset-gateway/superset-gateway/proxy/upstream"
	"github.com/superset-gateway/superset-gateway/session"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/superset"
	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

// process holds what lives as long as the process: a reload never replaces
// it (a changed store or listener needs a restart).
type process struct {
	log        *zap.Logger
	metrics    *metrics.Metrics
	store      store.Store
	durability store.Durability
	// freshStore is true when this start found no generation marker: the
	// store is new or was wiped, so revocations it held are gone.
	freshStore bool
	generation string
	audit      *audit.Logger
	// vault owns the gateway sessions. It outlives reloads: its keys,
	// timeouts and cache are fixed at start. nil in check-config's dry run.
	vault *session.Vault
	// pool is the current state's upstream pool, for the calls the gateway
	// makes to Superset on its own account (the vault's WhoAmI).
	pool atomic.Pointer[upstream.Pool]
	// service calls Superset's API as superset.service_user_id.
	service *serviceIdentity
	// revoker holds guest-token revocations; guard checks guest tokens
	// (nil when no guest secret is configured: embedding is not in use).
	revoker *guesttoken.Revoker
	guard   *guesttoken.Guard
	// epochs, jwtGuard and stampHook are the invalidation epochs (A2);
	// admin is the admin API. All nil in check-config's dry run.
	epochs    *epoch.Epochs
	jwtGuard  *jwtguard.Guard
	stampHook *epoch.Hook
	admin     *admin.Handler
	adminPage http.Handler
	// tokens, tokenGuard and tokenPage are the scoped access tokens.
	tokens     *accesstoken.Manager
	tokenGuard *accesstoken.Guard
	tokenPage  http.Handler
}

// state is what a reload rebuilds from the config and swaps in atomically.
// It is immutable once built.
type state struct {
	cfg     *config.Config
	pool    *upstream.Pool
	gateway *proxy.Gateway
	// stop ends the pool's health checks once the state is replaced.
	stop context.CancelFunc
}

// serve runs the gateway until ctx is done. Configuration problems are
// usageErrors (exit 2); everything else, such as an unreachable Redis or a
// port in use, is a plain error (exit 1).
func serve(ctx context.Context, path string, env []string, stdout, stderr io.Writer) error {
	l, err := loadConfig(path, env)
	if err != nil {
		return err
	}
	cfg := l.cfg
	log, stopLog, err := newLogger(cfg.Log.Level, stderr)
	if err != nil {
		return usageError{fmt.Errorf("config: log.level: %w", err)}
	}
	// Runs last: flushes the buffered records, shutdown's included.
	defer stopLog()
	for _, w := range l.warnings {
		log.Warn(w)
	}
	version, revision := buildVersion()
	log.Info("starting", zap.String("version", version), zap.String("revision", revision),
		zap.String("listen", cfg.Listen), zap.String("public_url", cfg.PublicURL),
		zap.Strings("upstreams", cfg.Upstreams), zap.Bool("embedded_store", cfg.Store.RedisURL == ""))

	if l.cookieKeys == nil {
		keys, p, created, err := ensureCookieKeys(cfg.Store.DataDir, l.judge)
		if err != nil {
			return err
		}
		l.cookieKeys = keys
		for _, w := range l.judge.warnings[len(l.warnings):] {
			log.Warn(w)
		}
		if cfg.Store.RedisURL != "" {
			// Redis means several replicas; keys generated per data_dir
			// differ between them, and a cookie from one is refused by
			// the others.
			log.Warn("store.redis_url is set but session.cookie_keys_file is empty: every replica needs the same keys; point session.cookie_keys_file at one shared file",
				zap.String("generated_path", p))
		}
		if created {
			log.Info("cookie keys generated; share this file with every replica", zap.String("path", p))
		} else {
			log.Info("cookie keys loaded", zap.String("path", p), zap.Int("generations", len(keys)))
		}
	}

	reg := metrics.NewRegistry()
	m := metrics.New(reg)
	m.SetBuildInfo(version, revision)

	st, err := openStore(ctx, cfg, m, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Warn("closing the store", zap.Error(err))
		}
	}()
	p := &process{log: log, metrics: m, store: st}
	if err := p.initStore(ctx); err != nil {
		return err
	}

	auditOut, closeAudit, err := openAuditSink(cfg.Audit.Output, stdout, stderr)
	if err != nil {
		return err
	}
	defer closeAudit()
	p.audit = audit.New(audit.Options{Writer: auditOut, Recent: st, Logger: log.Named("audit")})
	if p.freshStore {
		// openEpochs stamps the global epoch for it; this event and
		// /-/readyz make the wipe visible too.
		if err := p.audit.Emit(ctx, audit.Event{
			Event: "store.generation_created", Actor: "gateway", Subject: "store:" + p.durability.Backend,
			Outcome: audit.OutcomeSuccess, Reason: "fresh_store",
		}); err != nil {
			log.Warn("audit event not fully recorded", zap.Error(err))
		}
	}

	p.service = &serviceIdentity{key: cfg.Superset.JWTSecret, userID: cfg.Superset.ServiceUserID, now: time.Now}
	if err := p.openEpochs(ctx, cfg, reg); err != nil {
		return err
	}
	if err := p.openGuestTokens(ctx, cfg, reg); err != nil {
		return err
	}
	if err := p.openAccessTokens(ctx, cfg, l.cookieKeys, reg); err != nil {
		return err
	}
	if err := p.openVault(ctx, cfg, l.cookieKeys, reg); err != nil {
		return err
	}
	if p.admin, err = p.buildAdmin(cfg, adminTokensOf(l.adminTokens)); err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	if p.adminPage, err = p.buildAdminPage(); err != nil {
		return fmt.Errorf("admin page: %w", err)
	}

	cur, err := p.buildState(cfg)
	if err != nil {
		return usageError{err}
	}
	cur.start(ctx)
	p.pool.Store(cur.pool)
	defer func() { cur.stop() }()
	handler := proxy.NewReloadable(cur.gateway)

	srv, err := proxy.NewServer(proxy.ServerOptions{
		Addr:              cfg.Listen,
		Handler:           handler,
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
		stopMetrics, err := serveMetrics(cfg.Metrics.Listen, metrics.Handler(reg), log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}

	// SIGHUP reloads. The loop ends with ctx; the server then drains.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// The loop has its own context so that it also ends when Run fails
	// (a port in use) while ctx is still live.
	loopCtx, endLoop := context.WithCancel(ctx)
	reloaded := make(chan struct{})
	go func() {
		defer close(reloaded)
		for {
			select {
			case <-loopCtx.Done():
				return
			case <-hup:
				next, err := p.reload(ctx, path, env, cur.cfg)
				if err != nil {
					log.Error("reload failed; the running configuration stays", zap.Error(err))
					continue
				}
				handler.Swap(next.gateway)
				p.pool.Store(next.pool)
				prev := cur
				cur = next
				prev.stop()
				var nodes []string
				for _, n := range next.pool.Nodes() {
					nodes = append(nodes, n.URL)
				}
				p.metrics.RetainNodes(nodes)
				log.Info("configuration reloaded")
			}
		}
	}()

	// Start-up records are out before the first request, not a flush later.
	_ = log.Sync()
	runErr := srv.Run(ctx)
	endLoop()
	<-reloaded // cur is no longer written once the loop is done
	if runErr != nil {
		return runErr
	}
	log.Info("stopped")
	return nil
}

// initStore reads the generation marker and the backend's durability.
func (p *process) initStore(ctx context.Context) error {
	fresh, gen, err := store.EnsureGeneration(ctx, p.store, time.Now())
	if err != nil {
		// Without the marker the gateway cannot tell a wiped store from a
		// healthy one, so it must not serve.
		return fmt.Errorf("store: %w", err)
	}
	p.freshStore, p.generation = fresh, gen
	if fresh {
		p.log.Warn("store has no generation marker: it is new or was wiped; revocations it may have held are gone",
			zap.String("generation", gen))
	} else {
		p.log.Info("store generation", zap.String("generation", gen))
	}
	d, err := p.store.Durability(ctx)
	if err != nil {
		return fmt.Errorf("store: durability: %w", err)
	}
	p.durability = d
	p.metrics.SetStoreDurability(d.Backend, d.Durable)
	fields := []zap.Field{zap.String("backend", d.Backend), zap.Bool("appendonly", d.AppendOnly),
		zap.String("appendfsync", d.AppendFsync), zap.Bool("durable", d.Durable), zap.String("detail", d.Detail)}
	if d.Durable {
		p.log.Info("store durability", fields...)
	} else {
		p.log.Warn("store is not durable: acknowledged revocations can be lost in a crash", fields...)
	}
	return nil
}

// reload loads the config again and builds a new state from it. Keys that
// need a restart are compared with the running config and only warned
// about.
func (p *process) reload(ctx context.Context, path string, env []string, running *config.Config) (*state, error) {
	l, err := loadConfig(path, env)
	if err != nil {
		return nil, err
	}
	for _, w := range l.warnings {
		p.log.Warn(w)
	}
	for _, k := range restartOnlyChanges(running, l.cfg) {
		p.log.Warn("changed key needs a restart; the running value stays", zap.String("key", k))
	}
	next, err := p.buildState(l.cfg)
	if err != nil {
		return nil, err
	}
	next.start(ctx)
	return next, nil
}

// restartOnlyChanges lists the keys that differ between a and b and that a
// reload cannot apply.
func restartOnlyChanges(a, b *config.Config) []string {
	var out []string
	for _, c := range []struct {
		key  string
		x, y string
	}{
		{"listen", a.Listen, b.Listen},
		{"tls.cert_file", a.TLS.CertFile, b.TLS.CertFile},
		{"tls.key_file", a.TLS.KeyFile, b.TLS.KeyFile},
		{"tls.redirect_http_listen", a.TLS.RedirectHTTPListen, b.TLS.RedirectHTTPListen},
		{"store.redis_url", a.Store.RedisURL, b.Store.RedisURL},
		{"store.data_dir", a.Store.DataDir, b.Store.DataDir},
		{"metrics.listen", a.Metrics.Listen, b.Metrics.Listen},
		{"audit.output", a.Audit.Output, b.Audit.Output},
		{"log.level", a.Log.Level, b.Log.Level},
		{"limits.read_header_timeout", a.Limits.ReadHeaderTimeout.String(), b.Limits.ReadHeaderTimeout.String()},
		{"limits.read_timeout", a.Limits.ReadTimeout.String(), b.Limits.ReadTimeout.String()},
		{"limits.idle_timeout", a.Limits.IdleTimeout.String(), b.Limits.IdleTimeout.String()},
		{"limits.max_header_bytes", fmt.Sprint(a.Limits.MaxHeaderBytes), fmt.Sprint(b.Limits.MaxHeaderBytes)},
		{"limits.shutdown_grace", a.Limits.ShutdownGrace.String(), b.Limits.ShutdownGrace.String()},
		// The session vault, the token guards and the admin API are built
		// once at start.
		{"session.cookie_keys_file", a.Session.CookieKeysFile, b.Session.CookieKeysFile},
		{"session.cookie_samesite", a.Session.CookieSameSite, b.Session.CookieSameSite},
		{"session.idle_timeout", a.Session.IdleTimeout.String(), b.Session.IdleTimeout.String()},
		{"session.absolute_timeout", a.Session.AbsoluteTimeout.String(), b.Session.AbsoluteTimeout.String()},
		{"session.anonymous_idle_timeout", a.Session.AnonymousIdleTimeout.String(), b.Session.AnonymousIdleTimeout.String()},
		{"session.cache_ttl", a.Session.CacheTTL.String(), b.Session.CacheTTL.String()},
		{"superset.secret_key_file", a.Superset.SecretKeyFile, b.Superset.SecretKeyFile},
		{"superset.jwt_secret_file", a.Superset.JWTSecretFile, b.Superset.JWTSecretFile},
		{"superset.guest_token_secret_file", a.Superset.GuestTokenSecretFile, b.Superset.GuestTokenSecretFile},
		{"superset.guest_token_audience", a.Superset.GuestTokenAudience, b.Superset.GuestTokenAudience},
		{"superset.service_user_id", fmt.Sprint(a.Superset.ServiceUserID), fmt.Sprint(b.Superset.ServiceUserID)},
		{"admin.tokens_file", a.Admin.TokensFile, b.Admin.TokensFile},
		{"admin.roles", strings.Join(a.Admin.Roles, ","), strings.Join(b.Admin.Roles, ",")},
		{"access_tokens.enabled", fmt.Sprint(a.AccessTokens.Enabled), fmt.Sprint(b.AccessTokens.Enabled)},
		{"access_tokens.max_ttl", a.AccessTokens.MaxTTL.String(), b.AccessTokens.MaxTTL.String()},
		{"access_tokens.ttl_choices", fmt.Sprint(a.AccessTokens.TTLChoices), fmt.Sprint(b.AccessTokens.TTLChoices)},
		{"access_tokens.max_per_user", fmt.Sprint(a.AccessTokens.MaxPerUser), fmt.Sprint(b.AccessTokens.MaxPerUser)},
		{"access_tokens.max_cidrs", fmt.Sprint(a.AccessTokens.MaxCIDRs), fmt.Sprint(b.AccessTokens.MaxCIDRs)},
		{"access_tokens.pepper_file", a.AccessTokens.PepperFile, b.AccessTokens.PepperFile},
		{"reconcile_interval", a.ReconcileInterval.String(), b.ReconcileInterval.String()},
	} {
		if c.x != c.y {
			out = append(out, c.key)
		}
	}
	return out
}

// buildState turns cfg into a pool and a gateway without starting anything,
// so a failed build leaves nothing running and check-config can use it as a
// dry run. Call start on the result before serving it.
func (p *process) buildState(cfg *config.Config) (*state, error) {
	trusted := make([]netip.Prefix, 0, len(cfg.TrustedProxies))
	for i, s := range cfg.TrustedProxies {
		pfx, err := config.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("config: trusted_proxies[%d]: %w", i, err)
		}
		trusted = append(trusted, pfx)
	}
	var sel upstream.Selector = &upstream.RoundRobin{}
	if cfg.Balance == "least_conn" {
		sel = &upstream.LeastConn{}
	}
	ejectAfter := cfg.Passive.MaxFails
	if ejectAfter == 0 {
		// The pool reads 0 as "default"; config's 0 means off.
		ejectAfter = math.MaxInt32
	}
	pool, err := upstream.New(upstream.Options{
		Nodes:                 cfg.Upstreams,
		Selector:              sel,
		ResponseHeaderTimeout: cfg.Limits.UpstreamTimeout,
		HealthPath:            cfg.HealthCheck.Path,
		HealthInterval:        cfg.HealthCheck.Interval,
		HealthTimeout:         cfg.HealthCheck.Timeout,
		UnhealthyAfter:        cfg.HealthCheck.UnhealthyThreshold,
		EjectAfter:            ejectAfter,
		EjectCooldown:         cfg.Passive.Cooldown,
		Observer:              p.metrics,
		Logger:                p.log.Named("upstream"),
	})
	if err != nil {
		return nil, fmt.Errorf("config: upstreams: %w", err)
	}
	overrides := make([]policy.HeaderOverride, 0, len(cfg.Headers.Overrides))
	for _, o := range cfg.Headers.Overrides {
		overrides = append(overrides, policy.HeaderOverride{Prefix: o.Prefix, Set: o.Set, Remove: o.Remove})
	}
	headers, err := policy.NewHeaderPolicy(policy.HeaderOptions{
		PublicURL:      cfg.PublicURL,
		FrameAncestors: strings.Fields(cfg.Headers.FrameAncestors),
		Overrides:      overrides,
	})
	if err != nil {
		return nil, fmt.Errorf("config: headers: %w", err)
	}
	opts := proxy.Options{
		Upstream:       pool,
		Logger:         p.log.Named("proxy"),
		Observer:       p.metrics,
		TrustedProxies: trusted,
		TrustedHeaders: cfg.TrustedHeaders,
		Classify:       superset.Classify,
		Readiness:      p.readiness(pool),
		Headers:        headers,
		MaxBodyBytes:   cfg.Limits.MaxBodyBytes,
	}
	// Order on the way in: the Superset API JWT guard, the guest-token
	// guard and the access-token guard (traffic they mark never creates a
	// session, and client cookies never reach the session layer on token
	// requests), the session vault, the capture of user-admin bodies for
	// automatic stamping, and last the access token's upstream CSRF cookie
	// (after the vault, which replaces the Cookie header).
	// On the way back: stamping first (the vault reads SelfStamped), the
	// guest- and access-token hooks, then the vault absorbs Set-Cookie.
	var hooks []func(*http.Response) error
	if p.jwtGuard != nil {
		opts.Middleware = append(opts.Middleware, p.jwtGuard.Middleware)
	}
	if p.stampHook != nil {
		hooks = append(hooks, p.stampHook.StampResponse)
	}
	if p.guard != nil {
		opts.Middleware = append(opts.Middleware, p.guard.Middleware)
		hooks = append(hooks, p.guard.ModifyResponse)
	}
	if p.tokenGuard != nil {
		opts.Middleware = append(opts.Middleware, p.tokenGuard.Middleware)
		hooks = append(hooks, p.tokenGuard.ModifyResponse)
	} else {
		// No guard (access_tokens.enabled: false): an access token must
		// still never reach Superset.
		opts.Middleware = append(opts.Middleware, refuseAccessTokens)
	}
	if p.vault != nil {
		internal := http.NewServeMux()
		internal.Handle("/-/sessions", p.vault.SessionsPage())
		internal.Handle("/-/sessions/", p.vault.SessionsPage())
		if p.admin != nil {
			internal.Handle(admin.APIPrefix, p.admin)
		}
		if p.adminPage != nil {
			// APIPrefix is the longer pattern, so the API keeps its routes.
			internal.Handle("/-/admin", p.adminPage)
			internal.Handle(admin.PagePath, p.adminPage)
		}
		if p.tokenPage != nil {
			internal.Handle("/-/tokens", p.tokenPage)
			internal.Handle("/-/tokens/", p.tokenPage)
		}
		opts.Internal = internal
		opts.Middleware = append(opts.Middleware, p.vault.Middleware)
		hooks = append(hooks, p.vault.ModifyResponse)
	}
	if p.stampHook != nil {
		opts.Middleware = append(opts.Middleware, p.stampHook.Capture)
	}
	if p.tokenGuard != nil {
		opts.Middleware = append(opts.Middleware, p.tokenGuard.UpstreamCookie)
	}
	opts.ModifyResponse = chainResponseHooks(hooks)
	gw, err := proxy.New(opts)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	return &state{cfg: cfg, pool: pool, gateway: gw, stop: pool.CloseIdleConnections}, nil
}

// start runs the state's health checks until stop is called. They outlive
// the ctx of a reload: only the state's replacement or the process's end
// stops them.
func (s *state) start(ctx context.Context) {
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.pool.Start(hctx)
	closeIdle := s.stop
	s.stop = func() {
		cancel()
		closeIdle()
	}
}

// readyDetails is the JSON body of /-/readyz. It is served on the public
// listener, so it carries counts and settings, never node addresses, the
// store URL or error texts.
type readyDetails struct {
	Store     storeReady    `json:"store"`
	Upstreams upstreamReady `json:"upstreams"`
}

type storeReady struct {
	OK          bool   `json:"ok"`
	Backend     string `json:"backend"`
	AppendOnly  bool   `json:"appendonly"`
	AppendFsync string `json:"appendfsync"`
	Durable     bool   `json:"durable"`
	// Fresh reports that this process found the store new or wiped.
	Fresh bool `json:"fresh_generation"`
}

type upstreamReady struct {
	Healthy int `json:"healthy"`
	Total   int `json:"total"`
}

// readyTimeout bounds the store ping of one readiness probe.
const readyTimeout = 2 * time.Second

// readiness answers /-/readyz: ready when the store answers a ping and at
// least one upstream node takes traffic.
func (p *process) readiness(pool *upstream.Pool) func(context.Context) (bool, any) {
	return func(ctx context.Context) (bool, any) {
		pctx, cancel := context.WithTimeout(ctx, readyTimeout)
		defer cancel()
		storeErr := p.store.Ping(pctx)
		if storeErr != nil {
			p.log.Warn("readiness: store ping failed", zap.Error(storeErr))
		}
		d := readyDetails{
			Store: storeReady{
				OK:          storeErr == nil,
				Backend:     p.durability.Backend,
				AppendOnly:  p.durability.AppendOnly,
				AppendFsync: p.durability.AppendFsync,
				Durable:     p.durability.Durable,
				Fresh:       p.freshStore,
			},
			Upstreams: upstreamReady{Healthy: pool.Healthy(), Total: len(pool.Nodes())},
		}
		return d.Store.OK && d.Upstreams.Healthy > 0, d
	}
}

// openAuditSink maps audit.output to a writer: the process's stdout or
// stderr as injected into run, or a file opened by the audit package.
func openAuditSink(output string, stdout, stderr io.Writer) (io.Writer, func(), error) {
	switch output {
	case "", "stdout":
		return stdout, func() {}, nil
	case "stderr":
		return stderr, func() {}, nil
	}
	w, err := audit.OpenSink(output)
	if err != nil {
		return nil, nil, err
	}
	return w, func() { _ = w.Close() }, nil
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

// openVault builds the session vault and subscribes it to other replicas'
// invalidations. Its settings are fixed for the life of the process.
func (p *process) openVault(ctx context.Context, cfg *config.Config, keys []cookieKeyPair, reg prometheus.Registerer) error {
	pairs := make([]session.KeyPair, len(keys))
	for i, k := range keys {
		pairs[i] = session.KeyPair{Hash: k.Hash, Block: k.Block}
	}
	v, err := session.New(session.Options{
		Store:                p.store,
		Keys:                 pairs,
		Secure:               strings.HasPrefix(cfg.PublicURL, "https://"),
		SameSite:             sameSite(cfg.Session.CookieSameSite),
		SupersetSecretKey:    string(cfg.Superset.SecretKey),
		WhoAmI:               session.WhoAmIVia(currentPool{&p.pool}, nil),
		IdleTimeout:          cfg.Session.IdleTimeout,
		AbsoluteTimeout:      cfg.Session.AbsoluteTimeout,
		AnonymousIdleTimeout: cfg.Session.AnonymousIdleTimeout,
		CacheTTL:             cfg.Session.CacheTTL,
		ClientIP:             proxy.ClientIP,
		RequestID:            proxy.RequestID,
		Epochs:               p.epochs,
		SelfStamped:          epoch.SelfStamped,
		// Guest-token and access-token traffic is stateless here: it
		// never creates a gateway session.
		IsGuest: func(r *http.Request) bool {
			if _, ok := guesttoken.FromContext(r.Context()); ok {
				return true
			}
			_, ok := accesstoken.FromContext(r.Context())
			return ok
		},
		Logger:   p.log.Named("session"),
		Observer: metrics.NewSessions(reg),
		Audit:    p.audit,
	})
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	if err := v.Start(ctx); err != nil {
		// Start keeps retrying the subscription in the background; until
		// it is live, the cache TTL alone bounds propagation.
		p.log.Warn("session invalidation subscription not live yet", zap.Error(err))
	}
	p.vault = v
	return nil
}

// currentPool sends a request through whichever upstream pool the running
// state has, so calls the gateway makes itself follow reloads.
type currentPool struct {
	p *atomic.Pointer[upstream.Pool]
}

func (c currentPool) RoundTrip(r *http.Request) (*http.Response, error) {
	pool := c.p.Load()
	if pool == nil {
		return nil, upstream.ErrNoHealthyUpstream
	}
	return pool.RoundTrip(r)
}

// chainResponseHooks runs hooks in order; the first error stops the chain
// (the proxy answers 502). nil for no hooks.
func chainResponseHooks(hooks []func(*http.Response) error) func(*http.Response) error {
	switch len(hooks) {
	case 0:
		return nil
	case 1:
		return hooks[0]
	}
	return func(r *http.Response) error {
		for _, h := range hooks {
			if err := h(r); err != nil {
				return err
			}
		}
		return nil
	}
}

// openGuestTokens builds the guest-token revocation store and, when a guest
// secret is configured, the guard that checks every guest token.
func (p *process) openGuestTokens(ctx context.Context, cfg *config.Config, reg prometheus.Registerer) error {
	obs := metrics.NewGuestTokens(reg)
	ro := guesttoken.RevokerOptions{
		Store:    p.store,
		CacheTTL: cfg.Session.CacheTTL,
		Logger:   p.log.Named("guesttoken"),
		Observer: obs,
	}
	if cfg.Superset.ServiceUserID > 0 {
		ro.Resolver = aliasResolver{api: newServiceClient(currentPool{&p.pool}), id: p.service}
	}
	rev, err := guesttoken.NewRevoker(ro)
	if err != nil {
		return fmt.Errorf("guesttoken: %w", err)
	}
	go func() {
		if err := rev.Run(ctx); err != nil && ctx.Err() == nil {
			p.log.Error("guest-token invalidation loop ended", zap.Error(err))
		}
	}()
	p.revoker = rev
	if len(cfg.Superset.GuestTokenSecret) == 0 {
		p.log.Warn("superset.guest_token_secret_file is not set: guest tokens pass to Superset unchecked and guest-token revocation is not enforced")
		return nil
	}
	g, err := guesttoken.New(guesttoken.Options{
		Verifier:     guestjwt.Verifier{Key: cfg.Superset.GuestTokenSecret, Audience: cfg.Superset.GuestTokenAudience},
		Revoker:      rev,
		MaxFormBytes: cfg.Limits.MaxBodyBytes,
		Logger:       p.log.Named("guesttoken"),
		Observer:     obs,
		Auditor:      guestAuditor{p.audit},
		Caller:       p.caller,
	})
	if err != nil {
		return fmt.Errorf("guesttoken: %w", err)
	}
	p.guard = g
	return nil
}

// caller names who made a request, for audit events: the gateway
// session's user when there is one.
func (p *process) caller(r *http.Request) guesttoken.Caller {
	c := guesttoken.Caller{RequestID: proxy.RequestID(r), IP: proxy.ClientIP(r).String()}
	if p.vault != nil {
		if s, err := p.vault.Current(r); err == nil && s.UserID != "" {
			c.Actor = "user:" + s.UserID
			if s.Username != "" {
				c.Actor += ":" + s.Username
			}
		}
	}
	return c
}

// guestAuditor adapts the audit logger to guesttoken.Auditor.
type guestAuditor struct{ a *audit.Logger }

func (g guestAuditor) Audit(ctx context.Context, ev guesttoken.AuditEvent) {
	_ = g.a.Emit(ctx, audit.Event{
		Event: ev.Event, Actor: ev.Actor, Subject: ev.Subject, RequestID: ev.RequestID,
		IP: ev.IP, Outcome: ev.Outcome, Reason: ev.Reason, Details: ev.Details,
	}) // best effort: an audit hiccup must not fail the request; Emit logs write failures
}

// sameSite maps session.cookie_samesite (validated by config) to the
// cookie attribute.
func sameSite(v string) http.SameSite {
	switch v {
	case "strict":
		return http.SameSiteStrictMode
	case "none":
		return http.SameSiteNoneMode
	}
	return http.SameSiteLaxMode
}
