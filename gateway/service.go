package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/apijwt"
	"github.com/superset-gateway/superset-gateway/superset/client"
)

// errNoServiceUser is returned by everything that needs to call Superset as
// the service user when superset.service_user_id is not configured.
var errNoServiceUser = errors.New("superset.service_user_id is not set: the gateway cannot call Superset's API on its own account")

// serviceIdentity mints the service user's Superset access JWTs. Minting
// with Superset's JWT secret works whatever AUTH_TYPE Superset uses and
// needs no stored password; the token is short-lived and reused until a
// minute before it expires.
type serviceIdentity struct {
	key    []byte
	userID int
	now    func() time.Time

	mu  sync.Mutex
	tok string
	exp time.Time
}

// serviceTokenTTL is the lifetime of a minted service token.
const serviceTokenTTL = 5 * time.Minute

// Bearer returns a valid access JWT for the service user.
func (s *serviceIdentity) Bearer() (string, error) {
	if s == nil || s.userID <= 0 {
		return "", errNoServiceUser
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

// newServiceClient is a Superset API client whose requests go through the
// current upstream pool (the pool fills in scheme and host).
func newServiceClient(pool http.RoundTripper) *client.Client {
	return &client.Client{
		BaseURL: "http://superset",
		HTTP:    &http.Client{Transport: pool, Timeout: 15 * time.Second},
	}
}

// uuidRe matches the embed uuids Superset hands out (any case).
var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// aliasResolver finds every name a dashboard goes by in guest tokens: its
// numeric id, its slug and its embed uuid. It implements guesttoken.Resolver.
type aliasResolver struct {
	api *client.Client
	id  *serviceIdentity
}

// Aliases resolves ref (numeric id, slug or embed uuid) through Superset's
// API. Any failure is an error: a revocation must not stamp half the names.
func (r aliasResolver) Aliases(ctx context.Context, ref string) ([]string, error) {
	bearer, err := r.id.Bearer()
	if err != nil {
		return nil, err
	}
	var uuid string
	key := ref
	if uuidRe.MatchString(ref) {
		e, err := r.api.EmbeddedByUUID(ctx, bearer, ref)
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
	d, err := r.api.Dashboard(ctx, bearer, key)
	if err != nil {
		return nil, fmt.Errorf("dashboard %s: %w", key, err)
	}
	if d.ID <= 0 {
		return nil, fmt.Errorf("dashboard %s: Superset returned no id", key)
	}
	id := strconv.Itoa(d.ID)
	if uuid == "" {
		e, err := r.api.EmbeddedDashboard(ctx, bearer, id)
		switch {
		case err == nil:
			uuid = e.UUID
		case client.StatusCode(err) == http.StatusNotFound:
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
