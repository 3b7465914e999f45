package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/admin"
	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/config"
	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/extensions/enforce"
	"github.com/superset-gateway/superset-gateway/guesttoken"
	"github.com/superset-gateway/superset-gateway/jwtguard"
	"github.com/superset-gateway/superset-gateway/metrics"
	"github.com/superset-gateway/superset-gateway/overview"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/principal"
	"github.com/superset-gateway/superset-gateway/proxy"
	"github.com/superset-gateway/superset-gateway/proxy/upstream"
	"github.com/superset-gateway/superset-gateway/ratelimit"
	"github.com/superset-gateway/superset-gateway/session"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/superset"
	"github.com/superset-gateway/superset-gateway/superset/client"
	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
	"github.com/superset-gateway/superset-gateway/tracing"
	"github.com/superset-gateway/superset-gateway/ui"
	"github.com/superset-gateway/superset-gateway/upstreamsecret"
)

// process holds what lives as long as the process: a reload never replaces
// it (a changed store or listener needs a restart).
type process struct {
	log     *zap.Logger
	metrics *metrics.Metrics
	store   store.Store
	// backup is the embedded store's hot copy for the admin route; nil
	// (not a nil *bolt.Store) with Redis.
	backup     admin.Backupper
	durability store.Durability
	// freshStore is true when this start found no generation marker: the
	// store is new or was wiped, so revocations it held are gone.
	freshStore bool
	// storeWiped: freshStore, and data_dir remembers an earlier generation.
	storeWiped bool
	generation string
	audit      *audit.Logger
	// vault owns the gateway sessions. It outlives reloads: its keys,
	// timeouts and cache are fixed at start. nil in check-config's dry run.
	vault *session.Vault
	// pool is the current state's upstream pool, for the calls the gateway
	// makes to Superset on its own account (the vault's WhoAmI).
	pool atomic.Pointer[upstream.Pool]
	// service calls Superset's API as superset.service_user_id.
	service *client.ServiceIdentity
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
	// fabKeys is superset.fab_api_keys (refuse or enforce); nil only in
	// check-config's dry run.
	fabKeys FABKeyStage
	// rateLimits is the rate-limit stage (nil: off); rlFallback its
	// Redis backend with the per-process fallback (nil: embedded store).
	rateLimits *ratelimit.Stage
	rlFallback *ratelimit.Fallback
	// version and revision of the build, for the status API.
	version, revision string
	// upstreamSecrets is the upstream secret check's gauge (nil in
	// check-config's dry run).
	upstreamSecrets *metrics.UpstreamSecrets
	// extensions is the extension policy; nil when extensions.enabled is
	// false. Built once (its keys are restart-only).
	extensions *enforce.Enforcer
	// tracer exports a span per request; nil when tracing.endpoint is
	// empty (the default), and then nothing on the path looks for spans.
	tracer *tracing.Tracer
	// overview keeps the last hour for /-/admin/overview; it outlives
	// reloads so the picture does not start over.
	overview *overview.Recorder
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

// Options are what the command hands the gateway: a checked config and the
// process's own outputs.
type Options struct {
	// Config is the loaded and judged configuration. Required.
	Config *config.Checked
	// Logger receives the gateway's records; nil means zap.NewNop().
	Logger *zap.Logger
	// Stdout and Stderr are where audit.output "stdout" and "stderr" go.
	Stdout, Stderr io.Writer
	// Version and Revision are the build's, for metrics and the status API.
	Version, Revision string
}

// Gateway is the whole request path, built once per process: the store,
// the credential packages and the admin surface live as long as it does;
// what a reload may change (upstream pool, header policy, trusted
// networks) is rebuilt by Reload and swapped in atomically.
type Gateway struct {
	process
	reg     *metrics.Registry
	handler *proxy.Reloadable
	mu      sync.Mutex // serialises Reload and Close
	cur     *state
	closers []func()
}

// New builds the gateway from o: it opens the store (failing rather than
// falling back when Redis is unreachable), stamps the global epoch on a
// new or wiped store, builds every credential package and the admin
// surface, and the first request path. Configuration problems are
// config.InvalidError; anything else (an unreachable Redis) is a plain
// error. Close releases what New opened.
func New(ctx context.Context, o Options) (g *Gateway, err error) {
	if o.Config == nil || o.Config.Config == nil {
		return nil, errors.New("gateway: Options.Config is required")
	}
	l, cfg := o.Config, o.Config.Config
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	g = &Gateway{}
	defer func() {
		if err != nil {
			g.Close()
		}
	}()
	keys := l.CookieKeys
	if keys == nil {
		seen := len(l.Warnings)
		var p string
		var created bool
		if keys, p, created, err = l.EnsureCookieKeys(); err != nil {
			return g, err
		}
		for _, w := range l.Warnings[seen:] {
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

	g.reg = metrics.NewRegistry()
	m := metrics.New(g.reg)
	m.SetBuildInfo(o.Version, o.Revision)
	g.version, g.revision = o.Version, o.Revision

	st, backup, err := openStore(ctx, cfg, m, log)
	if err != nil {
		return g, err
	}
	g.closers = append(g.closers, func() {
		if err := st.Close(); err != nil {
			log.Warn("closing the store", zap.Error(err))
		}
	})
	g.process = process{log: log, metrics: m, store: st, upstreamSecrets: metrics.NewUpstreamSecrets(g.reg), overview: overview.New(nil)}
	if backup != nil {
		g.process.backup = backup
	}
	p := &g.process
	if err := p.initStore(ctx, cfg.Store.DataDir); err != nil {
		return g, err
	}
	if err := g.openTracing(ctx, cfg, o.Version); err != nil {
		return g, err
	}

	auditOut, closeAudit, err := openAuditSink(cfg.Audit.Output, o.Stdout, o.Stderr)
	if err != nil {
		return g, err
	}
	g.closers = append(g.closers, closeAudit)
	p.audit = audit.New(audit.Options{Writer: auditOut, Recent: st, Logger: log.Named("audit"), Dropped: metrics.NewAudit(g.reg)})
	actx, stopAudit := context.WithCancel(context.Background())
	go p.audit.Run(actx)
	g.closers = append(g.closers, func() {
		// Before the sink closes (closers run in reverse): the drops of
		// the last period are summed up too.
		stopAudit()
		fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := p.audit.Flush(fctx); err != nil {
			log.Warn("audit: last summary of dropped refusals not fully recorded", zap.Error(err))
		}
	})
	if p.freshStore {
		// openEpochs stamps the global epoch for it; this event and
		// /-/readyz make the wipe visible too.
		if err := p.audit.Emit(ctx, audit.Event{
			Event: "store.generation_created", Actor: "gateway", Subject: "store:" + p.durability.Backend,
			Outcome: audit.OutcomeSuccess, Reason: freshStoreReason(p.storeWiped),
		}); err != nil {
			log.Warn("audit event not fully recorded", zap.Error(err))
		}
	}

	p.service = client.NewServiceIdentity(cfg.Superset.JWTSecret, cfg.Superset.ServiceUserID, nil)
	if err := p.openEpochs(ctx, cfg, g.reg); err != nil {
		return g, err
	}
	if err := p.openGuestTokens(ctx, cfg, g.reg); err != nil {
		return g, err
	}
	if err := p.openFABKeys(ctx, cfg); err != nil {
		return nil, err
	}
	if err := p.openAccessTokens(ctx, cfg, keys, g.reg); err != nil {
		return g, err
	}
	if err := p.openRateLimits(cfg, keys, g.reg); err != nil {
		return g, err
	}
	if err := p.openVault(ctx, cfg, keys, g.reg); err != nil {
		return g, err
	}
	if p.admin, err = p.buildAdmin(cfg, l.AdminTokens); err != nil {
		return g, fmt.Errorf("admin: %w", err)
	}
	if err := g.openExtensions(cfg); err != nil {
		return g, err
	}
	if p.adminPage, err = p.buildAdminPage(cfg, keys); err != nil {
		return g, fmt.Errorf("admin page: %w", err)
	}

	cur, err := p.buildState(cfg)
	if err != nil {
		return g, config.InvalidError{Err: err}
	}
	cur.start(ctx)
	p.pool.Store(cur.pool)
	g.cur = cur
	g.handler = proxy.NewReloadable(cur.gateway)
	return g, nil
}

// Handler is the request path, for the listener. It follows reloads.
func (g *Gateway) Handler() http.Handler { return g.handler }

// MetricsHandler serves the gateway's own Prometheus registry.
func (g *Gateway) MetricsHandler() http.Handler { return metrics.Handler(g.reg) }

// CertExpiryObserver registers the TLS certificate expiry metric and
// returns the proxy.ServerOptions.CertLoaded hook that sets it. Call it only
// when the gateway serves TLS, so that a plain-HTTP gateway exports no
// expiry an alert could misread.
func (g *Gateway) CertExpiryObserver() func(notAfter time.Time) {
	return metrics.NewTLS(g.reg).SetCertExpiry
}

// MetricFamilies lists the gateway's own metric families as registered, for
// docs/metrics.md.
func (g *Gateway) MetricFamilies() ([]metrics.Family, error) { return g.reg.Families() }

// Reload applies next: keys only a restart can apply keep their running
// value, each named in a warning; the rest builds a new request path that
// is swapped in atomically. On error the running path stays.
func (g *Gateway) Reload(ctx context.Context, next *config.Checked) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, w := range next.Warnings {
		g.log.Warn(w)
	}
	running := g.cur.cfg
	for _, k := range config.RestartOnlyChanges(running, next.Config) {
		g.log.Warn("changed key needs a restart; the running value stays", zap.String("key", k))
	}
	cfg := config.KeepRestartOnly(running, next.Config)
	st, err := g.buildState(cfg)
	if err != nil {
		return err
	}
	st.start(ctx)
	g.handler.Swap(st.gateway)
	g.pool.Store(st.pool)
	prev := g.cur
	g.cur = st
	prev.stop()
	var nodes []string
	for _, n := range st.pool.Nodes() {
		nodes = append(nodes, n.URL)
	}
	g.metrics.RetainNodes(nodes)
	return nil
}

// Close stops the health checks and closes the audit sink and the store.
// Call it after the listener has drained.
func (g *Gateway) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cur != nil {
		g.cur.stop()
		g.cur = nil
	}
	for i := len(g.closers) - 1; i >= 0; i-- {
		g.closers[i]()
	}
	g.closers = nil
}

// Check dry-runs what New builds from cfg that can fail on configuration
// alone (upstream pool, header policy, request path) without opening the
// store, binding a port or contacting an upstream.
func Check(cfg *config.Config) error {
	p := &process{log: zap.NewNop(), metrics: metrics.New(metrics.NewRegistry()), overview: overview.New(nil)}
	if _, err := p.buildState(cfg); err != nil {
		return config.InvalidError{Err: err}
	}
	return nil
}

// initStore reads the generation marker and the backend's durability.
func (p *process) initStore(ctx context.Context, dataDir string) error {
	fresh, gen, err := store.EnsureGeneration(ctx, p.store, time.Now())
	if err != nil {
		// Without the marker the gateway cannot tell a wiped store from a
		// healthy one, so it must not serve.
		return fmt.Errorf("store: %w", err)
	}
	p.freshStore, p.generation = fresh, gen
	seen := seenGeneration(dataDir, p.log)
	// A fresh store is a wipe when this data_dir remembers an earlier
	// generation; otherwise it is taken for a new one (the global epoch is
	// stamped either way, see openEpochs).
	p.storeWiped = fresh && seen != ""
	switch {
	case p.storeWiped:
		p.log.Warn("store has no generation marker but this data_dir saw one: the store was wiped; revocations it held are gone",
			zap.String("generation", gen), zap.String("previous", seen))
	case fresh:
		p.log.Info("new store: generation marker created", zap.String("generation", gen))
	default:
		p.log.Info("store generation", zap.String("generation", gen))
	}
	rememberGeneration(dataDir, gen, p.log)
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
	secrets := p.upstreamSecretChecker(cfg)
	pool, err := upstream.New(upstream.Options{
		Vetter:                vetter{secrets},
		Nodes:                 cfg.Upstreams,
		Selector:              sel,
		ResponseHeaderTimeout: cfg.Limits.UpstreamTimeout,
		HealthPath:            cfg.HealthCheck.Path,
		HealthInterval:        cfg.HealthCheck.Interval,
		HealthTimeout:         cfg.HealthCheck.Timeout,
		UnhealthyAfter:        cfg.HealthCheck.UnhealthyThreshold,
		EjectAfter:            ejectAfter,
		EjectCooldown:         cfg.Passive.Cooldown,
		Observer:              observers{p.metrics, p.overview},
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
		Observer:       observers{p.metrics, p.overview},
		SlowThreshold:  cfg.Metrics.SlowRequestThreshold,
		TrustedProxies: trusted,
		TrustedHeaders: cfg.TrustedHeaders,
		// headers.underscore_headers: "drop" (default) or "refuse".
		RefuseUnderscoreHeaders: cfg.Headers.UnderscoreHeaders == "refuse",
		Classify:                superset.Classify,
		Readiness:               p.readiness(pool, secrets, cfg.Extensions.OnUnavailable),
		Headers:                 headers,
		MaxBodyBytes:            cfg.Limits.MaxBodyBytes,
	}
	// The request path between hygiene and the reverse proxy, in the one
	// order pipeline.go documents.
	parts := Parts{
		Sessions: p.vault,
		Epochs:   p.epochs,
		Stamp:    p.stampHook,
		Refusals: NewRefuser(RefuserOptions{Observer: observers{p.metrics, p.overview}, Auditor: p.audit,
			Logger: p.log.Named("refusal"), RequestInfo: requestInfo}),
		Logger: p.log.Named("pipeline"),
		Traced: p.tracer != nil,
	}
	if p.tracer != nil {
		opts.Tracer = p.tracer
	}
	if p.jwtGuard != nil {
		parts.JWT = p.jwtGuard
	}
	if p.fabKeys != nil {
		parts.FABKeys = p.fabKeys
	}
	if p.rateLimits != nil {
		parts.RateLimits = p.rateLimits
	}
	if p.guard != nil {
		parts.Guests, parts.GuestIssuance, parts.GuestRevoked = p.guard, p.guard.ModifyResponse, p.revoker
	}
	if p.revoker != nil {
		// Superset master's own per-dashboard revoke stamps the gateway's
		// revoked_before too (guesttoken.UpstreamRevokeRef).
		parts.GuestIssuance = chainResponseHooks(parts.GuestIssuance, p.revoker.ModifyResponse)
	}
	if p.extensions != nil {
		parts.Extensions = p.extensions
	}
	if p.tokenGuard != nil {
		parts.Tokens = p.tokenGuard
	} else {
		// access_tokens.enabled: false. A token must still never reach
		// Superset.
		parts.TokensDisabled = true
	}
	if p.vault != nil {
		pl, err := NewPipeline(parts)
		if err != nil {
			return nil, err
		}
		opts.Middleware = []func(http.Handler) http.Handler{pl.Middleware}
		opts.ModifyResponse = pl.ModifyResponse
		opts.Internal = p.internalRoutes()
	}
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

// ReadyDetails is the JSON body of /-/readyz. It is served on the public
// listener, so it carries counts and settings, never node addresses, the
// store URL or error texts.
type ReadyDetails struct {
	Store      StoreReady       `json:"store"`
	Upstreams  UpstreamReady    `json:"upstreams"`
	Extensions *ExtensionsReady `json:"extensions,omitempty"`
	// RateLimits is absent when rate_limits.enabled is false.
	RateLimits *RateLimitReady `json:"rate_limits,omitempty"`
}

type StoreReady struct {
	OK          bool   `json:"ok"`
	Backend     string `json:"backend"`
	AppendOnly  bool   `json:"appendonly"`
	AppendFsync string `json:"appendfsync"`
	Durable     bool   `json:"durable"`
	// Fresh reports that this process found the store new or wiped.
	Fresh bool `json:"fresh_generation"`
}

type UpstreamReady struct {
	Healthy int `json:"healthy"`
	Total   int `json:"total"`
	// SecretMismatch lists the nodes whose Superset signs with another
	// secret than the gateway's (upstreamsecret), by position in
	// upstreams: no address, and not which published secret it matched.
	SecretMismatch []SecretMismatchReady `json:"secret_mismatch,omitempty"`
}

// SecretMismatchReady is one finding of the upstream secret check as
// /-/readyz shows it.
type SecretMismatchReady struct {
	Node string `json:"node"` // "upstreams[1]"
	// Secret is "secret_key" or "guest_token_secret".
	Secret string `json:"secret"`
	// KnownDefault: it verifies under a published Superset secret (the
	// list is public, so this tells an attacker nothing they could not
	// test; the entry itself is in the log, audit event and metric).
	KnownDefault bool `json:"known_default"`
	Refused      bool `json:"refused"`
}

// readyTimeout bounds the store ping of one readiness probe.
const readyTimeout = 2 * time.Second

// readiness answers /-/readyz: ready when the store answers a ping and at
// least one upstream node takes traffic.
func (p *process) readiness(pool *upstream.Pool, secrets *upstreamsecret.Checker, onUnavailable string) func(context.Context) (bool, any) {
	return func(ctx context.Context) (bool, any) {
		pctx, cancel := context.WithTimeout(ctx, readyTimeout)
		defer cancel()
		storeErr := p.store.Ping(pctx)
		if storeErr != nil {
			p.log.Warn("readiness: store ping failed", zap.Error(storeErr))
		}
		d := ReadyDetails{
			Store: StoreReady{
				OK:          storeErr == nil,
				Backend:     p.durability.Backend,
				AppendOnly:  p.durability.AppendOnly,
				AppendFsync: p.durability.AppendFsync,
				Durable:     p.durability.Durable,
				Fresh:       p.freshStore,
			},
			Upstreams:  UpstreamReady{Healthy: pool.Healthy(), Total: len(pool.Nodes())},
			Extensions: p.extensionsReady(onUnavailable),
			RateLimits: p.rateLimitReady(),
		}
		for _, f := range secrets.Findings() {
			d.Upstreams.SecretMismatch = append(d.Upstreams.SecretMismatch, SecretMismatchReady{
				Node: fmt.Sprintf("upstreams[%d]", f.Index), Secret: f.Secret,
				KnownDefault: f.Known != upstreamsecret.KnownNone, Refused: f.Refused,
			})
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

// openVault builds the session vault and subscribes it to other replicas'
// invalidations. Its settings are fixed for the life of the process.
func (p *process) openVault(ctx context.Context, cfg *config.Config, keys []config.CookieKeyPair, reg prometheus.Registerer) error {
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
		Logger:               p.log.Named("session"),
		Observer:             metrics.NewSessions(reg),
		Audit:                p.audit,
		AnonymousLimiter:     anonymousLimiter(p.rateLimits),
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

// openGuestTokens builds the guest-token revocation store and, when a guest
// secret is configured, the guard that checks every guest token.
func (p *process) openGuestTokens(ctx context.Context, cfg *config.Config, reg prometheus.Registerer) error {
	obs := metrics.NewGuestTokens(reg)
	ro := guesttoken.RevokerOptions{
		Store:    p.store,
		CacheTTL: cfg.Session.CacheTTL,
		Logger:   p.log.Named("guesttoken"),
		Observer: obs,
		OnWipe:   p.onWipe,
	}
	if cfg.Superset.ServiceUserID > 0 {
		ro.Resolver = client.AliasResolver{API: client.Through(currentPool{&p.pool}), Identity: p.service}
	}
	// Stamps made after Superset's own per-dashboard revoke are audited.
	ro.Auditor, ro.Caller = guestAuditor{p.audit}, p.caller
	rev, err := guesttoken.NewRevoker(ro)
	if err != nil {
		return fmt.Errorf("guesttoken: %w", err)
	}
	// Dashboard stamps do not survive a wiped store; a global one at the
	// start of a fresh generation refuses every token they covered.
	if err := rev.EnsureGlobal(ctx, p.freshStore); err != nil {
		return fmt.Errorf("guest-token revocations: the global stamp could not be written: %w", err)
	}
	if err := rev.Start(ctx); err != nil {
		p.log.Warn("guest-token invalidation subscription not live yet", zap.Error(err))
	}
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

// caller names who made a request, for audit events: the principal the
// request path authenticated.
func (p *process) caller(r *http.Request) guesttoken.Caller {
	c := guesttoken.Caller{RequestID: proxy.RequestID(r), IP: proxy.ClientIP(r).String(), Actor: "anonymous"}
	if pr, ok := principal.FromContext(r.Context()); ok {
		c.Actor = pr.Actor()
		if pr.Username != "" {
			c.Actor += ":" + pr.Username
		}
	}
	return c
}

// internalRoutes are the gateway's own pages and APIs under /-/ (health
// and readiness are proxy's).
func (p *process) internalRoutes() http.Handler {
	internal := http.NewServeMux()
	// The pages' CSS, font and script (ui): public, like Superset's own
	// /static/.
	internal.Handle(ui.StaticPrefix, ui.Static())
	sessions := p.vault.SessionsPageWith(session.PageOptions{Nav: p.nav})
	internal.Handle("/-/sessions", sessions)
	internal.Handle("/-/sessions/", sessions)
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
	// Every audit event of the gateway's own pages and APIs carries the
	// request id and client address, whichever package emits it.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ip := requestInfo(r)
		internal.ServeHTTP(w, r.WithContext(audit.WithRequest(r.Context(), id, ip)))
	})
}

// guestAuditor adapts the audit logger to guesttoken.Auditor. A denied
// event (a token signed with the default secret) is a refusal anyone can
// cause: it is throttled like every refusal.
type guestAuditor struct{ a *audit.Logger }

func (g guestAuditor) Audit(ctx context.Context, ev guesttoken.AuditEvent) {
	aev := audit.Event{
		Event: ev.Event, Actor: ev.Actor, Subject: ev.Subject, RequestID: ev.RequestID,
		IP: ev.IP, Outcome: ev.Outcome, Reason: ev.Reason, Details: ev.Details,
	}
	record := g.a.Emit
	if ev.Outcome == audit.OutcomeDenied {
		record = g.a.Refusal
	}
	_ = record(ctx, aev) // best effort: an audit hiccup must not fail the request; the logger logs write failures
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

// openTracing starts the OTLP exporter when tracing.endpoint is set; its
// closer sends the spans still queued.
func (g *Gateway) openTracing(ctx context.Context, cfg *config.Config, version string) error {
	if cfg.Tracing.Endpoint == "" {
		return nil
	}
	tr, err := tracing.New(ctx, tracing.Options{Endpoint: cfg.Tracing.Endpoint, SampleRatio: cfg.Tracing.SampleRatio,
		ServiceName: cfg.Tracing.ServiceName, Version: version})
	if err != nil {
		return config.InvalidError{Err: err}
	}
	g.tracer = tr
	log := g.log
	g.closers = append(g.closers, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tr.Shutdown(sctx); err != nil {
			log.Warn("last spans not exported", zap.Error(err))
		}
	})
	return nil
}
