//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/superset-gateway/superset-gateway/e2e/browser"
	"github.com/superset-gateway/superset-gateway/superset/conformance"
)

// TestMenuLinks (issue 19): with the COMMON_BOOTSTRAP_OVERRIDES_FUNC block
// of e2e/superset/superset_config.py (the one docs/deploy.md gives
// operators), Superset 6.1's own React navbar shows "Access tokens" and
// "Sessions" under Settings to a signed-in user of any role, and following
// them with the mouse lands on the gateway's pages. "Gateway admin" is shown
// to Admins only.
func TestMenuLinks(t *testing.T) {
	e := shared(t)
	g := startGateway(t, e)
	tg := e.c.Target

	for _, tc := range []struct {
		name  string
		who   conformance.Credentials
		admin bool
	}{
		{"Gamma", tg.Gamma, false},
		{"Admin", tg.Admin, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Tall enough for an Admin's whole Settings dropdown.
			b := browser.ForTest(t, browser.Options{WindowHeight: 1600})
			browserLogin(t, b, g.URL, tc.who)
			for _, l := range []struct{ label, path, marker string }{
				{"Access tokens", "/-/tokens", "token"},
				{"Sessions", "/-/sessions", "ession"},
			} {
				links := openSettings(t, b, g.URL)
				if got := links[l.label]; got != l.path {
					t.Fatalf("Settings menu: %q links to %q, want %q (links: %v)", l.label, got, l.path, links)
				}
				_, isAdmin := links["Gateway admin"]
				if isAdmin != tc.admin {
					t.Errorf("Settings menu shows Gateway admin: %v, want %v (links: %v)", isAdmin, tc.admin, links)
				}
				clickMenuLink(t, b, l.label)
				u, err := b.WaitURL(func(u string) bool { return strings.HasPrefix(u, g.URL+l.path) })
				if err != nil {
					t.Fatalf("after clicking %q: %v", l.label, err)
				}
				// The gateway's own page, not Superset's 404 page.
				body, err := b.Text("body")
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(body, l.marker) || strings.Contains(body, "Page not found") {
					t.Errorf("%s: not the gateway's page: %.300q", u, body)
				}
			}
		})
	}

	t.Run("Anonymous", func(t *testing.T) {
		// The login page's menu_data is an anonymous user's: no links.
		b := browser.ForTest(t, browser.Options{})
		if err := b.Navigate(g.URL + "/login/"); err != nil {
			t.Fatal(err)
		}
		if err := b.WaitVisible(`input[data-test="username-input"]`); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(b.Context(), 30*time.Second)
		defer cancel()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](
			`JSON.stringify(JSON.parse(document.getElementById("app").dataset.bootstrap).common.menu_data).split("/-/tokens").length - 1`))
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("anonymous login page's menu_data links /-/tokens %d times", n)
		}
	})
}

// openSettings goes to Superset's welcome page through the gateway at
// base, hovers the navbar's "Settings" like a mouse user (antd opens the
// dropdown on hover) and returns the dropdown's links, label → href.
func openSettings(t *testing.T, b *browser.Browser, base string) map[string]string {
	t.Helper()
	if err := b.Navigate(base + "/superset/welcome/"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.Context(), 60*time.Second)
	defer cancel()
	var pos struct{ X, Y float64 }
	for {
		p, err := chromedp.Run(ctx, chromedp.Evaluate[*struct{ X, Y float64 }](`(() => {
  const el = [...document.querySelectorAll(".ant-menu-submenu-title")].find(e => e.textContent.trim() === "Settings");
  if (!el) return null;
  const r = el.getBoundingClientRect();
  return {X: r.x + r.width / 2, Y: r.y + r.height / 2};
})()`))
		if err != nil {
			t.Fatal(err)
		}
		if p != nil {
			pos = *p
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("no Settings menu in Superset's navbar")
		case <-time.After(200 * time.Millisecond):
		}
	}
	if _, err := chromedp.Run(ctx, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, pos.X, pos.Y)); err != nil {
		t.Fatal(err)
	}
	for {
		links, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`(() => {
  const out = {};
  for (const a of document.querySelectorAll(".ant-menu-submenu-popup a")) {
    if (a.offsetParent !== null) out[a.textContent.trim()] = a.getAttribute("href");
  }
  return out;
})()`))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := links["Logout"]; ok {
			return links
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the Settings dropdown did not open (links seen: %v)", links)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// clickMenuLink clicks the visible link labelled label in the open
// dropdown with the mouse, once the dropdown's opening animation is over
// (the link stays put and is what the pointer would hit).
func clickMenuLink(t *testing.T, b *browser.Browser, label string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), 30*time.Second)
	defer cancel()
	var last *struct{ X, Y float64 }
	for {
		p, err := chromedp.Run(ctx, chromedp.Evaluate[*struct{ X, Y float64 }](fmt.Sprintf(`(() => {
  const a = [...document.querySelectorAll(".ant-menu-submenu-popup a")].find(a => a.offsetParent !== null && a.textContent.trim() === %q);
  if (!a) return null;
  a.scrollIntoView({block: "nearest"});
  const r = a.getBoundingClientRect();
  const x = r.x + r.width / 2, y = r.y + r.height / 2;
  return a.contains(document.elementFromPoint(x, y)) ? {X: x, Y: y} : null;
})()`, label)))
		if err != nil {
			t.Fatal(err)
		}
		if p != nil && last != nil && *p == *last {
			break
		}
		last = p
		select {
		case <-ctx.Done():
			t.Fatalf("no visible, clickable %q link in the open menu", label)
		case <-time.After(150 * time.Millisecond):
		}
	}
	if _, err := chromedp.Run(ctx, chromedp.MouseClickXY(last.X, last.Y)); err != nil {
		t.Fatal(err)
	}
}
