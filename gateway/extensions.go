package gateway

import (
	"context"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/config"
	"github.com/superset-gateway/superset-gateway/extensions/enforce"
	"github.com/superset-gateway/superset-gateway/extensions/policy"
	"github.com/superset-gateway/superset-gateway/metrics"
)

// ExtensionsReady is the extension policy's part of /-/readyz. Missing
// or stale advisory data does not make the gateway unready: everything
// but extensions still works, and extensions.on_unavailable decides
// what happens to them; the state is reported here and in metrics.
type ExtensionsReady struct {
	AdvisoriesOK     bool      `json:"advisories_ok"`
	AdvisoriesNewest time.Time `json:"advisories_newest,omitzero"`
	OnUnavailable    string    `json:"on_unavailable"`
}

// extensionAuditor records the first verdict on each extension version.
type extensionAuditor struct {
	log *audit.Logger
	zl  *zap.Logger
}

func (a extensionAuditor) ExtensionVerdict(id, version string, allowed bool, reasons []string) {
	ev := audit.Event{Event: "extension.verdict", Actor: "gateway", Subject: "extension:" + id + "@" + version,
		Outcome: audit.OutcomeSuccess, Reason: "allowed"}
	if !allowed {
		ev.Outcome, ev.Reason = audit.OutcomeDenied, "refused"
		ev.Details = map[string]any{"reasons": strings.Join(reasons, ",")}
	}
	if err := a.log.Emit(context.Background(), ev); err != nil {
		a.zl.Warn("extension verdict not audited", zap.Error(err))
	}
}

// openExtensions builds the extension enforcer (nil when disabled) and
// its refresh loop, stopped by Close.
func (g *Gateway) openExtensions(cfg *config.Config) error {
	c := cfg.Extensions
	if !c.Enabled {
		return nil
	}
	e, err := enforce.New(enforce.Options{
		Rules:      policy.Rules{Allow: c.Allow, Block: c.Block, MinVersions: c.MinVersions, MaxAge: c.MaxAge},
		Sources:    c.OSV,
		FailClosed: c.OnUnavailable == "closed",
		MaxDataAge: c.MaxDataAge,
		BundlesDir: c.BundlesDir,
		Observer:   metrics.NewExtensions(g.reg),
		Auditor:    extensionAuditor{log: g.audit, zl: g.log},
	})
	if err != nil {
		return config.InvalidError{Err: err}
	}
	if err := e.Ready(); err != nil {
		g.log.Warn("extension advisory data unavailable", zap.Error(err), zap.String("on_unavailable", c.OnUnavailable))
	}
	g.extensions = e
	ctx, stop := context.WithCancel(context.Background())
	go func() {
		t := time.NewTicker(c.RefreshInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				e.Refresh()
				if err := e.Ready(); err != nil {
					g.log.Warn("extension advisory data unavailable", zap.Error(err), zap.String("on_unavailable", c.OnUnavailable))
				}
			}
		}
	}()
	g.closers = append(g.closers, stop)
	return nil
}

// extensionsReady is nil when the policy is off.
func (p *process) extensionsReady(onUnavailable string) *ExtensionsReady {
	if p.extensions == nil {
		return nil
	}
	st := p.extensions.Status()
	return &ExtensionsReady{AdvisoriesOK: st.AdvisoriesOK, AdvisoriesNewest: st.AdvisoriesNewest, OnUnavailable: onUnavailable}
}
