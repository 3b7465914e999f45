package admin

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/client"
)

// MeRolesOptions configure NewMeRolesChecker. Client and Credentials are
// required.
type MeRolesOptions struct {
	// Client calls Superset directly (not through the gateway).
	Client *client.Client
	// Credentials returns the caller's upstream credentials: the Superset
	// cookies of a valid gateway session, or a Bearer JWT that jwtguard
	// accepted (epochs included). It returns an error wrapping
	// ErrNoCredential when the request has none; a revoked or expired one
	// counts as none.
	Credentials func(r *http.Request) (client.Auth, error)
	// TTL is how long an answer is reused for the same credentials; 0
	// means 10s. A role taken away in Superset lasts that long here.
	TTL time.Duration
	// Size bounds the cache; 0 means 1000.
	Size int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// MeRolesChecker is a RoleChecker over GET /api/v1/me/roles/, cached
// briefly by a hash of the credentials.
type MeRolesChecker struct {
	o  MeRolesOptions
	mu sync.Mutex
	m  map[[32]byte]rolesEntry
}

type rolesEntry struct {
	p       Principal
	expires time.Time
}

var _ RoleChecker = (*MeRolesChecker)(nil)

// NewMeRolesChecker returns a MeRolesChecker.
func NewMeRolesChecker(o MeRolesOptions) (*MeRolesChecker, error) {
	if o.Client == nil || o.Credentials == nil {
		return nil, fmt.Errorf("%w: MeRolesOptions.Client and Credentials are required", ErrConfig)
	}
	if o.TTL <= 0 {
		o.TTL = 10 * time.Second
	}
	if o.Size <= 0 {
		o.Size = 1000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &MeRolesChecker{o: o, m: map[[32]byte]rolesEntry{}}, nil
}

// Roles implements RoleChecker. Superset's 401 means no credential.
func (m *MeRolesChecker) Roles(ctx context.Context, r *http.Request) (Principal, error) {
	a, err := m.o.Credentials(r)
	if err != nil {
		return Principal{}, err
	}
	if a.Bearer == "" && len(a.Cookies) == 0 {
		return Principal{}, ErrNoCredential
	}
	k := credKey(a)
	now := m.o.Now()
	m.mu.Lock()
	e, ok := m.m[k]
	m.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.p, nil
	}
	mr, err := m.o.Client.MeRoles(ctx, a)
	if err != nil {
		if code := client.StatusCode(err); code == http.StatusUnauthorized || code == http.StatusUnprocessableEntity {
			return Principal{}, fmt.Errorf("%w: Superset: %w", ErrNoCredential, err)
		}
		return Principal{}, fmt.Errorf("admin: roles: %w", err)
	}
	names := mr.RoleNames()
	slices.Sort(names)
	p := Principal{UserID: strconv.Itoa(mr.UserID), Username: mr.Username, Roles: names}
	m.mu.Lock()
	if len(m.m) >= m.o.Size {
		clear(m.m)
	}
	m.m[k] = rolesEntry{p: p, expires: now.Add(m.o.TTL)}
	m.mu.Unlock()
	return p, nil
}

func credKey(a client.Auth) [32]byte {
	h := sha256.New()
	h.Write([]byte(a.Bearer))
	for _, c := range a.Cookies {
		h.Write([]byte{0})
		h.Write([]byte(c.Name))
		h.Write([]byte{1})
		h.Write([]byte(c.Value))
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}
