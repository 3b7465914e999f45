package gateway

import (
	"context"
	"fmt"

	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/config"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/proxy/upstream"
	"github.com/superset-gateway/superset-gateway/upstreamsecret"
)

// upstreamSecretChecker builds the upstream secret check of one pool: the
// first session cookie and guest token of each node verified under the
// configured secrets (docs/audit.md). A reload builds a new one, which
// re-checks every node.
func (p *process) upstreamSecretChecker(cfg *config.Config) *upstreamsecret.Checker {
	o := upstreamsecret.Options{
		Nodes:       cfg.Upstreams,
		SecretKey:   cfg.Superset.SecretKey,
		GuestSecret: cfg.Superset.GuestTokenSecret,
		Refuse:      cfg.Superset.RefuseMismatchedUpstreamSecret,
		Logger:      p.log.Named("upstreamsecret"),
	}
	if p.upstreamSecrets != nil {
		o.Observer = p.upstreamSecrets
	}
	if p.audit != nil {
		o.Auditor = upstreamSecretAuditor{p.audit}
	}
	return upstreamsecret.New(o)
}

// vetter adapts the check to the pool's Vetter.
type vetter struct{ c *upstreamsecret.Checker }

var _ upstream.Vetter = vetter{}

func (v vetter) Vet(node string) upstream.NodeVet { return v.c.Node(node) }
func (v vetter) ProbePath() string                { return v.c.ProbePath() }

// upstreamSecretAuditor records a finding as the audit event
// upstream.secret_mismatch. The audit log is the operator's, so it names
// the node's address and the published secret's entry, never the value.
type upstreamSecretAuditor struct{ a *audit.Logger }

func (u upstreamSecretAuditor) AuditUpstreamSecret(ctx context.Context, f upstreamsecret.Finding) {
	_ = u.a.Emit(ctx, audit.Event{ // best effort; the logger logs write failures
		Event: "upstream.secret_mismatch", Actor: "gateway", Subject: "upstream:" + f.Node,
		Outcome: audit.OutcomeFailure, Reason: string(policy.ReasonUpstreamSecretMismatch),
		Details: map[string]any{
			"node": fmt.Sprintf("upstreams[%d]", f.Index), "secret": f.Secret,
			"known": f.Known, "known_source": f.Source, "refused": f.Refused,
		},
	})
}
