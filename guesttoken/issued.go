package guesttoken

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

// IssuePath is Superset's guest-token endpoint (SecurityRestApi.guest_token).
const IssuePath = "/api/v1/security/guest_token/"

// maxIssueBody bounds the response body read to see the issued token.
const maxIssueBody = 64 << 10

// ModifyResponse is the hook for proxy.Options.ModifyResponse (composed
// with the other hooks by the wiring). On a 200 answer to POST IssuePath it
// reads the issued token from the body, which it leaves intact for the
// client, verifies it with the gateway's guest secret, counts it per
// dashboard and audits who asked, for which dashboards and whether RLS
// rules were attached. Every other response passes untouched. It never
// fails the response: issuance passes through (an unreadable answer is
// logged, and a token the gateway cannot verify is audited as a failure,
// since the gateway will refuse it).
func (g *Guard) ModifyResponse(resp *http.Response) error {
	req := resp.Request
	if req == nil || req.Method != http.MethodPost || resp.StatusCode != http.StatusOK ||
		strings.TrimSuffix(req.URL.Path, "/") != strings.TrimSuffix(IssuePath, "/") {
		return nil
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxIssueBody+1))
	// Whatever happened, the client gets every byte: what was read, then
	// the rest.
	resp.Body = readCloser{io.MultiReader(bytes.NewReader(raw), resp.Body), resp.Body}
	cl := g.caller(req)
	if err != nil || len(raw) > maxIssueBody {
		g.log.Warn("guest-token issuance not inspected: body unreadable or too large", zap.String("request_id", cl.RequestID), zap.Error(err))
		return nil
	}
	token, ok := issuedToken(raw, resp.Header.Get("Content-Encoding"))
	if !ok {
		g.log.Warn("guest-token issuance not inspected: no token in the answer", zap.String("request_id", cl.RequestID))
		return nil
	}
	ctx := req.Context()
	c, d := g.verify(token, g.now())
	ev := AuditEvent{Event: "guest_token.issue", Actor: cl.Actor, RequestID: cl.RequestID, IP: cl.IP, Outcome: "success", Reason: string(ReasonOK)}
	if c != nil {
		for _, r := range c.Resources {
			g.obs.ObserveGuestTokenIssued(r.ID)
		}
		ev.Subject = subject(c.Resources)
		ev.Details = map[string]any{
			"resources":  resourceList(c.Resources),
			"rls":        len(c.RLSRules) > 0,
			"rls_rules":  len(c.RLSRules),
			"guest_user": c.User.Username,
			"lifetime_s": c.ExpiresAt.Sub(c.IssuedAt).Seconds(),
		}
	}
	if !d.Allow {
		// The gateway will refuse this token (wrong secret configured,
		// default secret, policy): say so loudly, once, at issuance.
		ev.Outcome, ev.Reason = "failure", string(d.Reason)
		g.log.Warn("Superset issued a guest token the gateway refuses", zap.String("reason", string(d.Reason)), zap.String("request_id", cl.RequestID))
	}
	if g.aud != nil {
		g.aud.Audit(ctx, ev)
	}
	return nil
}

// issuedToken reads {"token": "..."} from Superset's answer, gunzipping a
// copy when Superset compressed it.
func issuedToken(raw []byte, encoding string) (string, bool) {
	body := raw
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return "", false
		}
		body, err = io.ReadAll(io.LimitReader(zr, maxIssueBody+1))
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) || len(body) > maxIssueBody {
			return "", false
		}
	default:
		return "", false
	}
	var v struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Token == "" {
		return "", false
	}
	return v.Token, true
}

type readCloser struct {
	io.Reader
	io.Closer
}

// subject names a token's resources for an audit event.
func subject(rs []guestjwt.Resource) string {
	return strings.Join(resourceList(rs), ",")
}

func resourceList(rs []guestjwt.Resource) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Type + ":" + r.ID
	}
	return out
}
