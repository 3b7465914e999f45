// Package embedded is the embedding application of `make demo`: a small
// host page that embeds a dashboard through the gateway with Superset's
// embedded SDK (@superset-ui/embedded-sdk, installed beside this file by
// install.sh), and a backend that fetches each guest token through the
// gateway, the way an embedding app's server does.
package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/superset-gateway/superset-gateway/e2e/harness"
)

// SDKBundle is the SDK's browser bundle as install.sh installs it,
// relative to the repository root.
const SDKBundle = "e2e/embedded/node_modules/@superset-ui/embedded-sdk/bundle/index.js"

// Minter returns a fresh guest token for the dashboard.
type Minter func(ctx context.Context) (string, error)

// HostOptions shape the host page.
type HostOptions struct {
	// SDK is the SDK bundle's JavaScript (read from SDKBundle).
	SDK []byte
	// Gateway is the gateway's origin, the SDK's supersetDomain.
	Gateway string
	// EmbedUUID is the embedded dashboard's uuid.
	EmbedUUID string
	// Mint answers GET /guest-token.
	Mint Minter
}

// NewHost returns the host page's handler: GET / (the page), GET /sdk.js
// and GET /guest-token ({"token": …}, 502 with the reason when the
// gateway refused to mint one).
func NewHost(o HostOptions) (http.Handler, error) {
	if len(o.SDK) == 0 || o.Gateway == "" || o.EmbedUUID == "" || o.Mint == nil {
		return nil, errors.New("embedded: HostOptions: SDK, Gateway, EmbedUUID and Mint are required")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = hostPage.Execute(w, o)
	})
	mux.HandleFunc("GET /sdk.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = w.Write(o.SDK)
	})
	mux.HandleFunc("GET /guest-token", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
		defer cancel()
		tok, err := o.Mint(ctx)
		if err != nil {
			http.Error(w, "guest token: "+err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(map[string]string{"token": tok})
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	return mux, nil
}

// ReadSDK reads the SDK bundle at path, saying how to install it if absent.
func ReadSDK(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("embedded: the SDK is not installed (%w): run make embedded-sdk (npm ci in e2e/embedded)", err)
	}
	return b, nil
}

// GatewayMinter mints guest tokens with POST /api/v1/security/guest_token/
// through the gateway at base, signed in to Superset's API as user (who
// needs can_grant_guest_token, i.e. an Admin). The API session is kept and
// made again once when a call fails (its access JWT expired, or the
// user's sessions were revoked).
func GatewayMinter(base, user, password, embedUUID string) Minter {
	var (
		mu  sync.Mutex
		api *harness.API
	)
	login := func(ctx context.Context) (*harness.API, error) {
		a, err := harness.NewAPI(ctx, base, user, password)
		if err != nil {
			return nil, err
		}
		if err := a.FetchCSRF(ctx); err != nil {
			return nil, err
		}
		return a, nil
	}
	mint := func(ctx context.Context, a *harness.API) (string, error) {
		var r struct {
			Token string `json:"token"`
		}
		err := a.Do(ctx, http.MethodPost, "/api/v1/security/guest_token/", map[string]any{
			"user":      map[string]any{"username": "demo-embed", "first_name": "Demo", "last_name": "Embed"},
			"resources": []map[string]any{{"type": "dashboard", "id": embedUUID}},
			"rls":       []any{},
		}, &r)
		if err == nil && r.Token == "" {
			err = errors.New("no token in the answer")
		}
		return r.Token, err
	}
	return func(ctx context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if api != nil {
			if tok, err := mint(ctx, api); err == nil {
				return tok, nil
			}
		}
		a, err := login(ctx)
		if err != nil {
			// A JWT issued in the second of a global stamp (a new store's
			// first start) is refused as revoked ("iat" has whole
			// seconds): a second later, a new one is not.
			select {
			case <-ctx.Done():
			case <-time.After(1100 * time.Millisecond):
				a, err = login(ctx)
			}
		}
		if err != nil {
			api = nil
			return "", fmt.Errorf("sign in to Superset's API through the gateway: %w", err)
		}
		api = a
		return mint(ctx, a)
	}
}

// hostPage loads the SDK from its own origin and embeds the dashboard from
// the gateway's (another site). It works without anything but the SDK.
var hostPage = template.Must(template.New("host").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>superset-gateway demo: an embedding app</title>
<script src="/sdk.js"></script>
<style>
body { font-family: Inter, "Helvetica Neue", Arial, sans-serif; margin: 1.5rem; color: #1f2937; }
#mount iframe { width: 100%; height: 720px; border: 1px solid #d1d5db; border-radius: 4px; }
#status { margin: .5rem 0; min-height: 1.5em; }
.error { color: #b91c1c; }
code { background: #f3f4f6; padding: 0 .25em; }
</style>
</head><body>
<h1>An embedding app</h1>
<p>This page is another site. It embeds the demo dashboard through the gateway
(<code>{{.Gateway}}</code>) with Superset's embedded SDK; its backend fetches each
guest token through the gateway. Revoke the dashboard's guest tokens (admin page
<a href="{{.Gateway}}/-/admin/">{{.Gateway}}/-/admin/</a>, or
<code>superset-gateway revoke guest-tokens --dashboard {{.EmbedUUID}}</code>) and the
embedded dashboard's next requests are refused; <em>Embed again</em> fetches a new
token, which works.</p>
<p><button type="button" id="again">Embed again</button></p>
<div id="status" role="status" aria-live="polite"></div>
<div id="mount"></div>
<script>
const status = document.getElementById("status");
function say(msg, err) { status.textContent = msg; status.className = err ? "error" : ""; }
window.embedErrors = [];
window.guestTokens = 0;
window.embed = async function () {
  say("embedding…");
  try {
    window.dash = await supersetEmbeddedSdk.embedDashboard({
      id: {{.EmbedUUID}},
      supersetDomain: {{.Gateway}},
      mountPoint: document.getElementById("mount"),
      fetchGuestToken: async () => {
        const r = await fetch("/guest-token");
        if (!r.ok) { throw new Error(await r.text()); }
        window.guestTokens++;
        return (await r.json()).token;
      },
      dashboardUiConfig: { hideTitle: false },
    });
    say("embedded with guest token #" + window.guestTokens);
  } catch (e) {
    window.embedErrors.push(String(e));
    say("could not embed: " + e, true);
  }
};
document.getElementById("again").addEventListener("click", () => window.embed());
window.embed();
</script>
</body></html>`))
