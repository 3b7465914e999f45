//go:build e2e

package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/superset-gateway/superset-gateway/e2e/browser"
	"github.com/superset-gateway/superset-gateway/e2e/harness"
	"github.com/superset-gateway/superset-gateway/extensions/bundle/bundletest"
)

// extensionBackend is an extension's backend: one public REST API that
// Superset mounts under /extensions/<publisher>/<name>/hello. The class
// name must differ between extensions: FAB names the blueprint after it,
// and a second extension's API of the same name fails to register.
func extensionBackend(ext string) []byte {
	return []byte(`from flask_appbuilder.api import expose
from superset_core.rest_api.api import RestApi
from superset_core.rest_api.decorators import api


@api(id="hello_api", name="Hello API")
class Hello` + strings.ToUpper(ext[:1]) + ext[1:] + `API(RestApi):
    @expose("/hello", methods=("GET",))
    def hello(self):
        return self.response(200, result={"ext": "` + ext + `"})
`)
}

// extensionBundle is a .supx with a frontend remote entry and a backend.
func extensionBundle(name string) []byte {
	m := bundletest.Manifest("acme", name, "1.0.0")
	mod := "acme_" + name
	m["backend"] = map[string]any{"entrypoint": mod + ".entry"}
	return bundletest.Zip(
		bundletest.Entry{Name: "manifest.json", Data: bundletest.JSON(m)},
		bundletest.Entry{Name: "frontend/dist/remoteEntry.js", Data: []byte("/*! leftpadx v4.17.21 */\nwindow.__sgw_ext_" + name + " = true;\n")},
		bundletest.Entry{Name: "backend/src/" + mod + "/__init__.py", Data: nil},
		bundletest.Entry{Name: "backend/src/" + mod + "/entry.py", Data: extensionBackend(name)},
	)
}

// extSuperset is one Superset 6.1.0 with ENABLE_EXTENSIONS and two
// extensions in EXTENSIONS_PATH (acme.good and acme.bad), for
// TestExtensions and its subtests; it stops when t ends.
func extSuperset(t *testing.T) (*harness.Superset, *harness.Cluster, string) {
	t.Helper()
	dir := t.TempDir()
	for _, n := range []string{"good", "bad"} {
		if err := os.WriteFile(filepath.Join(dir, "acme-"+n+".supx"), extensionBundle(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, c := ownSuperset(t, harness.Options{ExtensionsPath: dir})
	return s, c, dir
}

// TestExtensions runs the extension tests against one Superset.
func TestExtensions(t *testing.T) {
	s, c, dir := extSuperset(t)
	t.Run("SupersetFacts", func(t *testing.T) { testExtensionsSupersetFacts(t, s, c) })
	t.Run("Enforced", func(t *testing.T) { testExtensionsEnforced(t, s, c, dir) })
}

type extList struct {
	Result []struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		Version     string `json:"version"`
		RemoteEntry string `json:"remoteEntry"`
	} `json:"result"`
	Count int `json:"count"`
}

func bearerGet(t *testing.T, base, bearer, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func apiToken(t *testing.T, base string, s *harness.Superset, c *harness.Cluster) string {
	t.Helper()
	body := strings.NewReader(`{"username":"admin","password":"` + c.Target.Admin.Password + `","provider":"db","refresh":false}`)
	resp, err := http.Post(base+"/api/v1/security/login", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("login at %s: %d %v", base, resp.StatusCode, err)
	}
	return tok.AccessToken
}

// testExtensionsSupersetFacts checks, on Superset 6.1.0 directly, the
// routes and shapes the enforcement relies on (docs/superset-6.1.md).
func testExtensionsSupersetFacts(t *testing.T, s *harness.Superset, c *harness.Cluster) {
	node := c.Nodes[0].URL
	tok := apiToken(t, node, s, c)
	code, body := bearerGet(t, node, tok, "/api/v1/extensions/")
	var l extList
	if code != 200 || json.Unmarshal([]byte(body), &l) != nil || l.Count != 2 || len(l.Result) != 2 {
		t.Fatalf("list: %d %s", code, body)
	}
	for _, e := range l.Result {
		if e.RemoteEntry != "/api/v1/extensions/acme/"+e.Name+"/remoteEntry.js" || e.ID != "acme."+e.Name || e.Version != "1.0.0" {
			t.Errorf("entry %+v", e)
		}
	}
	if code, body := bearerGet(t, node, tok, "/api/v1/extensions/acme/bad/remoteEntry.js"); code != 200 || !strings.Contains(body, "__sgw_ext_bad") {
		t.Errorf("remote entry direct: %d %s", code, body)
	}
	if code, body := bearerGet(t, node, tok, "/extensions/acme/bad/hello"); code != 200 || !strings.Contains(body, `"ext"`) {
		t.Errorf("backend route direct: %d %s", code, body)
	}
	if code, _ := bearerGet(t, node, "", "/api/v1/extensions/"); code != 401 {
		t.Errorf("list without credentials: %d", code)
	}
}

// testExtensionsEnforced: through the gateway with acme.bad blocked, the
// list omits it (count fixed), its remote entry and backend route answer
// the refusal, and in Chromium the passing extension's remote entry loads
// while the failing one's is never fetched successfully.
func testExtensionsEnforced(t *testing.T, s *harness.Superset, c *harness.Cluster, dir string) {
	g := gatewayFor(t, s, []string{c.Nodes[0].URL},
		"extensions: {enabled: true, block: [acme.bad], bundles_dir: "+dir+", on_unavailable: open}")
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 20*time.Millisecond)))
	tok := apiToken(t, g.URL, s, c)

	code, body := bearerGet(t, g.URL, tok, "/api/v1/extensions/")
	var l extList
	if code != 200 || json.Unmarshal([]byte(body), &l) != nil || l.Count != 1 || len(l.Result) != 1 || l.Result[0].ID != "acme.good" {
		t.Fatalf("list through the gateway: %d %s", code, body)
	}
	for _, p := range []string{"/api/v1/extensions/acme/bad/remoteEntry.js", "/api/v1/extensions/acme/bad", "/extensions/acme/bad/hello",
		"/api/v1/extensions/acme/./bad/remoteEntry.js", "/api/v1/extensions/acme/bad%2fremoteEntry.js", "/EXTENSIONS/acme/bad/hello"} {
		code, body := bearerGet(t, g.URL, tok, p)
		if code == 200 || strings.Contains(body, "__sgw_ext_bad") || strings.Contains(body, `"ext"`) {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
	if code, body := bearerGet(t, g.URL, tok, "/extensions/acme/bad/hello"); code != 403 || !strings.Contains(body, "extension policy") {
		t.Errorf("backend route refusal: %d %s", code, body)
	}
	if code, body := bearerGet(t, g.URL, tok, "/api/v1/extensions/acme/good/remoteEntry.js"); code != 200 || !strings.Contains(body, "__sgw_ext_good") {
		t.Errorf("good remote entry: %d %s", code, body)
	}
	if code, body := bearerGet(t, g.URL, tok, "/extensions/acme/good/hello"); code != 200 || !strings.Contains(body, "good") {
		t.Errorf("good backend: %d %s", code, body)
	}

	// In Chromium: Superset's SPA fetches the list and loads each remote
	// entry it names.
	b := browser.ForTest(t, browser.Options{})
	type hit struct {
		url    string
		status int
	}
	var mu sync.Mutex
	var hits []hit
	open := map[network.RequestID]string{}
	if err := chromedp.Listen(b.Context(), func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			if ev.Request != nil && strings.Contains(ev.Request.URL, "/extensions/") {
				open[ev.RequestID] = ev.Request.URL
			}
		case *network.EventResponseReceived:
			if u, ok := open[ev.RequestID]; ok && ev.Response != nil {
				hits = append(hits, hit{u, int(ev.Response.Status)})
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	browserLogin(t, b, g.URL, c.Target.Admin)
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		got := append([]hit(nil), hits...)
		mu.Unlock()
		goodLoaded := false
		for _, h := range got {
			if strings.Contains(h.url, "/acme/bad/") && h.status == 200 {
				t.Fatalf("the blocked extension's file was served: %+v", h)
			}
			goodLoaded = goodLoaded || (strings.HasSuffix(h.url, "/api/v1/extensions/acme/good/remoteEntry.js") && h.status == 200)
		}
		if goodLoaded {
			if v, err := evalBool(b, "window.__sgw_ext_bad === true"); err != nil || v {
				t.Fatalf("the blocked extension ran in the page: %v %v", v, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the passing extension's remote entry never loaded; extension requests: %+v", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func evalBool(b *browser.Browser, expr string) (bool, error) {
	return chromedp.Run(b.Context(), chromedp.Evaluate[bool](expr))
}
