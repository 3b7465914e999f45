package guesttoken

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/policy"
)

// upstreamRevokeTimeout bounds resolving and stamping after Superset
// answered; the stamp does not depend on the client staying connected.
const upstreamRevokeTimeout = 5 * time.Second

// UpstreamRevokeRef reports whether the request is Superset's own
// per-dashboard guest-token revocation, POST
// /api/v1/dashboard/<id_or_slug>/embedded/revoke (Superset master,
// unreleased; 6.1.0 has no such route and answers 404), and returns the
// dashboard reference as sent.
func UpstreamRevokeRef(method string, u *url.URL) (string, bool) {
	if method != http.MethodPost {
		return "", false
	}
	rest, ok := strings.CutPrefix(strings.TrimSuffix(u.Path, "/"), "/api/v1/dashboard/")
	if !ok {
		return "", false
	}
	ref, ok := strings.CutSuffix(rest, "/embedded/revoke")
	if !ok || ref == "" || strings.Contains(ref, "/") {
		return "", false
	}
	return ref, true
}

// ModifyResponse is the response hook for Superset's own revocation (see
// UpstreamRevokeRef): when Superset answers 2xx, the gateway stamps its
// own revoked_before for the dashboard under every alias (the reference,
// and the id, slug and embed uuid the Resolver finds), exactly as the
// admin page's per-dashboard revoke does, so that guest tokens issued
// before are refused by the gateway on every replica, whatever alias they
// name the dashboard by. Superset's refusals (403, 404) stamp nothing.
//
// Without a Resolver (no service user) only the reference is stamped and
// Superset's answer is kept: Superset enforces its own revocation, and a
// 503 would repeat for ever. When resolving fails, or the store does not
// accept the stamp, the answer is replaced by 503 with Retry-After:
// Superset has revoked, but the gateway cannot promise it under every
// alias; repeating the request stamps again. It never returns an error.
func (r *Revoker) ModifyResponse(resp *http.Response) error {
	req := resp.Request
	if req == nil || resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil
	}
	ref, ok := UpstreamRevokeRef(req.Method, req.URL)
	if !ok {
		return nil
	}
	if !ValidAlias(ref) {
		// Superset found a dashboard by a reference the gateway cannot
		// name it by: nothing the gateway could stamp would match.
		r.log.Error("guest-token revoke: Superset accepted a dashboard reference the gateway cannot stamp", zap.String("ref", ref))
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), upstreamRevokeTimeout)
	defer cancel()
	at := r.now()
	rev, err := r.RevokeDashboardRef(ctx, ref, at)
	switch {
	case err == nil:
		r.audit(ctx, req, ref, rev, "success", "")
		return nil
	case errors.Is(err, ErrNoResolver):
		rev, err = r.RevokeDashboard(ctx, []string{ref}, at)
		if err == nil {
			r.log.Warn("guest-token revoke: no service user to resolve the dashboard's other aliases; only the reference is stamped", zap.String("ref", ref))
			r.audit(ctx, req, ref, rev, "success", "reference_only")
			return nil
		}
	case errors.Is(err, ErrResolve):
		// The reference at least, so that tokens naming the dashboard as
		// the admin did are refused while the rest is retried.
		if part, serr := r.RevokeDashboard(ctx, []string{ref}, at); serr != nil {
			err = errors.Join(err, serr)
		} else {
			rev = part
		}
	}
	r.log.Error("guest-token revoke: Superset revoked, the gateway could not stamp every alias; answering 503", zap.String("ref", ref), zap.Error(err))
	r.audit(ctx, req, ref, rev, "failure", "not_every_alias")
	replace503(resp)
	return nil
}

// audit records a stamp made after Superset's own revoke. rev holds what
// was stamped (nothing on a store failure).
func (r *Revoker) audit(ctx context.Context, req *http.Request, ref string, rev Revocation, outcome, reason string) {
	if r.aud == nil {
		return
	}
	cl := Caller{Actor: "anonymous"}
	if r.caller != nil {
		cl = r.caller(req)
	}
	details := map[string]any{"source": "superset", "aliases": rev.Aliases}
	if !rev.RevokedBefore.IsZero() {
		details["revoked_before"] = rev.RevokedBefore.UnixMilli()
	}
	r.aud.Audit(ctx, AuditEvent{Event: "guest_token.revoke", Actor: cl.Actor, Subject: "dashboard:" + ref,
		RequestID: cl.RequestID, IP: cl.IP, Outcome: outcome, Reason: reason, Details: details})
}

func replace503(resp *http.Response) {
	body := []byte(`{"message":"Superset revoked the dashboard's guest tokens, but the gateway could not record the revocation under every alias. Retry."}`)
	if resp.Body != nil {
		_ = resp.Body.Close()
	}
	resp.StatusCode = http.StatusServiceUnavailable
	resp.Status = "503 Service Unavailable"
	resp.Header = http.Header{
		"Content-Type":   {"application/json"},
		"Cache-Control":  {"no-store"},
		"Retry-After":    {policy.RetryAfter(0)},
		"Content-Length": {strconv.Itoa(len(body))},
	}
	resp.ContentLength = int64(len(body))
	resp.Body = io.NopCloser(bytes.NewReader(body))
}
