package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"time"
)

// fixtures is fixtures.json: what the first Start created through the API.
type fixtures struct {
	// AdminID is the admin's Superset user id: the gateway's service user.
	AdminID       int    `json:"admin_id"`
	DashboardID   int    `json:"dashboard_id"`
	DashboardSlug string `json:"dashboard_slug"`
	EmbedUUID     string `json:"embed_uuid"`
}

// ensureFixtures loads fixtures.json or, on a home's first start, creates
// the fixtures through Superset's own API, the way an operator would:
// admin's password is replaced by the home's, alice (Alpha) and bob (Gamma)
// are created, and one dashboard gets embedding enabled.
func (s *Superset) ensureFixtures(ctx context.Context, baseURL string) error {
	if b, err := os.ReadFile(s.path("fixtures.json")); err == nil {
		var f fixtures
		if err := json.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("harness: fixtures.json: %w", err)
		}
		s.fixture = &f
		return nil
	}
	t0 := time.Now()
	a, err := newAPI(ctx, baseURL, "admin", s.set.TemplateAdminPassword)
	if err != nil {
		// A previous, interrupted first start may have changed it already.
		if a, err = newAPI(ctx, baseURL, "admin", s.set.AdminPassword); err != nil {
			return err
		}
	}
	var me struct {
		Result struct {
			ID int `json:"id"`
		} `json:"result"`
	}
	if err := a.do(ctx, http.MethodGet, "/api/v1/me/", nil, &me); err != nil {
		return err
	}
	if err := a.do(ctx, http.MethodPut, fmt.Sprintf("/api/v1/security/users/%d", me.Result.ID),
		map[string]any{"password": s.set.AdminPassword}, nil); err != nil {
		return err
	}
	var roles struct {
		Result []struct {
			ID   int    `json:"id"`
			Name string `json:"name"`
		} `json:"result"`
	}
	if err := a.do(ctx, http.MethodGet, "/api/v1/security/roles/?q=(page_size:100)", nil, &roles); err != nil {
		return err
	}
	roleID := map[string]int{}
	for _, r := range roles.Result {
		roleID[r.Name] = r.ID
	}
	for _, u := range []struct{ name, first, role, pw string }{
		{"alice", "Alice", "Alpha", s.set.AlicePassword},
		{"bob", "Bob", "Gamma", s.set.BobPassword},
	} {
		if roleID[u.role] == 0 {
			return fmt.Errorf("harness: role %s not found", u.role)
		}
		body := map[string]any{
			"username": u.name, "first_name": u.first, "last_name": "Example",
			"email": u.name + "@example.com", "password": u.pw,
			"active": true, "roles": []int{roleID[u.role]},
		}
		if err := a.do(ctx, http.MethodPost, "/api/v1/security/users/", body, nil); err != nil {
			return err
		}
	}
	// Superset's own APIs want X-CSRFToken plus the session cookie that
	// holds the raw token, even with a Bearer JWT.
	if err := a.fetchCSRF(ctx); err != nil {
		return err
	}
	f := fixtures{DashboardSlug: "gateway-e2e", AdminID: me.Result.ID}
	var dash struct {
		ID int `json:"id"`
	}
	if err := a.do(ctx, http.MethodPost, "/api/v1/dashboard/", map[string]any{
		"dashboard_title": "Gateway E2E", "slug": f.DashboardSlug, "published": true,
	}, &dash); err != nil {
		return err
	}
	f.DashboardID = dash.ID
	var emb struct {
		Result struct {
			UUID string `json:"uuid"`
		} `json:"result"`
	}
	if err := a.do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/dashboard/%d/embedded", dash.ID),
		map[string]any{"allowed_domains": []string{}}, &emb); err != nil {
		return err
	}
	f.EmbedUUID = emb.Result.UUID
	if f.DashboardID == 0 || f.EmbedUUID == "" {
		return fmt.Errorf("harness: dashboard fixture incomplete: %+v", f)
	}
	b, _ := json.MarshalIndent(f, "", "  ")
	if err := os.WriteFile(s.path("fixtures.json"), b, 0o600); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	s.fixture = &f
	s.logf("fixtures created in %s (dashboard %d, embed %s)", time.Since(t0).Round(time.Millisecond), f.DashboardID, f.EmbedUUID)
	return nil
}

// api is a minimal Superset API client: a Bearer JWT from
// /api/v1/security/login, and a cookie jar for the CSRF session.
type api struct {
	base   string
	client *http.Client
	bearer string
	csrf   string
}

func newAPI(ctx context.Context, base, user, password string) (*api, error) {
	jar, _ := cookiejar.New(nil)
	a := &api{base: base, client: &http.Client{Jar: jar, Timeout: 60 * time.Second}}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := a.do(ctx, http.MethodPost, "/api/v1/security/login", map[string]any{
		"username": user, "password": password, "provider": "db", "refresh": false,
	}, &tok); err != nil {
		return nil, err
	}
	a.bearer = tok.AccessToken
	return a, nil
}

func (a *api) fetchCSRF(ctx context.Context) error {
	var r struct {
		Result string `json:"result"`
	}
	if err := a.do(ctx, http.MethodGet, "/api/v1/security/csrf_token/", nil, &r); err != nil {
		return err
	}
	a.csrf = r.Result
	return nil
}

var errStatus = errors.New("harness: unexpected status")

func (a *api) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("harness: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+a.bearer)
	}
	if a.csrf != "" {
		req.Header.Set("X-CSRFToken", a.csrf)
		req.Header.Set("Referer", a.base+"/")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("harness: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%w: %s %s: %d %s", errStatus, method, path, resp.StatusCode, tail(b, 500))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("harness: %s %s: %w", method, path, err)
		}
	}
	return nil
}
