//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/e2e/harness"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/internal/slapdtest"
)

// The pool of shared Supersets, one per login configuration (sign-in
// method × Superset's session backend). A Superset start costs 30-60 s on
// a loaded CI machine, so every test that needs the same configuration
// shares one: started on first use, stopped by TestMain. Tests on a pooled
// Superset, like those on the shared one, only read or change what they
// create (their own gateway, store, users).

// loginMethod is how Superset signs users in (its AUTH_TYPE).
type loginMethod string

const (
	methodForm       loginMethod = "form"        // AUTH_DB, the login form
	methodOAuth      loginMethod = "oauth"       // AUTH_OAUTH against the test IdP (oauth_test.go)
	methodRemoteUser loginMethod = "remote_user" // AUTH_REMOTE_USER from remoteUserHeader
	methodLDAP       loginMethod = "ldap"        // AUTH_LDAP against a slapd the pool starts (ldap_test.go)
)

// sessionBackend is where Superset keeps its sessions.
type sessionBackend string

const (
	backendCookie sessionBackend = "cookie" // Flask's signed client-side cookie (the default)
	backendRedis  sessionBackend = "redis"  // SESSION_SERVER_SIDE = True on a Redis the pool starts
)

// poolKey names one pooled configuration.
type poolKey struct {
	method  loginMethod
	backend sessionBackend
}

func (k poolKey) String() string { return string(k.method) + "/" + string(k.backend) }

// pooledSuperset is one running configuration of the pool.
type pooledSuperset struct {
	key poolKey
	s   *harness.Superset
	c   *harness.Cluster
	// rd is Superset's session Redis (backendRedis only).
	rd *redistest.Server
	// idp is the OAuth provider Superset is configured for (methodOAuth
	// only); it signs in one user, okta_<idp.sub>.
	idp *idp
	// dir is the directory Superset signs in against (methodLDAP only),
	// holding admin, alice and bob with their harness passwords.
	dir *slapdtest.Server
	// closers undo what the method's setup started, in reverse.
	closers []func()
}

// pooledMethods are the methods the pool can start, each with both
// session backends.
func pooledMethods() []loginMethod {
	return []loginMethod{methodForm, methodOAuth, methodRemoteUser, methodLDAP}
}

// setupMethod prepares Superset's options for method m and starts what the
// method needs outside Superset (a provider, a directory), recording on ps
// what tests need of it; the returned func stops it.
func setupMethod(m loginMethod, o *harness.Options, ps *pooledSuperset) (func(), error) {
	switch m {
	case methodForm:
		return func() {}, nil
	case methodOAuth:
		// FAB imports authlib only under AUTH_OAUTH; say so plainly if missing.
		if _, err := os.Stat(filepath.Join(o.Venv, "lib", "python3.11", "site-packages", "authlib")); err != nil {
			return nil, fmt.Errorf("authlib is not installed in %s (FAB's oauth extra; install.sh must install it): %w", o.Venv, err)
		}
		ps.idp = newIdP("carol", "carol@example.com")
		o.OAuth = &harness.OAuthProvider{
			Name: oauthProvider, ClientID: ps.idp.clientID, ClientSecret: ps.idp.secret,
			AuthorizeURL: ps.idp.URL + "/authorize", TokenURL: ps.idp.URL + "/token", APIBaseURL: ps.idp.URL + "/",
		}
		return ps.idp.Close, nil
	case methodRemoteUser:
		o.RemoteUserHeader = remoteUserHeader
		// gunicorn before 22 (and --header-map dangerous) maps '_' and
		// '-' alike, so X_Remote_User reaches Superset as the trusted
		// header: the worst case for a header smuggled past the gateway,
		// which TestCanonicalUnderscoreRemoteUser relies on. Sign-ins
		// through the sign-on proxy are unaffected.
		o.GunicornArgs = []string{"--header-map", "dangerous"}
		return func() {}, nil
	case methodLDAP:
		// newLDAPEnv (ldap_test.go) starts the directory with Superset.
		return func() {}, nil
	}
	return nil, fmt.Errorf("pool: no method %q", m)
}

// supersetPool holds one start-once function per configuration; the map
// is built once and only read after, so it needs no lock.
type supersetPool struct {
	get map[poolKey]func() (*pooledSuperset, error)

	mu      sync.Mutex
	started []*pooledSuperset // what close must stop, in start order
	starts  int               // Superset starts made by the pool
}

// pool is the package's pool; TestMain closes it.
var pool = newSupersetPool()

func newSupersetPool() *supersetPool {
	p := &supersetPool{get: map[poolKey]func() (*pooledSuperset, error){}}
	for _, m := range pooledMethods() {
		for _, b := range []sessionBackend{backendCookie, backendRedis} {
			k := poolKey{m, b}
			p.get[k] = sync.OnceValues(func() (*pooledSuperset, error) { return p.start(k) })
		}
	}
	// AUTH_DB with cookie sessions is the package's shared Superset: no
	// second start for it.
	p.get[poolKey{methodForm, backendCookie}] = sync.OnceValues(func() (*pooledSuperset, error) {
		e, err := sharedEnv()
		if err != nil {
			return nil, err
		}
		return &pooledSuperset{key: poolKey{methodForm, backendCookie}, s: e.s, c: e.c}, nil
	})
	// AUTH_LDAP with cookie sessions is the LDAP tests' shared Superset
	// (ldap_test.go), stopped by TestMain with it.
	p.get[poolKey{methodLDAP, backendCookie}] = sync.OnceValues(func() (*pooledSuperset, error) {
		e, err := sharedLDAPEnv()
		if err != nil {
			return nil, err
		}
		return &pooledSuperset{key: poolKey{methodLDAP, backendCookie}, s: e.s, c: e.c, dir: e.dir}, nil
	})
	return p
}

// start bootstraps and starts k's Superset (one node) with what it needs.
func (p *supersetPool) start(k poolKey) (ps *pooledSuperset, err error) {
	ps = &pooledSuperset{key: k}
	defer func() {
		if err != nil {
			ps.close()
			ps = nil
		}
	}()
	o := harness.Options{Venv: os.Getenv("SUPERSET_VENV"), Log: os.Stderr}
	undo, err := setupMethod(k.method, &o, ps)
	if err != nil {
		return ps, fmt.Errorf("pool %s: %w", k, err)
	}
	ps.closers = append(ps.closers, undo)
	switch k.backend {
	case backendCookie:
	case backendRedis:
		if ps.rd, err = redistest.StartDetached(redistest.Options{}); err != nil {
			return ps, fmt.Errorf("pool %s: %w", k, err)
		}
		o.RedisURL = ps.rd.URL()
	default:
		return ps, fmt.Errorf("pool: no session backend %q", k.backend)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t0 := time.Now()
	p.mu.Lock()
	p.starts++
	p.mu.Unlock()
	if k.method == methodLDAP {
		// The directory with the harness's people, and Superset on it.
		e, err := newLDAPEnv(ctx, o)
		if err != nil {
			return ps, fmt.Errorf("pool %s: %w", k, err)
		}
		ps.s, ps.c, ps.dir = e.s, e.c, e.dir
		ps.closers = append(ps.closers, e.dir.Close)
	} else {
		if ps.s, err = harness.Bootstrap(ctx, o); err != nil {
			return ps, fmt.Errorf("pool %s: %w", k, err)
		}
		if ps.c, err = ps.s.Start(ctx, 1); err != nil {
			return ps, fmt.Errorf("pool %s: %w", k, err)
		}
	}
	if got := ps.c.Target.ServerSideSessions; got != (k.backend == backendRedis) {
		return ps, fmt.Errorf("pool %s: the target reports server-side sessions %v", k, got)
	}
	fmt.Fprintf(os.Stderr, "e2e: pool: Superset %s up in %s\n", k, time.Since(t0).Round(time.Millisecond))
	p.mu.Lock()
	p.started = append(p.started, ps)
	p.mu.Unlock()
	return ps, nil
}

// close stops every Superset the pool started (not the shared one, which
// TestMain stops) and what came with it, and reports how many it started.
func (p *supersetPool) close() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ps := range p.started {
		ps.close()
	}
	p.started = nil
	return p.starts
}

func (ps *pooledSuperset) close() {
	if ps.c != nil {
		ps.c.Stop()
	}
	if ps.s != nil {
		ps.s.Close()
	}
	if ps.rd != nil {
		ps.rd.Close()
	}
	for i := len(ps.closers) - 1; i >= 0; i-- {
		ps.closers[i]()
	}
}

// supersetFor returns the pool's running Superset for k, starting it on
// first use; its logs are printed if t fails.
func supersetFor(t *testing.T, k poolKey) *pooledSuperset {
	t.Helper()
	get, ok := pool.get[k]
	if !ok {
		t.Fatalf("no pooled Superset for %s", k)
	}
	ps, err := get()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(ps.c.Logs())
		}
	})
	return ps
}
