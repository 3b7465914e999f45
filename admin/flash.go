package admin

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"net/http"

	"github.com/gorilla/sessions"
)

// FlashCookie is the cookie that carries the admin page's message from a
// POST to the page it redirects to.
const FlashCookie = "sg_flash"

// flashInfo separates the flash cookie's keys from the vault's, which
// they are derived from.
const flashInfo = "superset-gateway admin flash v1"

// NewFlashStore returns the signed and encrypted cookie store of the admin
// page's flash messages (gorilla/sessions CookieStore). Its keys are
// derived with HKDF from the gateway's cookie key pairs (hash, block),
// newest first, so replicas sharing cookie keys read each other's
// messages, rotation keeps working, and the vault's keys are never used
// for anything else. The cookie is scoped to the admin page, HttpOnly,
// SameSite=Lax and lives a minute.
func NewFlashStore(keyPairs [][2][]byte, secure bool) (*sessions.CookieStore, error) {
	if len(keyPairs) == 0 {
		return nil, fmt.Errorf("%w: the flash store needs at least one cookie key pair", ErrConfig)
	}
	var ks [][]byte
	for i, kp := range keyPairs {
		h, err := hkdf.Key(sha256.New, kp[0], nil, flashInfo+" hash", 32)
		if err != nil {
			return nil, fmt.Errorf("admin: flash key %d: %w", i, err)
		}
		b, err := hkdf.Key(sha256.New, kp[1], nil, flashInfo+" block", 32)
		if err != nil {
			return nil, fmt.Errorf("admin: flash key %d: %w", i, err)
		}
		ks = append(ks, h, b)
	}
	st := sessions.NewCookieStore(ks...)
	st.Options = &sessions.Options{Path: PagePath, MaxAge: 60, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode}
	return st, nil
}

// setFlash keeps msg for the next page view. A failure only loses the
// message (the action is done): it falls back to the query string.
func (p *page) setFlash(w http.ResponseWriter, r *http.Request, msg string) bool {
	if p.flashes == nil || msg == "" {
		return false
	}
	s, _ := p.flashes.Get(r, FlashCookie) // a bad or old cookie gives a new session
	s.AddFlash(msg)
	if err := s.Save(r, w); err != nil {
		p.h.log.Warn("admin page: flash not saved")
		return false
	}
	return true
}

// takeFlash returns and clears the message kept for this view.
func (p *page) takeFlash(w http.ResponseWriter, r *http.Request) string {
	if p.flashes == nil {
		return ""
	}
	if _, err := r.Cookie(FlashCookie); err != nil {
		return ""
	}
	s, _ := p.flashes.Get(r, FlashCookie)
	fs := s.Flashes()
	s.Options.MaxAge = -1
	_ = s.Save(r, w) // clearing is best effort: the cookie expires in a minute anyway
	for _, f := range fs {
		if m, ok := f.(string); ok {
			return m
		}
	}
	return ""
}
