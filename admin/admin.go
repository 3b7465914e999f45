// Package admin serves the gateway's admin JSON API under
// /-/admin/api/v1/ (DESIGN.md §2.5, §6): revoke a user (stamp the epoch),
// list and end a user's sessions, list revocations, read recent audit
// events and the gateway's status; guest-token revocation and access
// tokens (features.go) over the interfaces this package defines, which the
// domain packages satisfy as they are. Extensions add routes through
// Options.Routes.
// Handler.Page serves the admin HTML page at /-/admin/ for signed-in
// Superset admins.
//
// Callers are admin API tokens ("Authorization: Bearer sgwa_…", stored as
// SHA-256 and compared in constant time, never read from the query string)
// or Superset users holding a role in admin.roles, as reported by an
// injected RoleChecker. No credential is 401, a non-admin 403, and every
// call, refused or not, is audited with its actor.
package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/guesttoken"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/session"
	"github.com/superset-gateway/superset-gateway/store"
)

// APIPrefix is where the gateway mounts the Handler in proxy Options.Internal.
const APIPrefix = "/-/admin/api/v1/"

// TokenPrefix starts every admin API token, so secret scanners and the
// handler can tell one from a Superset JWT.
const TokenPrefix = "sgwa_"

// Sentinel errors.
var (
	// ErrNoCredential is what a RoleChecker wraps when the request carries
	// no usable Superset credential (answered 401).
	ErrNoCredential = errors.New("admin: no credential")
	// ErrNotFound is answered 404, as are session's, accesstoken's and the
	// store's own not-found errors.
	ErrNotFound = errors.New("admin: not found")
	// ErrConfig reports invalid Options.
	ErrConfig = errors.New("admin: invalid options")
)

// Principal is a Superset user calling the admin API.
type Principal struct {
	UserID   string
	Username string
	Roles    []string
}

// RoleChecker identifies the Superset user behind a request (gateway
// session cookie or Bearer JWT) and their roles, e.g. with
// GET /api/v1/me/roles/ (MeRolesChecker). It must verify the credential as
// the proxy would (session vault, jwtguard incl. epochs): a revoked admin is
// no admin. Errors wrap ErrNoCredential when there is no usable credential.
type RoleChecker interface {
	Roles(ctx context.Context, r *http.Request) (Principal, error)
}

// SessionInfo is one gateway session as the vault describes it to admins
// (a handle, never the session id the cookie carries).
type SessionInfo = session.Info

// Sessions is what admins need from the session vault; *session.Vault
// satisfies it.
type Sessions interface {
	// ListUserSessions returns the user's live sessions (empty, not an
	// error, when there are none).
	ListUserSessions(ctx context.Context, userID string) ([]session.Info, error)
	// EndSessionAsAdmin destroys the session with this handle, whoever
	// owns it (an admin's power), on every replica; an error wrapping
	// session.ErrNotFound when there is none.
	EndSessionAsAdmin(ctx context.Context, handle string) error
}

// GuestTokens is what admins need from guest-token revocation;
// *guesttoken.Revoker satisfies it.
type GuestTokens interface {
	RevokeDashboardRef(ctx context.Context, ref string, at time.Time) (guesttoken.Revocation, error)
	RevokeAll(ctx context.Context, at time.Time) (guesttoken.Revocation, error)
	List(ctx context.Context) ([]guesttoken.Revocation, error)
}

// Epochs is what the admin API needs from *epoch.Epochs.
type Epochs interface {
	Stamp(ctx context.Context, userID string, why epoch.Reason) (int64, error)
	Revocations(ctx context.Context, n int) ([]epoch.Revocation, error)
	EpochReader
}

// AuditLog is *audit.Logger. A refused admin call (no or a wrong
// credential, not an admin, cross-origin) goes to Refusal, which throttles
// it: anyone can send those. Every admin action, done or failed, goes to
// Emit, which never drops.
type AuditLog interface {
	Emit(ctx context.Context, ev audit.Event) error
	Refusal(ctx context.Context, ev audit.Event) error
	Recent(ctx context.Context, since time.Time, n int) ([]audit.Event, error)
}

// Token is one configured admin API token: a name (the audit actor is
// "admin-token:<name>") and the hex SHA-256 of the token.
type Token struct {
	Name   string
	SHA256 string
}

// Call is one authenticated admin call, handed to route handlers.
type Call struct {
	// Request is the HTTP request (path values via Request.PathValue).
	Request *http.Request
	// Actor is "admin-token:<name>" or "user:<id>".
	Actor     string
	RequestID string
	IP        string
	// Subject, Note and Reason are set by the handler for the audit
	// event ("user:7", "dashboard:12"; an admin's stated reason, cleaned
	// with audit.CleanNote; a fixed identifier of why the call failed,
	// else the error's message is used).
	Subject string
	Note    string
	Reason  string
	maxBody int64
}

// DecodeJSON reads the request body as one JSON object into v (at most the
// handler's MaxBody; unknown fields are refused). An empty body leaves v
// untouched.
func (c *Call) DecodeJSON(v any) error {
	if c.Request.Body == nil || c.Request.Body == http.NoBody {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(c.Request.Body, c.maxBody+1))
	if err != nil {
		return &HTTPError{Code: http.StatusBadRequest, Msg: "cannot read body", Err: err}
	}
	if int64(len(b)) > c.maxBody {
		return &HTTPError{Code: http.StatusRequestEntityTooLarge, Msg: "body too large"}
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		return &HTTPError{Code: http.StatusBadRequest, Msg: "body is not the expected JSON object", Err: err}
	}
	return nil
}

// HTTPError is an answer other than 200: Msg goes to the client, Err only
// to the log.
type HTTPError struct {
	Code int
	Msg  string
	Err  error
}

func (e *HTTPError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("admin: %d %s: %v", e.Code, e.Msg, e.Err)
	}
	return fmt.Sprintf("admin: %d %s", e.Code, e.Msg)
}

func (e *HTTPError) Unwrap() error { return e.Err }

// Route is an admin API route added by another feature.
type Route struct {
	// Method and Path, Path relative to APIPrefix in http.ServeMux
	// pattern syntax, e.g. "POST" and "dashboards/{id}/guest-tokens/revoke".
	Method, Path string
	// Event names the audit event, e.g. "admin.guest_tokens.revoke".
	Event string
	// Handle answers an authenticated call; the result is sent as JSON
	// with 200, or as a file when it is a *Download. Errors: *HTTPError, or anything wrapping
	// store.ErrUnavailable (503), ErrNotFound (404); others are 500.
	Handle func(ctx context.Context, c *Call) (any, error)
}

// Options configure New. Epochs and Audit are required.
type Options struct {
	// Tokens are the admin API tokens (from admin.tokens_file).
	Tokens []Token
	// Roles are admin.roles: a Superset user with one of them is an admin.
	Roles []string
	// RoleChecker identifies Superset callers; nil admits tokens only.
	RoleChecker RoleChecker
	Epochs      Epochs
	// Users resolves the user an admin names (a Superset user id or a
	// username) before a revocation; nil accepts plain decimal ids
	// unchecked and refuses usernames.
	Users Users
	// Sessions may be nil until the vault provides it: its routes then
	// answer 501.
	Sessions Sessions
	// GuestTokens and AccessTokens, when set, add their routes
	// (dashboards/{ref}/guest-tokens/revoke, guest-tokens/revoke,
	// guest-tokens/revocations; tokens, tokens/{id}).
	GuestTokens  GuestTokens
	AccessTokens AccessTokens
	Audit        AuditLog
	// Backup writes a consistent copy of the embedded store (GET
	// store/backup); nil (the Redis store, backed up by Redis' own
	// persistence) answers 409 saying so.
	Backup Backupper
	// Status answers GET status (store durability, upstream health,
	// versions); nil answers {}.
	Status func(ctx context.Context) any
	// Routes are added after the built-in ones; a clash is an error.
	Routes []Route
	// RequestInfo returns the request id and client IP (the gateway passes
	// proxy.RequestID and proxy.ClientIP); nil leaves them empty.
	RequestInfo func(*http.Request) (requestID, ip string)
	// MaxBody bounds request bodies; 0 means 64 KiB.
	MaxBody int64
	// RetryAfter is sent with 503; 0 means 5s.
	RetryAfter time.Duration
	// Now is the clock for "since" durations; nil means time.Now.
	Now func() time.Time
	// Logger may be nil.
	Logger *zap.Logger
}

// Handler is the admin API. Build it with New.
type Handler struct {
	tokens     []tokenHash
	roles      []string
	rc         RoleChecker
	ep         Epochs
	users      Users
	sess       Sessions
	guests     GuestTokens
	access     AccessTokens
	aud        AuditLog
	status     func(context.Context) any
	backup     Backupper
	info       func(*http.Request) (string, string)
	maxBody    int64
	retryAfter string
	log        *zap.Logger
	now        func() time.Time
	mux        *http.ServeMux
	cop        *http.CrossOriginProtection
}

type tokenHash struct {
	name string
	sum  [sha256.Size]byte
}

var _ http.Handler = (*Handler)(nil)

// New checks opts and returns the Handler.
func New(o Options) (h *Handler, err error) {
	if o.Epochs == nil || o.Audit == nil {
		return nil, fmt.Errorf("%w: Epochs and Audit are required", ErrConfig)
	}
	h = &Handler{roles: slices.Clone(o.Roles), rc: o.RoleChecker, ep: o.Epochs, users: o.Users, sess: o.Sessions, guests: o.GuestTokens, access: o.AccessTokens, aud: o.Audit,
		status: o.Status, backup: o.Backup, info: o.RequestInfo, maxBody: o.MaxBody, log: o.Logger, mux: http.NewServeMux(),
		cop: http.NewCrossOriginProtection()}
	for _, t := range o.Tokens {
		b, err := hex.DecodeString(strings.TrimSpace(t.SHA256))
		if err != nil || len(b) != sha256.Size || t.Name == "" {
			return nil, fmt.Errorf("%w: admin token %q: want a name and a hex SHA-256", ErrConfig, t.Name)
		}
		var th tokenHash
		th.name = t.Name
		copy(th.sum[:], b)
		h.tokens = append(h.tokens, th)
	}
	if h.maxBody <= 0 {
		h.maxBody = 64 << 10
	}
	h.retryAfter = policy.RetryAfter(o.RetryAfter)
	if h.log == nil {
		h.log = zap.NewNop()
	}
	h.now = o.Now
	if h.now == nil {
		h.now = time.Now
	}
	defer func() {
		// ServeMux panics on a conflicting pattern; report it instead.
		if v := recover(); v != nil {
			h, err = nil, fmt.Errorf("%w: route: %v", ErrConfig, v)
		}
	}()
	routes := h.builtin()
	if h.guests != nil {
		routes = append(routes, h.guestTokenRoutes()...)
	}
	if h.access != nil {
		routes = append(routes, h.accessTokenRoutes()...)
	}
	for _, r := range append(routes, o.Routes...) {
		if r.Handle == nil || r.Method == "" || r.Event == "" {
			return nil, fmt.Errorf("%w: route %s %s needs Method, Event and Handle", ErrConfig, r.Method, r.Path)
		}
		h.mux.Handle(r.Method+" "+APIPrefix+strings.TrimPrefix(r.Path, "/"), h.route(r))
	}
	h.mux.Handle(APIPrefix, h.route(Route{Method: "*", Event: "admin.unknown", Handle: func(context.Context, *Call) (any, error) {
		return nil, &HTTPError{Code: http.StatusNotFound, Msg: "no such admin route"}
	}}))
	return h, nil
}

// ServeHTTP implements http.Handler for paths under APIPrefix.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// route wraps a handler with authentication, audit and JSON encoding.
func (h *Handler) route(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &Call{Request: r, maxBody: h.maxBody}
		if h.info != nil {
			c.RequestID, c.IP = h.info(r)
		}
		ev := audit.Event{Event: rt.Event, RequestID: c.RequestID, IP: c.IP, Details: map[string]any{"method": r.Method, "route": rt.Path}}
		actor, herr := h.authenticate(r)
		c.Actor = actor
		ev.Actor = actor
		if herr != nil {
			ev.Outcome, ev.Reason = audit.OutcomeDenied, herr.Msg
			h.refusal(r.Context(), ev)
			h.writeError(w, herr)
			return
		}
		res, err := rt.Handle(r.Context(), c)
		ev.Subject, ev.Note, ev.Reason = c.Subject, c.Note, c.Reason
		var sent bool
		if d, ok := res.(*Download); ok && err == nil {
			sent, err = d.send(r.Context(), w)
		}
		if err != nil && sent {
			// Cut short after the status went out: the client sees fewer
			// bytes than Content-Length said; the audit says why.
			ev.Outcome, ev.Reason = audit.OutcomeFailure, "write_failed"
			h.log.Warn("admin: download cut short", zap.String("route", rt.Path), zap.Error(err))
			h.emit(r.Context(), ev)
			return
		}
		if err != nil {
			he := h.httpError(err)
			ev.Outcome = audit.OutcomeFailure
			if ev.Reason == "" {
				ev.Reason = he.Msg
			}
			h.emit(r.Context(), ev)
			h.writeError(w, he)
			return
		}
		ev.Outcome = audit.OutcomeSuccess
		h.emit(r.Context(), ev)
		if !sent {
			writeJSON(w, http.StatusOK, res)
		}
	})
}

func (h *Handler) refusal(ctx context.Context, ev audit.Event) {
	if err := h.aud.Refusal(ctx, ev); err != nil {
		h.log.Warn("admin: audit event not recorded", zap.String("event", ev.Event), zap.Error(err))
	}
}

func (h *Handler) emit(ctx context.Context, ev audit.Event) {
	if err := h.aud.Emit(ctx, ev); err != nil {
		h.log.Warn("admin: audit event not recorded", zap.String("event", ev.Event), zap.Error(err))
	}
}

// authenticate returns the actor, or a 401/403. Reasons are fixed words:
// cross_origin, no_credential, bad_token, not_admin, identity_unavailable.
func (h *Handler) authenticate(r *http.Request) (string, *HTTPError) {
	if err := h.cop.Check(r); err != nil {
		// A cookie-authenticated admin's browser must not be driven by
		// another site (CSRF).
		return "anonymous", &HTTPError{Code: http.StatusForbidden, Msg: "cross_origin", Err: err}
	}
	tok, hasBearer := bearer(r.Header)
	if hasBearer && strings.HasPrefix(tok, TokenPrefix) {
		sum := sha256.Sum256([]byte(tok))
		name := ""
		for _, t := range h.tokens {
			// Every entry is compared, so timing tells nothing about
			// which (or whether one) matched.
			if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 {
				name = t.name
			}
		}
		if name == "" {
			return "anonymous", &HTTPError{Code: http.StatusUnauthorized, Msg: "bad_token"}
		}
		return "admin-token:" + name, nil
	}
	_, actor, herr := h.userAdmin(r)
	return actor, herr
}

// userAdmin identifies the Superset user behind r through the RoleChecker
// and requires a role in admin.roles. The API and the page share it, so
// both draw the line in the same place. Refusals are 401 no_credential,
// 503 identity_unavailable or 403 not_admin (with the user's actor).
func (h *Handler) userAdmin(r *http.Request) (Principal, string, *HTTPError) {
	if h.rc == nil {
		return Principal{}, "anonymous", &HTTPError{Code: http.StatusUnauthorized, Msg: "no_credential"}
	}
	p, err := h.rc.Roles(r.Context(), r)
	if err != nil {
		if errors.Is(err, ErrNoCredential) {
			return Principal{}, "anonymous", &HTTPError{Code: http.StatusUnauthorized, Msg: "no_credential", Err: err}
		}
		return Principal{}, "anonymous", &HTTPError{Code: http.StatusServiceUnavailable, Msg: "identity_unavailable", Err: err}
	}
	actor := "user:" + p.UserID
	for _, role := range p.Roles {
		if slices.Contains(h.roles, role) {
			return p, actor, nil
		}
	}
	return p, actor, &HTTPError{Code: http.StatusForbidden, Msg: "not_admin"}
}

// bearer reads "Authorization: Bearer <token>" (scheme case-insensitive).
// The query string is never consulted: it lands in access logs.
func bearer(h http.Header) (string, bool) {
	v := h.Get("Authorization")
	scheme, tok, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// isNotFound reports an error that means "no such thing", whichever
// package said it.
func isNotFound(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, store.ErrNotFound) ||
		errors.Is(err, session.ErrNotFound) || errors.Is(err, accesstoken.ErrNotFound)
}

// httpError maps an error to its answer, in one place.
func (h *Handler) httpError(err error) *HTTPError {
	var he *HTTPError
	switch {
	case errors.As(err, &he):
		return he
	case errors.Is(err, store.ErrUnavailable):
		return &HTTPError{Code: http.StatusServiceUnavailable, Msg: "store_unavailable", Err: err}
	case isNotFound(err):
		return &HTTPError{Code: http.StatusNotFound, Msg: "not_found", Err: err}
	}
	return &HTTPError{Code: http.StatusInternalServerError, Msg: "internal_error", Err: err}
}

func (h *Handler) writeError(w http.ResponseWriter, e *HTTPError) {
	if e.Err != nil {
		h.log.Info("admin: call refused or failed", zap.Int("status", e.Code), zap.String("msg", e.Msg), zap.Error(e.Err))
	}
	switch e.Code {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="superset-gateway admin"`)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", h.retryAfter)
	}
	writeJSON(w, e.Code, map[string]string{"error": e.Msg})
}

// Download is a Handle result sent as a file instead of JSON (a store
// backup). Write writes the body and calls size with its exact length
// before the first byte; an error before that is answered like any
// handler error, one after it cuts the body short of its Content-Length.
type Download struct {
	Name  string // offered file name
	Write func(ctx context.Context, w io.Writer, size func(int64)) (int64, error)
}

func (d *Download) send(ctx context.Context, w http.ResponseWriter) (sent bool, err error) {
	_, err = d.Write(ctx, w, func(n int64) {
		sent = true
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.FormatInt(n, 10))
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": d.Name}))
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	})
	return sent, err
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"internal_error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// NewToken returns a new admin API token and the hex SHA-256 to put in
// admin.tokens_file. The token is shown once and stored nowhere.
func NewToken() (token, sha256hex string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("admin: token: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token), nil
}

// HashToken is the hex SHA-256 of an admin token, as configured.
func HashToken(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}
