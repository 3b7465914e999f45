// Package upstreamsecret checks, on the wire, that every Superset node
// behind the gateway signs with the secrets the gateway was configured
// with: the first Superset session cookie a node sets (and the first guest
// token it issues) is verified under the configured SECRET_KEY (and
// GUEST_TOKEN_JWT_SECRET), once per node for the life of a pool, never per
// request. A node that signs with another key (left on a default, stale
// after a rotation, one node of several misconfigured) is reported (metric,
// audit event, log, readiness) with the entry of Superset's published
// secrets it matches, if any, never the secret; with Options.Refuse the
// pool sends it no more traffic.
//
// A Checker is what proxy/upstream calls a Vetter (the gateway adapts it);
// it lives as long as one upstream pool: a reload builds a new pool and a new Checker, so a node fixed by
// its operator is re-checked after SIGHUP.
package upstreamsecret

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/superset/knownsecret"
)

// Which secret a finding is about (the metric's and audit event's label).
const (
	SecretKey   = "secret_key"
	GuestSecret = "guest_token_secret"
)

// KnownNone is the Known of a mismatch that matches no published secret.
const KnownNone = "none"

// ErrMismatch is Inspect's error for the answer that exposed a refused node.
var ErrMismatch = errors.New("upstreamsecret: node signs with another secret")

// guestTokenPath is Superset's guest-token endpoint.
const guestTokenPath = "/api/v1/security/guest_token"

// maxGuestBody bounds the guest-token answer read once per node.
const maxGuestBody = 64 << 10

// Finding is one node's mismatch. It never holds a secret.
type Finding struct {
	Node    string // the node's base URL (private: logs, metrics, audit)
	Index   int    // its position in upstreams, for public reports
	Secret  string // SecretKey or GuestSecret
	Known   string // the knownsecret entry ID it verifies under, or KnownNone
	Source  string // where that entry was published
	Refused bool   // the node was taken out of the pool
}

// Observer records mismatches (a metric). Implementations must be safe for
// concurrent use.
type Observer interface {
	// SetUpstreamSecretMismatch sets (mismatch) or clears the node's gauge.
	SetUpstreamSecretMismatch(node, secret, known string, mismatch bool)
}

// Auditor records a finding as an audit event.
type Auditor interface {
	AuditUpstreamSecret(ctx context.Context, f Finding)
}

// Options configure a Checker.
type Options struct {
	// Nodes are the upstreams in configuration order (Finding.Index).
	Nodes []string
	// SecretKey is Superset's SECRET_KEY as configured. Empty: cookies are
	// not checked.
	SecretKey []byte
	// GuestSecret is GUEST_TOKEN_JWT_SECRET; empty: guest tokens are not
	// checked.
	GuestSecret []byte
	// Refuse takes a mismatched node out of the pool.
	Refuse bool
	// Observer, Auditor and Logger may be nil.
	Observer Observer
	Auditor  Auditor
	Logger   *zap.Logger
}

// Checker judges the nodes of one pool. Safe for concurrent use.
type Checker struct {
	o     Options
	log   *zap.Logger
	mu    sync.Mutex
	nodes map[string]*Node
}

// New builds a Checker. It does nothing until the pool asks for nodes.
func New(o Options) *Checker {
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Checker{o: o, log: log, nodes: map[string]*Node{}}
}

// Node returns the standing of the node with base URL name, the same one
// on every call.
func (c *Checker) Node(name string) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.nodes[name]; ok {
		return n
	}
	n := &Node{c: c, name: name, index: -1}
	for i, u := range c.o.Nodes {
		if strings.TrimSuffix(u, "/") == name {
			n.index = i
		}
	}
	n.cookieDone.Store(len(c.o.SecretKey) == 0)
	n.guestDone.Store(len(c.o.GuestSecret) == 0)
	c.nodes[name] = n
	return n
}

// Findings returns every mismatch seen so far, in configuration order.
func (c *Checker) Findings() []Finding {
	c.mu.Lock()
	ns := make([]*Node, 0, len(c.nodes))
	for _, n := range c.nodes {
		ns = append(ns, n)
	}
	c.mu.Unlock()
	slices.SortFunc(ns, func(a, b *Node) int { return a.index - b.index })
	var out []Finding
	for _, n := range ns {
		n.mu.Lock()
		out = append(out, n.findings...)
		n.mu.Unlock()
	}
	return out
}

// Node is one upstream's standing. The done flags make the fast path one
// atomic load each; mu serialises the one slow check.
type Node struct {
	c          *Checker
	name       string
	index      int
	cookieDone atomic.Bool
	guestDone  atomic.Bool
	refused    atomic.Bool

	mu       sync.Mutex
	findings []Finding
}

func (n *Node) Refused() bool { return n.refused.Load() }

// Settled reports that the session cookie has been judged. The guest
// secret is not counted: a probe cannot make a node issue a guest token.
func (n *Node) Settled() bool { return n.cookieDone.Load() }

// ProbePath is Superset's login page: an anonymous GET sets the signed
// session cookie (verified against Superset 6.1.0).
func (c *Checker) ProbePath() string { return "/login/" }

// Inspect verifies the first session cookie and the first guest token the
// node hands out. Every later answer costs two atomic loads.
func (n *Node) Inspect(resp *http.Response) error {
	if n.refused.Load() {
		// Answers already in flight when the node was found out.
		return ErrMismatch
	}
	if n.cookieDone.Load() && n.guestDone.Load() {
		return nil
	}
	var err error
	if !n.cookieDone.Load() {
		if v, ok := sessionCookie(resp.Header); ok {
			err = n.judge(resp, SecretKey, v, n.c.o.SecretKey, &n.cookieDone)
		}
	}
	if err == nil && !n.guestDone.Load() && isGuestIssue(resp) {
		if v, ok := guestToken(resp); ok {
			err = n.judge(resp, GuestSecret, v, n.c.o.GuestSecret, &n.guestDone)
		}
	}
	return err
}

// judge settles one secret of the node with verify, once.
func (n *Node) judge(resp *http.Response, secret string, verify knownsecret.Verifier, key []byte, done *atomic.Bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if done.Load() {
		// Another answer settled it meanwhile.
		if n.refused.Load() {
			return ErrMismatch
		}
		return nil
	}
	// done is stored only once the verdict (refused included) is: a
	// concurrent Inspect that sees done must see refused too.
	defer done.Store(true)
	log := n.c.log.With(zap.String("node", n.name), zap.String("secret", secret))
	if verify(key) {
		log.Info("upstream node signs with the configured secret")
		if n.c.o.Observer != nil {
			n.c.o.Observer.SetUpstreamSecretMismatch(n.name, secret, "", false)
		}
		return nil
	}
	f := Finding{Node: n.name, Index: n.index, Secret: secret, Known: KnownNone, Refused: n.c.o.Refuse}
	if m, ok := knownsecret.FindBuiltin(verify); ok {
		f.Known, f.Source = m.ID, m.Source
	}
	n.findings = append(n.findings, f)
	if f.Refused {
		n.refused.Store(true)
	}
	log.Error("upstream node signs with another secret than the gateway's: its users cannot be recognised, and a published secret lets anyone forge its cookies",
		zap.String("known", f.Known), zap.String("source", f.Source), zap.Bool("refused", f.Refused))
	if n.c.o.Observer != nil {
		n.c.o.Observer.SetUpstreamSecretMismatch(n.name, secret, f.Known, true)
	}
	if n.c.o.Auditor != nil {
		ctx := context.Background()
		if resp.Request != nil {
			ctx = resp.Request.Context()
		}
		n.c.o.Auditor.AuditUpstreamSecret(context.WithoutCancel(ctx), f)
	}
	if f.Refused {
		return fmt.Errorf("%w (%s)", ErrMismatch, secret)
	}
	return nil
}

// sessionCookie finds Superset's "session" cookie among the answer's
// Set-Cookie lines; a deletion (empty value) or an unsigned value (a
// server-side session id) says nothing about the key.
func sessionCookie(h http.Header) (knownsecret.Verifier, bool) {
	for _, line := range h.Values("Set-Cookie") {
		name, rest, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(name) != "session" {
			continue
		}
		value, _, _ := strings.Cut(rest, ";")
		value = strings.Trim(strings.TrimSpace(value), `"`)
		if value == "" {
			continue
		}
		return knownsecret.SessionCookie(value)
	}
	return nil, false
}

func isGuestIssue(resp *http.Response) bool {
	r := resp.Request
	return r != nil && r.Method == http.MethodPost && resp.StatusCode == http.StatusOK &&
		strings.TrimSuffix(r.URL.Path, "/") == guestTokenPath
}

// guestToken reads {"token": …} from a guest-token answer, leaving every
// byte of the body for the client.
func guestToken(resp *http.Response) (knownsecret.Verifier, bool) {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxGuestBody+1))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(raw), resp.Body), resp.Body}
	if err != nil || len(raw) > maxGuestBody {
		return nil, false
	}
	body := raw
	switch strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding"))) {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, false
		}
		body, err = io.ReadAll(io.LimitReader(zr, maxGuestBody+1))
		if err != nil || len(body) > maxGuestBody {
			return nil, false
		}
	default:
		return nil, false
	}
	var v struct {
		Token string `json:"token"`
	}
	if json.Unmarshal(body, &v) != nil || v.Token == "" {
		return nil, false
	}
	return knownsecret.GuestToken(v.Token)
}
