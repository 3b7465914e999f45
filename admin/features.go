package admin

import (
	"context"
	"errors"
	"net/http"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/guesttoken"
	"github.com/superset-gateway/superset-gateway/superset/client"
)

// guestTokenRoutes are the admin routes of guest-token revocation (A3).
func (h *Handler) guestTokenRoutes() []Route {
	return []Route{
		{Method: http.MethodPost, Path: "dashboards/{ref}/guest-tokens/revoke", Event: "admin.guest_tokens.revoke", Handle: h.revokeDashboard},
		{Method: http.MethodPost, Path: "guest-tokens/revoke", Event: "admin.guest_tokens.revoke_all", Handle: h.revokeAllGuests},
		{Method: http.MethodGet, Path: "guest-tokens/revocations", Event: "admin.guest_tokens.list", Handle: h.guestRevocations},
	}
}

// revokeDashboard: POST dashboards/{ref}/guest-tokens/revoke
// {"reason": "…"} → the aliases stamped.
func (h *Handler) revokeDashboard(ctx context.Context, c *Call) (any, error) {
	ref := c.Request.PathValue("ref")
	c.Subject = "dashboard:" + ref
	if err := decodeNote(c); err != nil {
		return nil, err
	}
	rev, err := h.guests.RevokeDashboardRef(ctx, ref, h.now())
	if err != nil {
		return nil, guestTokenError(err)
	}
	return rev, nil
}

// revokeAllGuests: POST guest-tokens/revoke {"reason": "…"}.
func (h *Handler) revokeAllGuests(ctx context.Context, c *Call) (any, error) {
	c.Subject = "guest-tokens:all"
	if err := decodeNote(c); err != nil {
		return nil, err
	}
	rev, err := h.guests.RevokeAll(ctx, h.now())
	if err != nil {
		return nil, guestTokenError(err)
	}
	return rev, nil
}

// guestRevocations: GET guest-tokens/revocations.
func (h *Handler) guestRevocations(ctx context.Context, _ *Call) (any, error) {
	list, err := h.guests.List(ctx)
	if err != nil {
		return nil, guestTokenError(err)
	}
	return map[string]any{"revocations": list}, nil
}

// decodeNote reads the optional {"reason": "…"} body into the call's
// note, cleaned as every admin's note is (cleanNote).
func decodeNote(c *Call) error {
	var body struct {
		Reason string `json:"reason"`
	}
	if err := c.DecodeJSON(&body); err != nil {
		return err
	}
	c.Note = audit.CleanNote(body.Reason)
	return nil
}

// guestTokenError maps revocation failures to admin answers: Superset could
// not resolve the dashboard → 502 (or 404 when it does not exist), no
// service user → 501 naming the key, store down → 503.
func guestTokenError(err error) error {
	switch {
	case errors.Is(err, client.ErrNoServiceUser), errors.Is(err, guesttoken.ErrNoResolver):
		return &HTTPError{Code: http.StatusNotImplemented, Msg: "revoking by dashboard needs superset.service_user_id", Err: err}
	case errors.Is(err, guesttoken.ErrResolve):
		if client.StatusCode(err) == http.StatusNotFound {
			return &HTTPError{Code: http.StatusNotFound, Msg: "Superset knows no such dashboard", Err: err}
		}
		return &HTTPError{Code: http.StatusBadGateway, Msg: "Superset could not resolve the dashboard; nothing was revoked", Err: err}
	}
	return err
}

// accessTokenRoutes are the admin routes of scoped access tokens: every
// user's tokens, and revoking any of them.
func (h *Handler) accessTokenRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "tokens", Event: "admin.access_tokens.list", Handle: h.listTokens},
		{Method: http.MethodDelete, Path: "tokens/{id}", Event: "admin.access_tokens.revoke", Handle: h.revokeToken},
	}
}

// listTokens: GET tokens → {"tokens": […]}.
func (h *Handler) listTokens(ctx context.Context, _ *Call) (any, error) {
	list, err := h.access.ListAll(ctx)
	if err != nil {
		return nil, err
	}
	// The status the gateway enforces: a token its owner's revocation
	// covers is revoked, whatever its record says.
	if list, err = EnforcedStatus(ctx, h.ep, list); err != nil {
		return nil, err
	}
	if list == nil {
		list = []accesstoken.Info{}
	}
	return map[string]any{"tokens": list}, nil
}

// revokeToken: DELETE tokens/{id} → {"revoked": id}.
func (h *Handler) revokeToken(ctx context.Context, c *Call) (any, error) {
	id := c.Request.PathValue("id")
	if !accesstoken.ValidID(id) {
		return nil, &HTTPError{Code: http.StatusBadRequest, Msg: "bad token id"}
	}
	c.Subject = "access_token:" + id
	if err := h.access.Revoke(ctx, id, c.Actor); err != nil {
		return nil, err
	}
	return map[string]any{"revoked": id}, nil
}
