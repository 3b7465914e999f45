package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/config"
	"github.com/superset-gateway/superset-gateway/metrics"
	"github.com/superset-gateway/superset-gateway/proxy"
	"github.com/superset-gateway/superset-gateway/session"
)

// openAccessTokens builds the scoped access tokens: their manager (store,
// page, admin routes) and the guard that turns `Bearer sgw_…` into a
// short-lived Superset JWT of the owner, with the policy of the
// access_tokens section. The pepper is access_tokens.pepper_file; without
// it, it is derived from the oldest cookie-key generation (it must outlive
// key rotation as long as tokens do) and a warning says so. The
// upstream-credential seal keys come from every generation, newest first.
// With access_tokens.enabled false only the manager is built, for the
// admin routes: no page and no guard, so buildState refuses every
// `Bearer sgw_…` (refuseAccessTokens).
func (p *process) openAccessTokens(ctx context.Context, cfg *config.Config, keys []config.CookieKeyPair, reg prometheus.Registerer) error {
	if len(keys) == 0 {
		return errors.New("access tokens: no cookie keys")
	}
	at := cfg.AccessTokens
	pepper := []byte(at.Pepper)
	if at.PepperFile == "" {
		var err error
		if pepper, err = accesstoken.DerivePepper(keys[len(keys)-1].Hash); err != nil {
			return fmt.Errorf("access tokens: %w", err)
		}
		if at.Enabled {
			p.log.Warn("access_tokens.pepper_file is not set: the access-token pepper is derived from the oldest cookie-key generation (the last line of the cookie keys); retiring that generation invalidates every access token. Set access_tokens.pepper_file to a dedicated secret (changing the pepper also invalidates every token, so do it before tokens are in use)")
		}
	}
	blocks := make([][]byte, len(keys))
	for i, k := range keys {
		blocks[i] = k.Block
	}
	seal, err := accesstoken.DeriveSealKeys(blocks)
	if err != nil {
		return fmt.Errorf("access tokens: %w", err)
	}
	obs := metrics.NewAccessTokens(reg)
	m, err := accesstoken.NewManager(accesstoken.ManagerOptions{
		Store:    p.store,
		Pepper:   pepper,
		CacheTTL: cfg.Session.CacheTTL,
		Logger:   p.log.Named("accesstoken"),
		Observer: obs,
		Auditor:  p.audit,
		Policy: accesstoken.Policy{
			MaxTTL:     at.MaxTTL,
			TTLChoices: at.TTLChoices,
			MaxPerUser: at.MaxPerUser,
			MaxCIDRs:   at.MaxCIDRs,
		},
	})
	if err != nil {
		return fmt.Errorf("access tokens: %w", err)
	}
	if err := m.Start(ctx); err != nil {
		p.log.Warn("access-token invalidation subscription not live yet", zap.Error(err))
	}
	if !at.Enabled {
		p.log.Info("access tokens are disabled (access_tokens.enabled: false): no /-/tokens page, and Bearer sgw_… is refused with 401; the admin API still lists and revokes tokens")
		p.tokens = m
		return nil
	}
	g, err := accesstoken.NewGuard(accesstoken.GuardOptions{
		Manager:   m,
		JWTSecret: cfg.Superset.JWTSecret,
		Upstream:  currentPool{&p.pool},
		SealKeys:  seal,
		ClientIP:  proxy.ClientIP,
		RequestID: proxy.RequestID,
		Logger:    p.log.Named("accesstoken"),
		Observer:  obs,
	})
	if err != nil {
		return fmt.Errorf("access tokens: %w", err)
	}
	page, err := m.Page(accesstoken.PageOptions{Identify: p.identifyOwner, Nav: p.nav})
	if err != nil {
		return fmt.Errorf("access tokens: %w", err)
	}
	p.tokens, p.tokenGuard, p.tokenPage = m, g, page
	return nil
}

// signedIn is the caller's live, signed-in gateway session, checked as the
// proxy checks it (epochs included, a revoked one destroyed): the vault's
// one answer for every gateway page. ok is false for no, a bad, an
// expired, an anonymous or a revoked session; err is a store failure
// (answer 503).
func (p *process) signedIn(r *http.Request) (s *session.Session, ok bool, err error) {
	if p.vault == nil {
		return nil, false, nil
	}
	s, err = p.vault.SignedIn(r)
	switch {
	case errors.Is(err, session.ErrNotFound), errors.Is(err, session.ErrBadCookie), errors.Is(err, session.ErrExpired):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	return s, true, nil
}

// identifyOwner names the signed-in user of the /-/tokens page.
func (p *process) identifyOwner(r *http.Request) (accesstoken.Owner, bool, error) {
	s, ok, err := p.signedIn(r)
	if !ok {
		return accesstoken.Owner{}, false, err
	}
	return accesstoken.Owner{ID: s.UserID, Username: s.Username}, true, nil
}
