package epoch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/principal"
	"github.com/superset-gateway/superset-gateway/superset"
)

// Stamper is what the hook and the reconciler need from *Epochs.
type Stamper interface {
	Stamp(ctx context.Context, userID string, why Reason) (int64, error)
}

// HookOptions configure NewHook. Epochs is required.
type HookOptions struct {
	Epochs Stamper
	// RequestInfo gives the request id and client address for the stamp's
	// audit event; nil leaves them empty. Who acted is the request's
	// principal (principal.Exchange).
	RequestInfo func(*http.Request) (requestID, ip string)
	// MaxBody bounds the request body Capture reads to decide; 0 means
	// 64 KiB. A longer (or unparsable) body is passed on intact and, if
	// Superset accepts it, stamped as if it disabled the user: the gateway
	// cannot tell, so it fails closed.
	MaxBody int64
	// StampTimeout bounds the stamp after Superset answered; 0 means 5s.
	// The stamp does not depend on the client staying connected.
	StampTimeout time.Duration
	// RetryAfter is sent with the 503 that replaces Superset's answer when
	// a stamp fails; 0 means 5s.
	RetryAfter time.Duration
	// Logger may be nil.
	Logger *zap.Logger
}

// Hook stamps epochs from Superset's own user-administration traffic. The
// gateway calls Capture after authentication (refused requests are not
// read) and StampResponse first among the response hooks, before the
// session vault's, which reads Exchange.SelfStamped.
type Hook struct {
	ep         Stamper
	info       func(*http.Request) (string, string)
	maxBody    int64
	timeout    time.Duration
	retryAfter string
	log        *zap.Logger
}

// NewHook checks opts and returns a Hook.
func NewHook(o HookOptions) (*Hook, error) {
	if o.Epochs == nil {
		return nil, fmt.Errorf("%w: HookOptions.Epochs is required", ErrConfig)
	}
	h := &Hook{ep: o.Epochs, info: o.RequestInfo, maxBody: o.MaxBody, timeout: o.StampTimeout, log: o.Logger}
	if h.maxBody <= 0 {
		h.maxBody = 64 << 10
	}
	if h.timeout <= 0 {
		h.timeout = 5 * time.Second
	}
	h.retryAfter = policy.RetryAfter(o.RetryAfter)
	if h.log == nil {
		h.log = zap.NewNop()
	}
	return h, nil
}

// captured is what Capture learnt from a user-administration request,
// kept in principal.Exchange.StampState for StampResponse.
type captured struct {
	parsed   bool // the body was read whole and understood
	disable  bool // "active" present and not true
	password bool // a password was set
}

// Capture is the request-path half: for the user-administration routes
// whose effect depends on the body (PUT /api/v1/security/users/<pk>,
// PUT /api/v1/me/, POST /users/edit/<pk>) it reads at most MaxBody bytes,
// decides what the request asks for and restores the body intact (the
// bytes read, then the rest of the original stream). Other requests pass
// untouched.
//
// It refuses (policy.ReasonBadUserID) user-administration requests whose
// target id is not a canonical decimal ("03", "3.0", "+3", a repeated
// pk=): Superset's database may well resolve them to user 3, but the
// gateway would stamp the wrong key or none.
func (h *Hook) Capture(r *http.Request, x *principal.Exchange) policy.Decision {
	if oddTarget(r.Method, r.URL) {
		return policy.Decision{Reason: policy.ReasonBadUserID}
	}
	_, kind := superset.UserAdminActionURL(r.Method, r.URL)
	if kind == superset.UserAdminNone {
		return policy.Decision{Allow: true}
	}
	c := &captured{}
	switch kind {
	case superset.UserUpdate, superset.MeUpdate, superset.LegacyUserEdit:
		b, whole := h.readBody(r)
		if whole {
			if kind == superset.LegacyUserEdit {
				c.parsed, c.disable = parseEditForm(r.Header.Get("Content-Type"), b)
			} else {
				c.parsed, c.disable, c.password = parseUserJSON(b)
			}
		}
	}
	x.StampState = c
	return policy.Decision{Allow: true}
}

// canonicalID reports whether s is a decimal id as Superset prints one.
func canonicalID(s string) bool {
	if s == "" || len(s) > 18 || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// oddTarget reports a request to a user-changing route whose target id is
// not canonical.
func oddTarget(method string, u *url.URL) bool {
	p := strings.TrimSuffix(u.Path, "/")
	seg := func(prefix string) (string, bool) {
		rest, ok := strings.CutPrefix(p, prefix)
		if !ok || rest == "" || strings.Contains(rest, "/") {
			return "", false
		}
		return rest, true
	}
	switch method {
	case http.MethodPut, http.MethodDelete, http.MethodPatch:
		if id, ok := seg("/api/v1/security/users/"); ok {
			return !canonicalID(id)
		}
		if id, ok := superset.UserSessionsTarget(p); ok && method == http.MethodDelete {
			return !canonicalID(id)
		}
	case http.MethodPost, http.MethodGet:
		for _, prefix := range []string{"/users/edit/", "/users/delete/"} {
			if id, ok := seg(prefix); ok {
				return !canonicalID(id)
			}
		}
		if method == http.MethodPost && p == "/resetpassword/form" {
			pks := u.Query()["pk"]
			return len(pks) > 1 || len(pks) == 1 && !canonicalID(pks[0])
		}
	}
	return false
}

// readBody reads up to maxBody bytes and puts them back in front of what is
// left. whole reports that the body ended within the limit without error.
func (h *Hook) readBody(r *http.Request) (b []byte, whole bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	orig := r.Body
	b, err := io.ReadAll(io.LimitReader(orig, h.maxBody+1))
	whole = err == nil && int64(len(b)) <= h.maxBody
	r.Body = restoredBody{Reader: io.MultiReader(bytes.NewReader(b), orig), Closer: orig}
	return b, whole
}

type restoredBody struct {
	io.Reader
	io.Closer
}

// truthy is marshmallow's Boolean.truthy set (FAB's user schema): any
// other value of "active" either disables the user or is refused with 400.
func truthy(raw json.RawMessage) bool {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	switch x := v.(type) {
	case bool:
		return x
	case float64:
		return x == 1
	case string:
		switch x {
		case "t", "T", "true", "True", "TRUE", "on", "On", "ON", "y", "Y", "yes", "Yes", "YES", "1":
			return true
		}
	}
	return false
}

// parseUserJSON reads a users-API or /me/ body. Keys are matched exactly
// and the last duplicate wins, as with Python's json module.
func parseUserJSON(b []byte) (parsed, disable, password bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil || m == nil {
		return false, false, false
	}
	if a, ok := m["active"]; ok && !truthy(a) {
		disable = true
	}
	_, password = m["password"]
	return true, disable, password
}

// parseEditForm reads FAB's user edit form: an unchecked "active" box is
// absent, and WTForms' BooleanField treats "" and "false" as unchecked.
// Only urlencoded bodies are understood; a multipart one is "not parsed".
func parseEditForm(contentType string, b []byte) (parsed, disable bool) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return false, false
	}
	v, err := url.ParseQuery(string(b))
	if err != nil {
		return false, false
	}
	a := v["active"]
	return true, len(a) == 0 || a[0] == "" || a[0] == "false"
}

// StampResponse is the response-path half, for proxy Options.ModifyResponse.
// It stamps only when Superset reports success: a 2xx for the JSON APIs; a
// 302/303 whose Location is not the login page for the legacy FAB forms
// (which answer a failed validation with 200 and a denial or CSRF failure
// with a redirect to /login/). What it stamps:
//
//   - PUT /api/v1/security/users/<pk> with a password (password_changed) or
//     "active" not true (user_disabled); a body Capture did not parse is
//     treated as disabling;
//   - DELETE /api/v1/security/users/<pk>, POST /users/delete/<pk>
//     (user_deleted);
//   - DELETE /api/v1/security/users/<pk>/sessions (sessions_ended; Superset
//     master, unreleased: 6.1.0 answers 404, which stamps nothing);
//   - POST /users/edit/<pk> with the active box unchecked (user_disabled);
//   - POST /resetpassword/form?pk=<pk> (password_changed);
//   - PUT /api/v1/me/ with a password, POST /resetmypassword/form and PUT
//     /api/v1/me/password (a later Superset master, unreleased): the caller
//     (password_changed), reported by SelfStamped.
//
// If the store does not accept the stamp, Superset's answer is replaced by
// 503 with Retry-After (the change may have happened upstream, but the
// gateway cannot promise the revocation; repeating the request stamps). It
// never returns an error.
func (h *Hook) StampResponse(resp *http.Response) error {
	req := resp.Request
	if req == nil {
		return nil
	}
	pk, kind := superset.UserAdminActionURL(req.Method, req.URL)
	if kind == superset.UserAdminNone || !(succeeded(kind, resp) || uncertain(kind, resp)) {
		return nil
	}
	x := principal.ExchangeFrom(req.Context())
	if x == nil {
		x = &principal.Exchange{}
	}
	c, _ := x.StampState.(*captured)
	if c == nil {
		c = &captured{} // not captured: nothing parsed, fail closed
	}
	trigger, self := "", false
	switch kind {
	case superset.UserUpdate:
		switch {
		case c.parsed && c.password:
			trigger = TriggerPasswordChanged
		case !c.parsed || c.disable:
			trigger = TriggerUserDisabled
		}
	case superset.UserDelete, superset.LegacyUserDelete:
		trigger = TriggerUserDeleted
	case superset.UserSessions:
		trigger = TriggerSessionsEnded
	case superset.LegacyUserEdit:
		if !c.parsed || c.disable {
			trigger = TriggerUserDisabled
		}
	case superset.ResetPassword:
		trigger = TriggerPasswordChanged
	case superset.MeUpdate:
		if !c.parsed || c.password {
			trigger, self = TriggerPasswordChanged, true
		}
	case superset.ResetMyPassword, superset.MePassword:
		trigger, self = TriggerPasswordChanged, true
	}
	if trigger == "" {
		return nil
	}
	who := x.Principal.UserID
	rid, ip := "", ""
	if h.info != nil {
		rid, ip = h.info(req)
	}
	if self {
		pk = who
		if kind == superset.MeUpdate || kind == superset.MePassword {
			// Superset answers with the user it acted on: authoritative,
			// whatever credentials the request carried.
			if id := meResultID(resp); id != "" {
				pk = id
			}
		}
	}
	why := Reason{Trigger: trigger, Actor: actorOf(who), RequestID: rid, IP: ip}
	if pk == "" {
		h.log.Error("epoch: a password change succeeded upstream but its user is unknown",
			zap.String("request_id", rid), zap.String("kind", kind.String()))
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), h.timeout)
	defer cancel()
	v, err := h.ep.Stamp(ctx, pk, why)
	if err != nil {
		h.log.Error("epoch: stamp after a user change failed; answering 503",
			zap.String("request_id", rid), zap.String("kind", kind.String()), zap.Error(err))
		h.replace(resp)
		return nil
	}
	if self {
		// The session vault's hook runs next and re-issues the caller's
		// session with a login time after v, so it survives its own
		// password change while every other credential dies.
		x.SelfStamped = v
	}
	return nil
}

// succeeded tells Superset's success answer for kind.
func succeeded(kind superset.UserAdminKind, resp *http.Response) bool {
	switch kind {
	case superset.UserUpdate, superset.UserDelete, superset.MeUpdate, superset.UserSessions, superset.MePassword:
		return resp.StatusCode >= 200 && resp.StatusCode <= 299
	}
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		return false
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return false
	}
	p := loc.Path
	return !(p == "/login" || strings.HasPrefix(p, "/login/"))
}

// uncertain reports a server error from an admin's change to another
// user: whether it was committed is unknown (Superset 6.1.0's legacy
// /users/edit/ and /users/delete/ answer 500 under server-side sessions
// after committing, docs/superset-6.1.md §15), so the hook stamps as if it
// had succeeded. A needless stamp signs the user out; a missed one leaves
// a disabled user's credentials working until the reconciler's next run.
// A user's own changes are left out: stamping those would also end the
// caller's session over a change that may not have happened.
func uncertain(kind superset.UserAdminKind, resp *http.Response) bool {
	switch kind {
	case superset.MeUpdate, superset.ResetMyPassword, superset.MePassword:
		return false
	}
	return resp.StatusCode >= 500 && resp.StatusCode <= 599
}

// meResultID reads "result.id" from a PUT /api/v1/me/ answer (at most
// 1 MiB) and restores the body.
func meResultID(resp *http.Response) string {
	if resp.Body == nil {
		return ""
	}
	orig := resp.Body
	b, err := io.ReadAll(io.LimitReader(orig, 1<<20))
	resp.Body = restoredBody{Reader: io.MultiReader(bytes.NewReader(b), orig), Closer: orig}
	if err != nil {
		return ""
	}
	var out struct {
		Result struct {
			ID json.Number `json:"id"`
		} `json:"result"`
	}
	if json.Unmarshal(b, &out) != nil || !ValidUserID(out.Result.ID.String()) {
		return ""
	}
	return out.Result.ID.String()
}

func actorOf(userID string) string {
	if userID == "" {
		return "anonymous"
	}
	return "user:" + userID
}

func (h *Hook) replace(resp *http.Response) {
	body := []byte(`{"message":"The change may have been applied by Superset, but the gateway could not record the revocation. Retry."}`)
	if resp.Body != nil {
		_ = resp.Body.Close()
	}
	resp.StatusCode = http.StatusServiceUnavailable
	resp.Status = "503 Service Unavailable"
	resp.Header = http.Header{
		"Content-Type":   {"application/json"},
		"Cache-Control":  {"no-store"},
		"Retry-After":    {h.retryAfter},
		"Content-Length": {strconv.Itoa(len(body))},
	}
	resp.ContentLength = int64(len(body))
	resp.Body = io.NopCloser(bytes.NewReader(body))
}
