package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// WhoAmIVia returns a WhoAmIFunc that sends GET /api/v1/me/ with the jar's
// cookies through rt, normally the upstream pool (which fills in the scheme
// and host of the node it picks). now is the clock used to drop expired jar
// cookies; nil means time.Now.
func WhoAmIVia(rt http.RoundTripper, now func() time.Time) WhoAmIFunc {
	if now == nil {
		now = time.Now
	}
	return func(ctx context.Context, jar Jar) (string, string, error) {
		req := (&http.Request{
			Method: http.MethodGet,
			URL:    &url.URL{Path: "/api/v1/me/"},
			Header: http.Header{"Accept": {"application/json"}},
		}).WithContext(ctx)
		if h := jar.CookieHeader(now()); h != "" {
			req.Header.Set("Cookie", h)
		}
		resp, err := rt.RoundTrip(req)
		if err != nil {
			return "", "", fmt.Errorf("session: whoami: %w", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err != nil {
			return "", "", fmt.Errorf("session: whoami: %w", err)
		}
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusUnauthorized:
			return "", "", nil
		default:
			return "", "", fmt.Errorf("session: whoami: status %d", resp.StatusCode)
		}
		var me struct {
			Result struct {
				ID       json.Number `json:"id"`
				Username string      `json:"username"`
			} `json:"result"`
		}
		if err := json.Unmarshal(body, &me); err != nil {
			return "", "", fmt.Errorf("session: whoami: %w", err)
		}
		if me.Result.ID == "" {
			// A guest user has no id; nobody is signed in.
			return "", "", nil
		}
		if _, err := strconv.ParseInt(me.Result.ID.String(), 10, 64); err != nil {
			return "", "", errors.New("session: whoami: non-integer user id")
		}
		return me.Result.ID.String(), me.Result.Username, nil
	}
}
