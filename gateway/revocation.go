package gateway

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/admin"
	"github.com/superset-gateway/superset-gateway/config"
	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/jwtguard"
	"github.com/superset-gateway/superset-gateway/metrics"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/proxy"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/superset/apijwt"
	"github.com/superset-gateway/superset-gateway/superset/client"
)

// openEpochs builds the invalidation epochs (A2), the Superset API JWT
// guard and the automatic-stamping hook, and starts the reconciler. A fresh
// (new or wiped) store stamps the global epoch before anything is served, so
// no credential issued before the wipe comes back.
func (p *process) openEpochs(ctx context.Context, cfg *config.Config, reg prometheus.Registerer) error {
	obs := metrics.NewEpochs(reg)
	ep, err := epoch.New(epoch.Options{
		Store:    p.store,
		CacheTTL: cfg.Session.CacheTTL,
		Logger:   p.log.Named("epoch"),
		Observer: obs,
		Auditor:  p.audit,
		OnWipe:   p.onWipe,
	})
	if err != nil {
		return fmt.Errorf("epoch: %w", err)
	}
	switch {
	case p.storeWiped:
		if _, err := ep.OnFreshGeneration(ctx); err != nil {
			return fmt.Errorf("store was wiped and the global epoch could not be stamped: %w", err)
		}
		p.log.Warn("global epoch stamped: every credential issued before this start is refused")
	case p.freshStore:
		// Nothing shows it held anything, but a wipe of both the store and
		// data_dir looks the same: stamp anyway, without the alarm.
		if _, err := ep.OnNewStore(ctx); err != nil {
			return fmt.Errorf("store is new and the global epoch could not be stamped: %w", err)
		}
		p.log.Info("new store: global epoch stamped at first start")
	}
	if err := ep.Start(ctx); err != nil {
		p.log.Warn("epoch invalidation subscription not live yet", zap.Error(err))
	}
	p.epochs = ep

	g, err := jwtguard.New(jwtguard.Options{
		Verifier:    apijwt.Verifier{Key: cfg.Superset.JWTSecret},
		Revocations: p.store,
		JTICacheTTL: cfg.Session.CacheTTL,
		Logger:      p.log.Named("jwtguard"),
		Observer:    obs,
	})
	if err != nil {
		return fmt.Errorf("jwtguard: %w", err)
	}
	if err := g.Start(ctx); err != nil {
		p.log.Warn("jti revocation subscription not live yet", zap.Error(err))
	}
	p.jwtGuard = g

	hook, err := epoch.NewHook(epoch.HookOptions{
		Epochs:      ep,
		RequestInfo: requestInfo,
		Logger:      p.log.Named("epoch"),
	})
	if err != nil {
		return fmt.Errorf("epoch hook: %w", err)
	}
	p.stampHook = hook

	if cfg.ReconcileInterval == 0 {
		p.log.Warn("reconcile_interval is 0s: the reconciler is off; users disabled outside the gateway (CLI, LDAP sync, SQL) keep their credentials until they expire")
		return nil
	}
	if cfg.Superset.ServiceUserID <= 0 {
		p.log.Warn("superset.service_user_id is not set: the reconciler is off; users disabled outside the gateway (CLI, LDAP sync, SQL) keep their credentials until they expire")
		return nil
	}
	host, _ := os.Hostname()
	rec, err := epoch.NewReconciler(epoch.ReconcilerOptions{
		Lister: epoch.ClientLister{
			Client: client.Through(currentPool{&p.pool}),
			Bearer: func(context.Context) (string, error) { return p.service.Bearer() },
		},
		Epochs:   ep,
		Store:    p.store,
		Interval: cfg.ReconcileInterval,
		Holder:   host + ":" + strconv.Itoa(os.Getpid()),
		Logger:   p.log.Named("reconciler"),
		Observer: metrics.NewReconciler(reg),
	})
	if err != nil {
		return fmt.Errorf("reconciler: %w", err)
	}
	go rec.Run(ctx)
	return nil
}

// requestInfo is the request id and client IP of a request, for audit.
func requestInfo(r *http.Request) (string, string) {
	ip := ""
	if a := proxy.ClientIP(r); a.IsValid() {
		ip = a.String()
	}
	return proxy.RequestID(r), ip
}

// buildAdmin is the admin API (/-/admin/api/v1/…): admin tokens from
// admin.tokens_file, or a Superset session or JWT whose user holds a role
// in admin.roles; plus the guest-token revocation routes.
func (p *process) buildAdmin(cfg *config.Config, tokens []config.AdminToken) (*admin.Handler, error) {
	rc, err := admin.NewMeRolesChecker(admin.MeRolesOptions{
		Client:      client.Through(currentPool{&p.pool}),
		Credentials: p.adminCredentials,
	})
	if err != nil {
		return nil, err
	}
	return admin.New(admin.Options{
		Tokens:      adminTokensOf(tokens),
		Roles:       cfg.Admin.Roles,
		RoleChecker: rc,
		Epochs:      p.epochs,
		// Who an admin names is asked of Superset as the service user
		// (as dashboard aliases are); without one, plain ids only.
		Users:        client.UserResolver{API: client.Through(currentPool{&p.pool}), Identity: p.service},
		Sessions:     p.vault,
		Audit:        p.audit,
		Status:       p.status,
		Backup:       p.backup,
		GuestTokens:  p.revoker,
		AccessTokens: p.tokens,
		RequestInfo:  requestInfo,
		MaxBody:      64 << 10,
		Logger:       p.log.Named("admin"),
	})
}

// adminCredentials are the caller's own upstream credentials, checked as
// the proxy would check them: a live gateway session that passes the
// epoch check, or a Superset access JWT that jwtguard accepts.
func (p *process) adminCredentials(r *http.Request) (client.Auth, error) {
	if tok, ok, err := jwtguard.BearerToken(r.Header); err != nil {
		return client.Auth{}, fmt.Errorf("%w: %w", admin.ErrNoCredential, err)
	} else if ok && !strings.HasPrefix(tok, "sgw") {
		d, err := p.checkJWT(r.Context(), tok)
		if err != nil {
			return client.Auth{}, err
		}
		if !d.Allow {
			return client.Auth{}, fmt.Errorf("%w: %s", admin.ErrNoCredential, d.Reason)
		}
		return client.Auth{Bearer: tok}, nil
	}
	s, ok, err := p.signedIn(r)
	if err != nil {
		return client.Auth{}, err // store down: 503, not 401
	}
	if !ok {
		return client.Auth{}, admin.ErrNoCredential
	}
	cookies, err := http.ParseCookie(s.Jar.CookieHeader(time.Now()))
	if err != nil || len(cookies) == 0 {
		return client.Auth{}, admin.ErrNoCredential
	}
	return client.Auth{Cookies: cookies}, nil
}

// checkJWT checks a Superset access JWT as the request path does: verified
// by jwtguard, then against its user's epoch.
func (p *process) checkJWT(ctx context.Context, tok string) (policy.Decision, error) {
	c, d, err := p.jwtGuard.Verify(ctx, tok, apijwt.Access)
	if err != nil || !d.Allow {
		return d, err
	}
	return p.epochs.IssuedAfter(ctx, c.Subject, c.IssuedAt, time.Second)
}

// status answers GET /-/admin/api/v1/status.
func (p *process) status(ctx context.Context) any {
	version, revision := p.version, p.revision
	out := map[string]any{
		"version": version, "revision": revision,
		"store": map[string]any{
			"backend": p.durability.Backend, "appendonly": p.durability.AppendOnly,
			"appendfsync": p.durability.AppendFsync, "durable": p.durability.Durable,
			"detail": p.durability.Detail, "generation": p.generation, "fresh_generation": p.freshStore,
		},
	}
	if pool := p.pool.Load(); pool != nil {
		var nodes []map[string]any
		for _, n := range pool.Nodes() {
			nodes = append(nodes, map[string]any{"url": n.URL, "healthy": n.Healthy})
		}
		out["upstreams"] = nodes
	}
	return out
}

// adminTokensOf turns the validated admin.tokens_file entries into the
// admin package's form.
func adminTokensOf(ts []config.AdminToken) []admin.Token {
	out := make([]admin.Token, len(ts))
	for i, t := range ts {
		out[i] = admin.Token{Name: t.Name, SHA256: hex.EncodeToString(t.SHA256[:])}
	}
	return out
}

// onWipe runs after a wipe noticed while running was answered with a
// global stamp (of the epochs or of the guest-token revocations, whichever
// saw it first): the generation marker is written again so that the next
// start does not take the same wipe for a new one and stamp again.
func (p *process) onWipe(ctx context.Context) {
	if _, gen, err := store.EnsureGeneration(ctx, p.store, time.Now()); err != nil {
		p.log.Warn("store wiped while running: generation marker not re-created", zap.Error(err))
	} else {
		p.log.Warn("store wiped while running: global stamp written, generation marker re-created", zap.String("generation", gen))
	}
}
