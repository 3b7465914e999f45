package fakesuperset

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/superset-gateway/superset-gateway/superset"
)

// apiKey is one row of Flask-AppBuilder 5.3.0's ab_api_key, as the fake
// keeps it (the key itself only as its hash, like FAB's lookup_hash).
type apiKey struct {
	uuid      string
	name      string
	userID    int
	scopes    *string
	created   time.Time
	expires   *time.Time
	revoked   *time.Time
	lastUsed  *time.Time
	keyPrefix string
}

func keyHash(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}

// extractAPIKey is FAB 5.3.0's extract_api_key_from_request: the header,
// "bearer " matched case-insensitively, the rest stripped of Python
// whitespace, then a configured prefix.
func (f *Fake) extractAPIKey(r *http.Request) (string, bool) {
	h := strings.Join(r.Header.Values("Authorization"), ",")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	tok := h[7:]
	for len(tok) > 0 && superset.IsPySpace(tok[0]) {
		tok = tok[1:]
	}
	for len(tok) > 0 && superset.IsPySpace(tok[len(tok)-1]) {
		tok = tok[:len(tok)-1]
	}
	if tok == "" {
		return "", false
	}
	for _, p := range f.apiKeyPrefixes() {
		if strings.HasPrefix(tok, p) {
			return tok, true
		}
	}
	return "", false
}

func (f *Fake) apiKeyPrefixes() []string {
	if len(f.opt.APIKeyPrefixes) > 0 {
		return f.opt.APIKeyPrefixes
	}
	return []string{"sst_"}
}

// validateAPIKey is FAB 5.3.0's validate_api_key: a known, active (not
// revoked, not expired) key of an active user; it stamps last_used_on.
func (f *Fake) validateAPIKey(key string, now time.Time) *User {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := f.apiKeys[keyHash(key)]
	if k == nil || k.revoked != nil || (k.expires != nil && k.expires.Before(now)) {
		return nil
	}
	u := f.users[k.userID]
	if u == nil || !u.Active {
		return nil
	}
	k.lastUsed = &now
	cp := *u
	return &cp
}

func apiKeyJSON(k *apiKey) map[string]any {
	dt := func(t *time.Time) any {
		if t == nil {
			return nil
		}
		return fabTime(*t)
	}
	// "active" is FAB's column, which nothing in 5.3.0 ever clears:
	// revocation sets revoked_on, expiry is only compared at validation.
	return map[string]any{"uuid": k.uuid, "name": k.name, "key_prefix": k.keyPrefix, "scopes": k.scopes,
		"active": true, "created_on": fabTime(k.created), "expires_on": dt(k.expires),
		"revoked_on": dt(k.revoked), "last_used_on": dt(k.lastUsed)}
}

// fabTime is how marshmallow dumps FAB's naive datetime.now() columns:
// ISO 8601 without a zone (the fake's clock in UTC).
func fabTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000") }

func (f *Fake) listAPIKeys(r *http.Request, st *reqState) resp {
	u := st.caller()
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []any{}
	for _, k := range f.apiKeys {
		if k.userID == u.ID {
			out = append(out, apiKeyJSON(k))
		}
	}
	return jsonResp(http.StatusOK, map[string]any{"result": out})
}

func (f *Fake) createAPIKey(r *http.Request, st *reqState) resp {
	u := st.caller()
	var in struct {
		Name      *string    `json:"name"`
		Scopes    *string    `json:"scopes"`
		ExpiresOn *time.Time `json:"expires_on"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Name == nil {
		return jsonResp(http.StatusBadRequest, map[string]any{"message": map[string]any{"name": []string{"Missing data for required field."}}})
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	prefix := f.apiKeyPrefixes()[0]
	key := prefix + base64.RawURLEncoding.EncodeToString(b)
	ub := make([]byte, 16)
	_, _ = rand.Read(ub)
	ub[6], ub[8] = ub[6]&0x0f|0x40, ub[8]&0x3f|0x80
	h := hex.EncodeToString(ub)
	k := &apiKey{uuid: h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], name: *in.Name,
		userID: u.ID, scopes: in.Scopes, created: st.now, expires: in.ExpiresOn, keyPrefix: prefix}
	f.mu.Lock()
	f.apiKeys[keyHash(key)] = k
	f.mu.Unlock()
	return jsonResp(http.StatusCreated, map[string]any{"result": map[string]any{"uuid": k.uuid, "name": k.name,
		"key": key, "key_prefix": prefix, "scopes": k.scopes, "created_on": fabTime(k.created), "expires_on": nil}})
}

// ownKey finds the caller's key by uuid; FAB answers 404 for another
// user's key as for no key.
func (f *Fake) ownKey(r *http.Request, st *reqState) *apiKey {
	uuid, u := r.PathValue("uuid"), st.caller()
	for _, k := range f.apiKeys {
		if k.uuid == uuid && k.userID == u.ID {
			return k
		}
	}
	return nil
}

func (f *Fake) getAPIKey(r *http.Request, st *reqState) resp {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := f.ownKey(r, st)
	if k == nil {
		return jsonResp(http.StatusNotFound, map[string]any{"message": "Not found"})
	}
	return jsonResp(http.StatusOK, map[string]any{"result": apiKeyJSON(k)})
}

func (f *Fake) revokeAPIKey(r *http.Request, st *reqState) resp {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := f.ownKey(r, st)
	if k == nil {
		return jsonResp(http.StatusNotFound, map[string]any{"message": "Not found"})
	}
	now := st.now
	k.revoked = &now
	return jsonResp(http.StatusOK, map[string]any{"message": "API key revoked"})
}
