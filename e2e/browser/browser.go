// Package browser drives Debian's headless Chromium through chromedp for the
// end-to-end tests: a fresh profile per browser, no sandbox (CI runs as
// root), no background traffic, and small helpers to navigate, fill, click,
// read cookies and take a screenshot when a test fails.
package browser

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// DefaultExecPath is Debian's chromium.
const DefaultExecPath = "/usr/bin/chromium"

// Options shapes one browser. The zero value is valid.
type Options struct {
	// ExecPath is the Chromium binary; empty means DefaultExecPath.
	ExecPath string
	// Timeout bounds each helper call (navigate, fill, wait…); zero means 60s.
	Timeout time.Duration
	// WindowWidth and WindowHeight size the viewport; zero means 1280×900.
	WindowWidth, WindowHeight int
	// IgnoreCertificateErrors accepts any TLS certificate, for a gateway
	// serving a throw-away test certificate. Never for anything else.
	IgnoreCertificateErrors bool
	// AllowThirdPartyCookies sets the profile's cookie controls to allow
	// third-party cookies (Chrome's default; this Chromium blocks them by
	// default, reason "UserPreferences"), so that SameSite alone decides
	// what a cross-site iframe may store.
	AllowThirdPartyCookies bool
}

// Browser is one headless Chromium with one tab. Methods are not safe for
// concurrent use.
type Browser struct {
	ctx         context.Context // the tab
	cancelTab   context.CancelFunc
	cancelAlloc context.CancelFunc
	profile     string
	timeout     time.Duration
}

// New starts Chromium with a fresh temporary profile. Close stops it and
// removes the profile. The browser lives until Close even if ctx ends
// earlier only when ctx is never cancelled; pass a long-lived ctx.
func New(ctx context.Context, opts Options) (*Browser, error) {
	exe := opts.ExecPath
	if exe == "" {
		exe = DefaultExecPath
	}
	if _, err := os.Stat(exe); err != nil {
		return nil, fmt.Errorf("browser: chromium not installed: %w", err)
	}
	w, h := opts.WindowWidth, opts.WindowHeight
	if w == 0 || h == 0 {
		w, h = 1280, 900
	}
	profile, err := os.MkdirTemp("", "sgw-chromium-")
	if err != nil {
		return nil, fmt.Errorf("browser: profile: %w", err)
	}
	if opts.AllowThirdPartyCookies {
		// cookie_controls_mode 0: third-party cookies allowed.
		prefs := `{"profile": {"cookie_controls_mode": 0, "block_third_party_cookies": false}}`
		err := os.MkdirAll(filepath.Join(profile, "Default"), 0o700)
		if err == nil {
			err = os.WriteFile(filepath.Join(profile, "Default", "Preferences"), []byte(prefs), 0o600)
		}
		if err != nil {
			os.RemoveAll(profile)
			return nil, fmt.Errorf("browser: profile preferences: %w", err)
		}
	}
	// Start from nothing rather than chromedp.DefaultExecAllocatorOptions so
	// every flag is visible here.
	allocOpts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox, // root in CI: Chromium's sandbox refuses to run
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(w, h),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
	}
	if opts.IgnoreCertificateErrors {
		allocOpts = append(allocOpts, chromedp.Flag("ignore-certificate-errors", true))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, allocOpts...)
	tctx, cancelTab := chromedp.NewContext(actx)
	b := &Browser{ctx: tctx, cancelTab: cancelTab, cancelAlloc: cancelAlloc, profile: profile, timeout: opts.Timeout}
	if b.timeout == 0 {
		b.timeout = 60 * time.Second
	}
	// The first Do launches the browser, tied to the context it is given:
	// it must be the tab's own, not one with a per-call timeout.
	if err := chromedp.Do(tctx); err != nil {
		b.Close()
		return nil, fmt.Errorf("browser: start chromium: %w", err)
	}
	return b, nil
}

// Close stops Chromium and removes its profile.
func (b *Browser) Close() {
	b.cancelTab()
	b.cancelAlloc()
	os.RemoveAll(b.profile)
}

// do executes steps under the per-call timeout.
func (b *Browser) do(steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

// run executes one action that returns a value under the per-call timeout.
func run[T any](b *Browser, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// navigating reports whether err is Chromium saying the page it was asked
// about went away mid-call: the tab is between two documents, because a
// click or a redirect navigated it. Reading again a moment later is right;
// the CDP error code for it (-32000, "Inspected target navigated or
// closed", "Execution context was destroyed", "Cannot find context with
// specified id") carries no finer distinction.
func navigating(err error) bool {
	var ce *cdproto.Error
	return errors.As(err, &ce) && ce.Code == -32000
}

// read runs an action with no side effect, again while the tab is between
// documents, until the per-call timeout: a read racing a navigation the
// test just caused is not a failure of what the test checks.
func read[T any](b *Browser, a chromedp.Action[T]) (T, error) {
	deadline := time.Now().Add(b.timeout)
	for {
		v, err := run(b, a)
		if err == nil || !navigating(err) || time.Now().After(deadline) {
			return v, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Navigate loads url and waits for the page's load event.
func (b *Browser) Navigate(url string) error {
	if err := b.do(chromedp.Navigate(url)); err != nil {
		return fmt.Errorf("browser: navigate %s: %w", url, err)
	}
	return nil
}

// Fill waits for the element matching the CSS selector, clears it and
// types value.
func (b *Browser) Fill(sel, value string) error {
	if err := b.waitVisible(sel); err != nil {
		return fmt.Errorf("browser: fill %s: %w", sel, err)
	}
	if err := b.do(
		chromedp.Clear(chromedp.CSS(sel)),
		chromedp.SendKeys(chromedp.CSS(sel), value),
	); err != nil {
		return fmt.Errorf("browser: fill %s: %w", sel, err)
	}
	return nil
}

// Click waits for the element matching the CSS selector and clicks it.
func (b *Browser) Click(sel string) error {
	// The wait may race the navigation that brought the element; the
	// click itself runs once, so a form is never submitted twice.
	if err := b.waitVisible(sel); err != nil {
		return fmt.Errorf("browser: click %s: %w", sel, err)
	}
	if err := b.do(chromedp.Click(chromedp.CSS(sel))); err != nil {
		return fmt.Errorf("browser: click %s: %w", sel, err)
	}
	return nil
}

// WaitVisible waits until the element matching the CSS selector is visible.
func (b *Browser) WaitVisible(sel string) error {
	if err := b.waitVisible(sel); err != nil {
		return fmt.Errorf("browser: wait for %s: %w", sel, err)
	}
	return nil
}

func (b *Browser) waitVisible(sel string) error {
	_, err := read(b, chromedp.WaitVisible(chromedp.CSS(sel)))
	return err
}

// ErrTimeout: a wait did not see what it waited for.
var ErrTimeout = errors.New("browser: timed out")

// WaitURL polls the tab's URL until ok returns true or the timeout ends;
// it returns the last URL seen.
func (b *Browser) WaitURL(ok func(url string) bool) (string, error) {
	deadline := time.Now().Add(b.timeout)
	var last string
	for {
		u, err := read(b, chromedp.Location())
		if err != nil {
			return last, fmt.Errorf("browser: location: %w", err)
		}
		last = u
		if ok(last) {
			return last, nil
		}
		if time.Now().After(deadline) {
			return last, fmt.Errorf("%w waiting for the URL (last %s)", ErrTimeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitURLPrefix waits until the tab's URL starts with prefix.
func (b *Browser) WaitURLPrefix(prefix string) (string, error) {
	return b.WaitURL(func(u string) bool { return strings.HasPrefix(u, prefix) })
}

// Location returns the tab's current URL.
func (b *Browser) Location() (string, error) {
	u, err := read(b, chromedp.Location())
	if err != nil {
		return "", fmt.Errorf("browser: location: %w", err)
	}
	return u, nil
}

// Text returns the text content of the first element matching sel.
func (b *Browser) Text(sel string) (string, error) {
	s, err := read(b, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		return "", fmt.Errorf("browser: text of %s: %w", sel, err)
	}
	return s, nil
}

// Eval evaluates a JavaScript expression that changes nothing and returns
// its value, reading again while the tab is between documents. An
// expression that clicks or submits must not go through here: it could run
// twice.
func Eval[T any](b *Browser, expr string, opts ...chromedp.EvaluateOption) (T, error) {
	v, err := read(b, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		return v, fmt.Errorf("browser: evaluate: %w", err)
	}
	return v, nil
}

// Cookies returns the browser's cookies for the given URLs (all cookies
// when none are given), HttpOnly ones included.
func (b *Browser) Cookies(urls ...string) ([]*network.Cookie, error) {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: urls})
	if err != nil {
		return nil, fmt.Errorf("browser: cookies: %w", err)
	}
	return res.Cookies, nil
}

// Screenshot writes a PNG of the whole page to path.
func (b *Browser) Screenshot(path string) error {
	png, err := run(b, chromedp.FullScreenshot(90))
	if err != nil {
		return fmt.Errorf("browser: screenshot: %w", err)
	}
	return os.WriteFile(path, png, 0o644)
}

// Do executes raw chromedp steps, for what the helpers do not cover, under
// the per-call timeout.
func (b *Browser) Do(steps ...chromedp.Action[chromedp.Void]) error { return b.do(steps...) }

// Context is the tab's chromedp context, for chromedp.Run with actions that
// return a value.
func (b *Browser) Context() context.Context { return b.ctx }

// ForTest starts a browser for t, fails t if it cannot, and on cleanup
// takes a screenshot if t failed (into $SGW_ARTIFACTS or the system temp
// directory, path logged) before closing it.
func ForTest(t testing.TB, opts Options) *Browser {
	t.Helper()
	b, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer b.Close()
		if !t.Failed() {
			return
		}
		dir := os.Getenv("SGW_ARTIFACTS")
		if dir == "" {
			dir = os.TempDir()
		}
		name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
		path := filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, time.Now().Unix()))
		if u, err := b.Location(); err == nil {
			t.Logf("browser was at %s", u)
		}
		if err := b.Screenshot(path); err != nil {
			t.Logf("screenshot: %v", err)
			return
		}
		t.Logf("screenshot: %s", path)
	})
	return b
}
