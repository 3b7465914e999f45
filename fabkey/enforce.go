package fabkey

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/internal/invalidate"
	"github.com/superset-gateway/superset-gateway/internal/ttlcache"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/principal"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/superset/client"
)

// secretLen is the length of what FAB 5.3.0 puts after the prefix:
// secrets.token_urlsafe(32), 32 random bytes in unpadded base64url.
const secretLen = 43

// Store keys and the invalidation channel of the key registry.
const (
	registryPrefix = "fabkey:key:"  // + sha256(key) hex → registryRecord
	uuidPrefix     = "fabkey:uuid:" // + FAB's key uuid → sha256(key) hex
	channel        = "fabkey"
)

// registryTTL bounds how long the registry remembers a key; FAB keys have
// no expiry unless their creator gave one, so this is long, and a key
// forgotten by it is refused as unknown (make a new one).
const registryTTL = 400 * 24 * time.Hour

// maxCreateResponse bounds the POST /api/v1/security/api_keys/ answer the
// gateway reads (FAB's is a few hundred bytes).
const maxCreateResponse = 64 << 10

// registryRecord is what the gateway learnt when a key was made through
// it: FAB's uuid for the key, and when the creating request reached the
// gateway. That time is before FAB's created_on, so a key made before an
// epoch is never taken as made after it; FAB's created_on itself is a
// naive datetime.now() of Superset's host, whose time zone the gateway does
// not know.
type registryRecord struct {
	UUID     string `json:"uuid"`
	IssuedMS int64  `json:"issued_ms"`
}

// resolved is a key the gateway checked with Superset, cached by the
// key's hash.
type resolved struct {
	userID   string
	username string
	uuid     string
	issued   time.Time
	scopes   []string
	// refused is Superset's verdict on a key it no longer takes (revoked,
	// unresolved), cached like an answer so that replaying a dead key
	// costs Superset one call per TTL, not one per request.
	refused policy.Reason
}

// keyState is the enforcer's request state in principal.Exchange.TokenState.
type keyState struct {
	key    string
	scopes []string
}

// EnforcerOptions configure NewEnforcer. Store and Superset are required.
type EnforcerOptions struct {
	// Prefixes are superset.fab_api_key_prefixes.
	Prefixes []string
	// Store holds the registry of keys made through the gateway.
	Store store.Store
	// Superset is the client the keys are resolved with (through the
	// upstream pool); each call authenticates with the key itself.
	Superset *client.Client
	// CacheTTL bounds how long a resolved key is trusted without asking
	// Superset again (revocation at Superset, not through this gateway,
	// takes effect within it); 0 means 30s.
	CacheTTL  time.Duration
	CacheSize int // 0 means 10 000
	Now       func() time.Time
	Logger    *zap.Logger
}

// Enforcer is the "enforce" choice of superset.fab_api_keys: a key acts as
// its owner, checked against the owner's epoch and limited to its stored
// scopes, which are read as gateway access-token scopes.
type Enforcer struct {
	d      *Detector
	st     store.Store
	api    *client.Client
	cache  *ttlcache.Cache[string, resolved]
	ttl    time.Duration
	rules  *policy.ScopeRules
	now    func() time.Time
	log    *zap.Logger
	prefix []string
}

// NewEnforcer checks o and returns an Enforcer. Call Start to follow the
// other replicas' key deletions.
func NewEnforcer(o EnforcerOptions) (*Enforcer, error) {
	if o.Store == nil || o.Superset == nil {
		return nil, errors.New("fabkey: Store and Superset are required")
	}
	e := &Enforcer{d: NewDetector(o.Prefixes), st: o.Store, api: o.Superset, ttl: o.CacheTTL,
		rules: policy.NewScopeRules(), now: o.Now, log: o.Logger}
	e.prefix = e.d.prefixes
	if e.ttl <= 0 {
		e.ttl = 30 * time.Second
	}
	size := o.CacheSize
	if size <= 0 {
		size = 10_000
	}
	e.cache = ttlcache.New[string, resolved](size)
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = zap.NewNop()
	}
	return e, nil
}

// Start follows deletions made through other replicas until ctx is done.
func (e *Enforcer) Start(ctx context.Context) error {
	return invalidate.Start(ctx, invalidate.Options{Store: e.st, Channel: channel, Logger: e.log,
		Evict: func(b []byte) { e.cache.Delete(string(b)) }, Clear: e.cache.Clear})
}

// Hash is how the gateway names a key everywhere it keeps or logs one:
// hex sha256 of the key. The key itself is never kept.
func Hash(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}

// WellFormed reports whether key is one of prefixes followed by exactly
// what FAB 5.3.0 generates after it (43 base64url characters).
func WellFormed(key string, prefixes []string) bool {
	for _, p := range prefixes {
		rest, ok := strings.CutPrefix(key, p)
		if !ok || len(rest) != secretLen {
			continue
		}
		good := true
		for i := 0; i < len(rest); i++ {
			c := rest[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				good = false
				break
			}
		}
		if good {
			return true
		}
	}
	return false
}

// Authenticate resolves a FAB API key to its owner: the registry (keys
// made through the gateway) names FAB's uuid for it, and Superset, asked
// with the key itself, confirms it is live and its owner's
// (GET /api/v1/security/api_keys/<uuid>: its scopes) and who that owner is
// (GET /api/v1/me/). The result is cached by the key's hash for CacheTTL.
// A store or Superset failure is err (the pipeline answers 503): the key
// is neither accepted nor refused on a guess.
func (e *Enforcer) Authenticate(ctx context.Context, r *http.Request, x *principal.Exchange) (principal.Principal, policy.Decision, error) {
	key, ok := e.d.Key(r.Header)
	if !ok {
		return principal.Principal{}, policy.Decision{Allow: true}, nil
	}
	p := principal.Principal{Kind: principal.FABAPIKey}
	// Only the one spelling both Superset readers agree on is resolved;
	// anything else FAB would not even see as a key.
	if fab, _ := fabReading(strings.Join(r.Header.Values("Authorization"), ",")); fab != key || !WellFormed(key, e.prefix) {
		return p, policy.Decision{Reason: policy.ReasonMalformed}, nil
	}
	h := Hash(key)
	now := e.now()
	res, hit := e.cache.Get(h, now)
	if !hit {
		gen := e.cache.Generation()
		var d policy.Decision
		var err error
		res, d, err = e.resolve(ctx, key, h)
		if err != nil {
			return p, d, err
		}
		if !d.Allow && d.Reason != policy.ReasonFABAPIKeyUnknown {
			res.refused = d.Reason
		}
		if !d.Allow && res.refused == "" {
			return p, d, nil // unknown: a store read, nothing to remember
		}
		e.cache.PutIf(gen, h, res, now.Add(e.ttl), now)
	}
	if res.refused != "" {
		return p, policy.Decision{Reason: res.refused}, nil
	}
	p.UserID, p.Username, p.IssuedAt, p.Granularity, p.ID = res.userID, res.username, res.issued, time.Millisecond, res.uuid
	if len(res.scopes) == 0 {
		// Checked after the owner is known, so the refusal names them.
		return p, policy.Decision{Reason: policy.ReasonFABAPIKeyNoScopes}, nil
	}
	x.TokenState = &keyState{key: key, scopes: res.scopes}
	return p, policy.Decision{Allow: true}, nil
}

func (e *Enforcer) resolve(ctx context.Context, key, h string) (resolved, policy.Decision, error) {
	raw, err := e.st.Get(ctx, registryPrefix+h)
	if errors.Is(err, store.ErrNotFound) {
		return resolved{}, policy.Decision{Reason: policy.ReasonFABAPIKeyUnknown}, nil
	}
	if err != nil {
		return resolved{}, policy.Decision{}, fmt.Errorf("fabkey: registry: %w", err)
	}
	var rec registryRecord
	if err := json.Unmarshal(raw, &rec); err != nil || rec.UUID == "" {
		return resolved{}, policy.Decision{Reason: policy.ReasonFABAPIKeyUnknown}, nil
	}
	var info struct {
		Result struct {
			UUID      string  `json:"uuid"`
			Scopes    *string `json:"scopes"`
			Active    bool    `json:"active"`
			RevokedOn *string `json:"revoked_on"`
		} `json:"result"`
	}
	if err := e.api.Get(ctx, "/api/v1/security/api_keys/"+rec.UUID, client.Auth{Bearer: key}, &info); err != nil {
		return resolved{}, refusalFor(err), unavailable(err)
	}
	if info.Result.UUID != rec.UUID || !info.Result.Active || info.Result.RevokedOn != nil {
		return resolved{}, policy.Decision{Reason: policy.ReasonTokenRevoked}, nil
	}
	me, err := e.api.Me(ctx, client.Auth{Bearer: key})
	if err != nil {
		return resolved{}, refusalFor(err), unavailable(err)
	}
	if me.ID <= 0 {
		return resolved{}, policy.Decision{Reason: policy.ReasonTokenRevoked}, nil
	}
	return resolved{userID: strconv.Itoa(me.ID), username: me.Username, uuid: rec.UUID,
		issued: time.UnixMilli(rec.IssuedMS), scopes: ParseScopes(info.Result.Scopes)}, policy.Decision{Allow: true}, nil
}

// refusalFor is the decision for Superset's answer to a resolution call:
// 401 and 404 mean the key is not (or no longer) valid, or not this
// owner's (revoked, expired, deleted, owner deactivated); 403 means the
// owner may not read their own keys (no can_get on ApiKey), so the
// gateway cannot learn the key's scopes. Anything else is unavailable.
func refusalFor(err error) policy.Decision {
	switch client.StatusCode(err) {
	case http.StatusUnauthorized, http.StatusNotFound:
		return policy.Decision{Reason: policy.ReasonTokenRevoked}
	case http.StatusForbidden:
		return policy.Decision{Reason: policy.ReasonFABAPIKeyUnresolved}
	}
	return policy.Decision{}
}

// unavailable is err unless Superset answered with a status refusalFor
// decides on.
func unavailable(err error) error {
	switch client.StatusCode(err) {
	case http.StatusUnauthorized, http.StatusNotFound, http.StatusForbidden:
		return nil
	}
	return fmt.Errorf("fabkey: resolve: %w", err)
}

// ParseScopes reads FAB's stored scopes (a comma-separated string, or
// null) as gateway access-token scope names, trimmed, empty entries
// dropped. A name that is not a gateway scope grants nothing
// (policy.ScopeRules.Allow).
func ParseScopes(s *string) []string {
	if s == nil {
		return nil
	}
	var out []string
	for _, f := range strings.Split(*s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Authorize is stage 5: the key's scopes for r, by the access tokens'
// route table.
func (e *Enforcer) Authorize(_ context.Context, r *http.Request, x *principal.Exchange) policy.Decision {
	st, _ := x.TokenState.(*keyState)
	if st == nil {
		return policy.Decision{Reason: policy.ReasonFABAPIKeyUnknown}
	}
	return e.rules.Allow(st.scopes, r.Method, r.URL.Path)
}

// Inject is stage 6: Superset gets the key in the one spelling the gateway
// resolved, and nothing else that authenticates (the pipeline removed the
// cookies).
func (e *Enforcer) Inject(r *http.Request, x *principal.Exchange) {
	if st, _ := x.TokenState.(*keyState); st != nil {
		r.Header.Set("Authorization", "Bearer "+st.key)
	}
}

// Check lets FAB's management routes through: under enforce, keys are
// made and revoked at Superset, through the gateway, which watches
// (ModifyResponse).
func (e *Enforcer) Check(*http.Request) policy.Decision { return policy.Decision{Allow: true} }

// ModifyResponse watches FAB's management routes: a key made (POST, 201)
// goes into the registry with the time its request reached the gateway; a
// key revoked (DELETE /<uuid>, 200) leaves it and every replica's cache at
// once.
func (e *Enforcer) ModifyResponse(resp *http.Response) error {
	r := resp.Request
	if r == nil || !IsManagementPath(r.URL.Path) {
		return nil
	}
	ctx := r.Context()
	switch {
	case r.Method == http.MethodPost && resp.StatusCode == http.StatusCreated:
		return e.register(ctx, resp)
	case r.Method == http.MethodDelete && resp.StatusCode == http.StatusOK:
		uuid := strings.TrimSuffix(strings.TrimPrefix(canonicalPath(r.URL.Path), ManagementPath+"/"), "/")
		e.forget(ctx, uuid)
	}
	return nil
}

func (e *Enforcer) register(ctx context.Context, resp *http.Response) error {
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCreateResponse+1))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("fabkey: read the new key: %w", err)
	}
	var out struct {
		Result struct {
			UUID string `json:"uuid"`
			Key  string `json:"key"`
		} `json:"result"`
	}
	if len(b) > maxCreateResponse || json.Unmarshal(b, &out) != nil || out.Result.UUID == "" || out.Result.Key == "" {
		e.log.Warn("a FAB API key was made but its answer could not be read; the key will be refused as unknown")
		return nil
	}
	start := e.now()
	if x := principal.ExchangeFrom(ctx); x != nil && !x.Start.IsZero() {
		start = x.Start
	}
	h := Hash(out.Result.Key)
	rec, _ := json.Marshal(registryRecord{UUID: out.Result.UUID, IssuedMS: start.UnixMilli()})
	// The uuid → hash entry first: a key in the registry can always be
	// found again by the uuid its DELETE names.
	if err := e.st.Set(ctx, uuidPrefix+out.Result.UUID, []byte(h), registryTTL); err == nil {
		err = e.st.Set(ctx, registryPrefix+h, rec, registryTTL)
		if err == nil {
			return nil
		}
	}
	// The key exists at Superset, but the gateway will refuse it as
	// unknown: said in the log (never the key), and the client still
	// gets Superset's answer so they can revoke it.
	e.log.Warn("a FAB API key was made but not registered (store unavailable); it will be refused as unknown",
		zap.String("key_uuid", out.Result.UUID), zap.Error(err))
	return nil
}

func (e *Enforcer) forget(ctx context.Context, uuid string) {
	if uuid == "" || strings.Contains(uuid, "/") {
		return
	}
	h, err := e.st.Get(ctx, uuidPrefix+uuid)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			e.log.Warn("a revoked FAB API key stays cached until its TTL (store unavailable)", zap.String("key_uuid", uuid), zap.Error(err))
		}
		return
	}
	e.cache.Delete(string(h))
	if err := e.st.Delete(ctx, registryPrefix+string(h), uuidPrefix+uuid); err != nil {
		e.log.Warn("a revoked FAB API key stays in the registry (Superset refuses it)", zap.String("key_uuid", uuid), zap.Error(err))
	}
	if err := e.st.Publish(ctx, channel, h); err != nil {
		e.log.Warn("other replicas keep a revoked FAB API key until their cache TTL", zap.Error(err))
	}
}
