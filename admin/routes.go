package admin

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/epoch"
)

func (h *Handler) builtin() []Route {
	return []Route{
		{Method: http.MethodPost, Path: "users/{id}/revoke", Event: "admin.user.revoke", Handle: h.revokeUser},
		{Method: http.MethodGet, Path: "users/{id}/sessions", Event: "admin.user.sessions", Handle: h.userSessions},
		{Method: http.MethodDelete, Path: "sessions/{id}", Event: "admin.session.end", Handle: h.endSession},
		{Method: http.MethodGet, Path: "revocations", Event: "admin.revocations.list", Handle: h.revocations},
		{Method: http.MethodGet, Path: "audit", Event: "admin.audit.read", Handle: h.auditRead},
		{Method: http.MethodGet, Path: "status", Event: "admin.status", Handle: h.statusRead},
		{Method: http.MethodGet, Path: "store/backup", Event: "admin.store.backup", Handle: h.storeBackup},
	}
}

func userID(c *Call) (string, error) {
	id := c.Request.PathValue("id")
	if !epoch.ValidUserID(id) {
		return "", &HTTPError{Code: http.StatusBadRequest, Msg: "bad user id"}
	}
	c.Subject = "user:" + id
	return id, nil
}

// revokeUser: POST users/{id}/revoke {"reason": "…"} → {"epoch": ms,
// "user_id": id[, "username": name]}. {id} is a Superset user id or a
// username (ResolveUserRef): 400 for neither, 404 for no such user.
func (h *Handler) revokeUser(ctx context.Context, c *Call) (any, error) {
	u, reason, err := ResolveUserRef(ctx, h.users, c.Request.PathValue("id"))
	if err != nil {
		c.Reason = reason
		return nil, err
	}
	id := u.ID
	c.Subject = "user:" + id
	var body struct {
		Reason string `json:"reason"`
	}
	if err := c.DecodeJSON(&body); err != nil {
		return nil, err
	}
	c.Note = audit.CleanNote(body.Reason)
	v, err := h.ep.Stamp(ctx, id, epoch.Reason{Trigger: epoch.TriggerAdmin, Actor: c.Actor,
		RequestID: c.RequestID, IP: c.IP, Note: c.Note})
	if err != nil {
		return nil, err
	}
	out := map[string]any{"epoch": v, "user_id": id}
	if u.Username != "" {
		out["username"] = u.Username
	}
	return out, nil
}

func (h *Handler) needSessions() error {
	if h.sess == nil {
		return &HTTPError{Code: http.StatusNotImplemented, Msg: "sessions are not available"}
	}
	return nil
}

// userSessions: GET users/{id}/sessions → {"sessions": […]}.
func (h *Handler) userSessions(ctx context.Context, c *Call) (any, error) {
	id, err := userID(c)
	if err != nil {
		return nil, err
	}
	if err := h.needSessions(); err != nil {
		return nil, err
	}
	ss, err := h.sess.ListUserSessions(ctx, id)
	if err != nil {
		return nil, err
	}
	if ss == nil {
		ss = []SessionInfo{}
	}
	return map[string]any{"sessions": ss}, nil
}

// endSession: DELETE sessions/{id} → {"ended": id}.
func (h *Handler) endSession(ctx context.Context, c *Call) (any, error) {
	id := c.Request.PathValue("id")
	if id == "" || len(id) > 128 {
		return nil, &HTTPError{Code: http.StatusBadRequest, Msg: "bad session id"}
	}
	c.Subject = "session:" + id
	if err := h.needSessions(); err != nil {
		return nil, err
	}
	if err := h.sess.EndSessionAsAdmin(ctx, id); err != nil {
		return nil, err
	}
	return map[string]any{"ended": id}, nil
}

func limit(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, &HTTPError{Code: http.StatusBadRequest, Msg: "bad limit"}
	}
	return n, nil
}

// revocations: GET revocations[?limit=] → {"revocations": […]}, newest first.
func (h *Handler) revocations(ctx context.Context, c *Call) (any, error) {
	n, err := limit(c.Request)
	if err != nil {
		return nil, err
	}
	rs, err := h.ep.Revocations(ctx, n)
	if err != nil {
		return nil, err
	}
	return map[string]any{"revocations": rs}, nil
}

// auditRead: GET audit[?since=RFC3339|duration][&limit=] → {"events": […]}.
// since accepts a timestamp or a Go duration meaning "that long ago".
func (h *Handler) auditRead(ctx context.Context, c *Call) (any, error) {
	n, err := limit(c.Request)
	if err != nil {
		return nil, err
	}
	var since time.Time
	if s := c.Request.URL.Query().Get("since"); s != "" {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			since = t
		} else if d, err := time.ParseDuration(s); err == nil && d > 0 {
			since = h.now().Add(-d)
		} else {
			return nil, &HTTPError{Code: http.StatusBadRequest, Msg: "bad since: want RFC 3339 or a duration"}
		}
	}
	evs, err := h.aud.Recent(ctx, since, n)
	if err != nil {
		return nil, err
	}
	return map[string]any{"events": evs}, nil
}

// statusRead: GET status → Options.Status's answer.
func (h *Handler) statusRead(ctx context.Context, _ *Call) (any, error) {
	if h.status == nil {
		return map[string]any{}, nil
	}
	return h.status(ctx), nil
}
