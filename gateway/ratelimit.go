package gateway

import (
	"errors"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/superset-gateway/superset-gateway/config"
	"github.com/superset-gateway/superset-gateway/metrics"
	"github.com/superset-gateway/superset-gateway/proxy"
	"github.com/superset-gateway/superset-gateway/ratelimit"
	"github.com/superset-gateway/superset-gateway/session"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/store/redis"
)

// RateLimitReady is the rate limits' part of /-/readyz: whether the
// buckets are shared (Redis) or per process, and whether they are per
// process right now because Redis did not answer.
type RateLimitReady struct {
	Shared   bool `json:"shared"`
	Fallback bool `json:"fallback"`
}

// openRateLimits builds the rate-limit stage: GCRA over the Redis store's
// client with a per-process fallback, or per-process buckets alone on the
// embedded store. nil when rate_limits.enabled is false.
func (p *process) openRateLimits(cfg *config.Config, keys []config.CookieKeyPair, reg prometheus.Registerer) error {
	rl := cfg.RateLimits
	if !rl.Enabled {
		return nil
	}
	obs := metrics.NewRateLimits(reg)
	local := ratelimit.NewMemory(rl.LocalKeys, nil)
	var backend ratelimit.Backend = local
	if rs := redisStore(p.store); rs != nil {
		fb := &ratelimit.Fallback{Primary: ratelimit.NewRedis(rs.Client()), Local: local, OnFallback: obs.RateLimitFallback}
		p.rlFallback = fb
		backend = fb
	}
	// The key of the username hashes and the known-device cookie: every
	// replica must derive the same one. Superset's SECRET_KEY is shared
	// by construction; without it, the oldest cookie-key generation
	// (session.cookie_keys_file, shared by replicas too).
	secret := []byte(cfg.Superset.SecretKey)
	if len(secret) == 0 && len(keys) > 0 {
		secret = keys[len(keys)-1].Hash
	}
	if len(secret) < 16 {
		return errors.New("rate_limits: no secret to key usernames and sign the known-device cookie (set superset.secret_key_file)")
	}
	st, err := ratelimit.NewStage(ratelimit.Options{
		Backend:      backend,
		Limits:       limits(rl),
		ClientIP:     proxy.ClientIP,
		Secret:       secret,
		Secure:       strings.HasPrefix(cfg.PublicURL, "https://"),
		KnownDevices: rl.KnownDevices,
		Observer:     obs,
	})
	if err != nil {
		return err
	}
	p.rateLimits = st
	return nil
}

func limits(rl config.RateLimits) ratelimit.Limits {
	c := func(l config.RateLimit) ratelimit.Limit {
		return ratelimit.Limit{Rate: l.Rate, Period: l.Period, Burst: l.Burst}
	}
	return ratelimit.Limits{
		Address: c(rl.Address), LoginAddress: c(rl.LoginAddress), LoginUsername: c(rl.LoginUsername),
		LoginFailures: c(rl.LoginFailures), API: c(rl.API), GuestToken: c(rl.GuestToken),
		AnonymousSession: c(rl.AnonymousSession),
	}
}

// redisStore finds the Redis store under the instrumentation wrapper.
func redisStore(s store.Store) *redis.Store {
	for {
		switch v := s.(type) {
		case *redis.Store:
			return v
		case interface{ Unwrap() store.Store }:
			s = v.Unwrap()
		default:
			return nil
		}
	}
}

// rateLimitReady is /-/readyz's rate_limits detail; nil when off.
func (p *process) rateLimitReady() *RateLimitReady {
	if p.rateLimits == nil {
		return nil
	}
	return &RateLimitReady{Shared: p.rlFallback != nil, Fallback: p.rlFallback != nil && p.rlFallback.Degraded()}
}

// anonymousLimiter is the anonymous-session class for the vault; nil (the
// vault's own per-replica limit) when rate limits are off.
func anonymousLimiter(s *ratelimit.Stage) session.AnonymousLimiter {
	if s == nil {
		return nil
	}
	return s
}
