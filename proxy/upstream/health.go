package upstream

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Start runs active health checks on every node, one right away and then
// every HealthInterval, until ctx is done. It returns at once; call it once.
func (p *Pool) Start(ctx context.Context) {
	for _, n := range p.nodes {
		go p.healthLoop(ctx, n)
	}
}

func (p *Pool) healthLoop(ctx context.Context, n *Node) {
	p.checkNode(ctx, n)
	t := time.NewTicker(p.healthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.checkNode(ctx, n)
		}
	}
}

// Check runs one round of health checks on every node concurrently and
// returns when all are done. Start calls it periodically; readiness probes
// and tests may call it directly.
func (p *Pool) Check(ctx context.Context) {
	var wg sync.WaitGroup
	for _, n := range p.nodes {
		wg.Go(func() { p.checkNode(ctx, n) })
	}
	wg.Wait()
}

func (p *Pool) checkNode(ctx context.Context, n *Node) {
	ok, err := p.probe(ctx, n)
	if ctx.Err() != nil {
		// Shutting down: a cancelled probe says nothing about the node.
		return
	}
	if ok {
		p.vetProbe(ctx, n)
		n.activeFails.Store(0)
		n.healthy.Store(true)
		// A passing check re-admits an ejected node before its cooldown.
		n.ejectedUntil.Store(0)
		n.passiveFails.Store(0)
	} else {
		p.log.Debug("health check failed", zap.String("node", n.name), zap.Error(err))
		if n.activeFails.Add(1) >= p.unhealthyAfter {
			n.healthy.Store(false)
		}
	}
	p.report(n)
}

func (p *Pool) probe(ctx context.Context, n *Node) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, p.healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, n.name+p.healthPath, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("User-Agent", "superset-gateway-health")
	resp, err := n.rt.RoundTrip(req)
	if err != nil {
		return false, err
	}
	// Drain a little so the connection can be reused for the next check.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300, nil
}

// maxVetProbes bounds the probes of a node whose answers never settle its
// Vetter (a Superset with server-side sessions sets no signed cookie): after
// that only live traffic is inspected.
const maxVetProbes = 3

// vetProbe shows the Vetter one answer of a node it has not settled yet
// (Superset's login page, which sets a signed session cookie), so that a
// node signing with the wrong key is found before users reach it. Bounded
// like a health check; its outcome is the Vetter's.
func (p *Pool) vetProbe(ctx context.Context, n *Node) {
	if n.vet == nil || n.vetPath == "" || n.vet.Settled() || n.vetProbes.Add(1) > maxVetProbes {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, p.healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, n.name+n.vetPath, nil)
	if err != nil {
		return
	}
	req.Header.Set("User-Agent", "superset-gateway-health")
	resp, err := n.rt.RoundTrip(req)
	if err != nil {
		p.log.Debug("secret probe failed", zap.String("node", n.name), zap.Error(err))
		return
	}
	_ = n.vet.Inspect(resp) // a refusal takes effect through Refused
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	p.report(n)
}
