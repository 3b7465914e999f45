package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/apijwt"
)

// ErrNoServiceUser is returned by everything that needs to call Superset as
// the service user when superset.service_user_id is not configured.
var ErrNoServiceUser = errors.New("superset.service_user_id is not set: the gateway cannot call Superset's API on its own account")

// ServiceIdentity mints the service user's Superset access JWTs. Minting
// with Superset's JWT secret works whatever AUTH_TYPE Superset uses and
// needs no stored password; the token is short-lived and reused until a
// minute before it expires. Build it with NewServiceIdentity; a nil one,
// or one without a user, answers ErrNoServiceUser.
type ServiceIdentity struct {
	key    []byte
	userID int
	now    func() time.Time

	mu  sync.Mutex
	tok string
	exp time.Time
}

// NewServiceIdentity mints as Superset user userID with Superset's JWT
// secret key; now nil means time.Now.
func NewServiceIdentity(key []byte, userID int, now func() time.Time) *ServiceIdentity {
	if now == nil {
		now = time.Now
	}
	return &ServiceIdentity{key: key, userID: userID, now: now}
}

// serviceTokenTTL is the lifetime of a minted service token.
const serviceTokenTTL = 5 * time.Minute

// Bearer returns a valid access JWT for the service user.
func (s *ServiceIdentity) Bearer() (string, error) {
	if s == nil || s.userID <= 0 {
		return "", ErrNoServiceUser
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.tok != "" && now.Before(s.exp.Add(-time.Minute)) {
		return s.tok, nil
	}
	tok, err := apijwt.Mint(s.key, apijwt.MintOptions{
		Subject: strconv.Itoa(s.userID), Type: apijwt.Access, TTL: serviceTokenTTL, Now: now,
	})
	if err != nil {
		return "", fmt.Errorf("service user token: %w", err)
	}
	s.tok, s.exp = tok, now.Add(serviceTokenTTL)
	return tok, nil
}

// Through is a Superset API client whose requests go through rt, the
// gateway's upstream pool, which fills in scheme and host.
func Through(rt http.RoundTripper) *Client {
	return &Client{
		BaseURL: "http://superset",
		HTTP:    &http.Client{Transport: rt, Timeout: 15 * time.Second},
	}
}

// isUUID reports the hyphenated form of the embed uuids Superset hands
// out (any case).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// AliasResolver finds every name a dashboard goes by in guest tokens: its
// numeric id, its slug and its embed uuid, asking Superset as the service
// user. It implements guesttoken.Resolver.
type AliasResolver struct {
	API      *Client
	Identity *ServiceIdentity
}

// Aliases resolves ref (numeric id, slug or embed uuid) through Superset's
// API. Any failure is an error: a revocation must not stamp half the names.
func (r AliasResolver) Aliases(ctx context.Context, ref string) ([]string, error) {
	bearer, err := r.Identity.Bearer()
	if err != nil {
		return nil, err
	}
	var uuid string
	key := ref
	if isUUID(ref) {
		e, err := r.API.EmbeddedByUUID(ctx, bearer, ref)
		if err != nil {
			return nil, fmt.Errorf("embedded dashboard %s: %w", ref, err)
		}
		if e.DashboardID == "" {
			return nil, fmt.Errorf("embedded dashboard %s: Superset named no dashboard", ref)
		}
		uuid, key = e.UUID, e.DashboardID
		if uuid == "" {
			uuid = ref
		}
	}
	d, err := r.API.Dashboard(ctx, bearer, key)
	if err != nil {
		return nil, fmt.Errorf("dashboard %s: %w", key, err)
	}
	if d.ID <= 0 {
		return nil, fmt.Errorf("dashboard %s: Superset returned no id", key)
	}
	id := strconv.Itoa(d.ID)
	if uuid == "" {
		e, err := r.API.EmbeddedDashboard(ctx, bearer, id)
		switch {
		case err == nil:
			uuid = e.UUID
		case StatusCode(err) == http.StatusNotFound:
			// Not embedded: tokens can only name the id.
		default:
			return nil, fmt.Errorf("dashboard %s embedding: %w", id, err)
		}
	}
	aliases := []string{id}
	if d.Slug != "" {
		aliases = append(aliases, d.Slug)
	}
	if uuid != "" {
		aliases = append(aliases, uuid)
	}
	return aliases, nil
}
