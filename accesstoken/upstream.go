package accesstoken

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/principal"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/superset/apijwt"
)

// CSRFTokenPath is Superset's endpoint that hands out a CSRF token (and
// sets the session cookie it is bound to) to an authenticated caller.
const CSRFTokenPath = "/api/v1/security/csrf_token/"

// NeedsCSRF reports whether Superset's CSRFProtect checks method on path
// (the normalised path) for a Bearer-JWT caller: every unsafe method except
// the views in Superset's default WTF_CSRF_EXEMPT_LIST reachable by a
// scope (POST /api/v1/chart/data).
func NeedsCSRF(method, path string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return !(method == http.MethodPost && strings.TrimSuffix(path, "/") == "/api/v1/chart/data")
}

// minted is a cached Superset access JWT for one token.
type minted struct {
	jwt     string
	renewAt time.Time
}

// jwtCache holds the minted JWT of each token until shortly before its
// exp. Bounded; cleared wholesale when full (a miss only costs a mint).
type jwtCache struct {
	mu  sync.RWMutex
	m   map[string]minted
	max int
}

func (c *jwtCache) get(id string, now time.Time) (string, bool) {
	c.mu.RLock()
	e, ok := c.m[id]
	c.mu.RUnlock()
	if !ok || !now.Before(e.renewAt) {
		return "", false
	}
	return e.jwt, true
}

func (c *jwtCache) put(id string, e minted) {
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[id] = e
	c.mu.Unlock()
}

// bearer returns a Superset access JWT for rec's owner, minted with
// Superset's JWT secret for MintTTL and reused until renewBefore its exp.
// The cache is keyed by token id: the record is checked on every request
// before the JWT is used, so a revoked token's JWT is never sent again.
func (g *Guard) bearer(rec *Record, now time.Time) (string, error) {
	if jwt, ok := g.jwts.get(rec.ID, now); ok {
		return jwt, nil
	}
	jwt, err := apijwt.Mint(g.jwtKey, apijwt.MintOptions{Subject: rec.OwnerID, TTL: g.mintTTL, Now: now})
	if err != nil {
		return "", err
	}
	// iat is truncated to seconds; exp = iat + TTL.
	exp := now.Truncate(time.Second).Add(g.mintTTL)
	g.jwts.put(rec.ID, minted{jwt: jwt, renewAt: exp.Add(-g.renewBefore)})
	return jwt, nil
}

// upstreamCreds are what Superset wants besides the JWT for a
// CSRF-protected write: the X-CSRFToken value and the Cookie header of the
// session it is bound to. Only ever stored sealed.
type upstreamCreds struct {
	CSRF   string `json:"csrf"`
	Cookie string `json:"cookie"`
}

// errNoUpstream: writes need CSRF credentials but no Upstream was given.
var errNoUpstream = errors.New("accesstoken: no upstream round tripper configured")

// csrfCreds returns the token's CSRF credentials: from the store (opened
// with any sealing key, re-sealed with the newest when it was another),
// else fetched from Superset with jwt and stored sealed. A value that no
// key opens is replaced.
func (g *Guard) csrfCreds(ctx context.Context, rec *Record, jwt string, now time.Time) (upstreamCreds, error) {
	var c upstreamCreds
	if g.rt == nil || g.sealer == nil {
		return c, errNoUpstream
	}
	key := UpstreamKey(rec.ID)
	b, err := g.m.st.Get(ctx, key)
	switch {
	case err == nil:
		plain, stale, oerr := g.sealer.Open(b, key)
		if oerr == nil && json.Unmarshal(plain, &c) == nil && c.CSRF != "" {
			if stale {
				if ttl := g.credsTTL(rec, now); ttl > 0 {
					if err := g.m.st.Set(ctx, key, g.sealer.Seal(plain, key), ttl); err != nil {
						g.log.Warn("upstream credentials not re-sealed")
					}
				}
			}
			return c, nil
		}
		// Sealed with a retired key, or damaged: obtain new ones.
	case errors.Is(err, store.ErrNotFound):
	default:
		return c, unavailable("upstream credentials", err)
	}
	c, err = g.fetchCSRF(ctx, jwt)
	if err != nil {
		return c, err
	}
	plain, _ := json.Marshal(c)
	if ttl := g.credsTTL(rec, now); ttl > 0 {
		if err := g.m.st.Set(ctx, key, g.sealer.Seal(plain, key), ttl); err != nil {
			return c, unavailable("upstream credentials", err)
		}
	}
	return c, nil
}

func (g *Guard) credsTTL(rec *Record, now time.Time) time.Duration {
	return min(g.csrfTTL, rec.Expires.Sub(now))
}

// fetchCSRF asks Superset for a CSRF token as the JWT's user and keeps the
// cookies it sets (the session the token is bound to).
func (g *Guard) fetchCSRF(ctx context.Context, jwt string) (upstreamCreds, error) {
	var c upstreamCreds
	req := (&http.Request{
		Method: http.MethodGet,
		URL:    &url.URL{Path: CSRFTokenPath},
		Header: http.Header{"Accept": {"application/json"}, "Authorization": {"Bearer " + jwt}},
	}).WithContext(ctx)
	resp, err := g.rt.RoundTrip(req)
	if err != nil {
		return c, fmt.Errorf("accesstoken: csrf token: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return c, fmt.Errorf("accesstoken: csrf token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return c, fmt.Errorf("accesstoken: csrf token: status %d", resp.StatusCode)
	}
	var out struct {
		Result string `json:"result"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Result == "" {
		return c, errors.New("accesstoken: csrf token: no result")
	}
	var parts []string
	for _, ck := range resp.Cookies() {
		if ck.Value != "" && ck.MaxAge >= 0 {
			parts = append(parts, ck.Name+"="+ck.Value)
		}
	}
	if len(parts) == 0 {
		return c, errors.New("accesstoken: csrf token: no session cookie")
	}
	c.CSRF, c.Cookie = out.Result, strings.Join(parts, "; ")
	return c, nil
}

// ModifyResponse forgets a token's CSRF credentials when Superset refused
// them (a 400 whose body names CSRF: its session was lost, SECRET_KEY
// changed), so that the token's next write obtains new ones; the refused
// request itself is not retried. Chain it into proxy.Options.ModifyResponse
// (any position). It reads at most 8 KiB of such a response and hands the
// body on unchanged; it never returns an error.
func (g *Guard) ModifyResponse(resp *http.Response) error {
	req := resp.Request
	if req == nil || resp.StatusCode != http.StatusBadRequest || resp.Body == nil {
		return nil
	}
	x := principal.ExchangeFrom(req.Context())
	if x == nil {
		return nil
	}
	st, _ := x.TokenState.(*tokenState)
	if st == nil || st.cookie == "" {
		return nil
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	resp.Body = readCloser{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	if err != nil || !bytes.Contains(head, []byte("CSRF")) {
		return nil
	}
	if err := g.m.st.Delete(req.Context(), UpstreamKey(st.rec.ID)); err != nil {
		g.log.Warn("refused CSRF credentials not forgotten", zap.String("token_id", st.rec.ID), zap.Error(err))
	}
	return nil
}

type readCloser struct {
	io.Reader
	io.Closer
}
