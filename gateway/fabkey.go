package gateway

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/config"
	"github.com/superset-gateway/superset-gateway/fabkey"
	"github.com/superset-gateway/superset-gateway/superset/client"
)

// openFABKeys builds superset.fab_api_keys' stage: the refuser, or the
// enforcer over the store (its key registry) and the upstream pool (it
// resolves keys at Superset with the key itself). Restart-only, so built
// once.
func (p *process) openFABKeys(ctx context.Context, cfg *config.Config) error {
	if cfg.Superset.FABAPIKeys != config.FABAPIKeysEnforce {
		p.fabKeys = fabkey.NewRefuser(cfg.Superset.FABAPIKeyPrefixes)
		return nil
	}
	e, err := fabkey.NewEnforcer(fabkey.EnforcerOptions{
		Prefixes: cfg.Superset.FABAPIKeyPrefixes,
		Store:    p.store,
		Superset: client.Through(currentPool{&p.pool}),
		CacheTTL: cfg.Superset.FABAPIKeyCacheTTL,
		Logger:   p.log.Named("fabkey"),
	})
	if err != nil {
		return fmt.Errorf("fabkey: %w", err)
	}
	if err := e.Start(ctx); err != nil {
		p.log.Warn("FAB API key invalidation subscription not live yet", zap.Error(err))
	}
	p.fabKeys = e
	return nil
}
