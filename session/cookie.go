package session

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
)

// Cookie names. The __Host- prefix makes browsers refuse the cookie unless it
// is Secure, has Path=/ and no Domain, so a sibling subdomain cannot plant
// one (fixation across subdomains).
const (
	CookieNameSecure   = "__Host-sg_session"
	CookieNameInsecure = "sg_session"
)

// IDLen is the length of a raw session id: 256 random bits.
const IDLen = 32

// MaxCookieLen caps the cookie value looked at. A genuine value is about 200
// bytes; anything longer is refused before any base64 or HMAC work.
const MaxCookieLen = 512

// KeyPair is one generation of cookie keys. Hash authenticates (HMAC-SHA256,
// at least 32 bytes); Block encrypts (AES-256, exactly 32 bytes).
type KeyPair struct {
	Hash  []byte
	Block []byte
}

// CookieCodec turns a raw session id into the gateway cookie value and back.
// The first key pair signs; all of them verify, so keys rotate by prepending
// a new pair and dropping the oldest once max-age has passed. It is immutable
// and safe for concurrent use.
type CookieCodec struct {
	name     string
	secure   bool
	sameSite http.SameSite
	codecs   []securecookie.Codec
}

// CookieOption adjusts a CookieCodec at construction.
type CookieOption func(*CookieCodec) error

// WithSameSite sets the cookie's SameSite attribute. The zero value and
// http.SameSiteDefaultMode mean Lax (the default). http.SameSiteNoneMode
// lets a page of another site (an embedding host) send the cookie along;
// browsers drop a SameSite=None cookie that is not Secure, so it is
// refused unless the codec is secure.
func WithSameSite(m http.SameSite) CookieOption {
	return func(c *CookieCodec) error {
		switch m {
		case 0, http.SameSiteDefaultMode, http.SameSiteLaxMode:
			c.sameSite = http.SameSiteLaxMode
		case http.SameSiteStrictMode:
			c.sameSite = m
		case http.SameSiteNoneMode:
			if !c.secure {
				return errors.New("session: SameSite=None needs a Secure cookie (an https public URL)")
			}
			c.sameSite = m
		default:
			return fmt.Errorf("session: unknown SameSite mode %d", m)
		}
		return nil
	}
}

// NewCookieCodec builds a codec. secure selects the __Host- name and the
// Secure attribute (an https public URL). maxAge bounds the age of a cookie
// value (the signing time is inside it); 0 means no bound beyond the
// server-side record's own timeouts. The cookie is SameSite=Lax unless an
// option says otherwise.
func NewCookieCodec(keys []KeyPair, secure bool, maxAge time.Duration, opts ...CookieOption) (*CookieCodec, error) {
	if len(keys) == 0 {
		return nil, errors.New("session: at least one cookie key pair is required")
	}
	pairs := make([][]byte, 0, 2*len(keys))
	for i, k := range keys {
		if len(k.Hash) < 32 {
			return nil, fmt.Errorf("session: cookie key %d: hash key must be at least 32 bytes, got %d", i, len(k.Hash))
		}
		if len(k.Block) != 32 {
			return nil, fmt.Errorf("session: cookie key %d: block key must be 32 bytes (AES-256), got %d", i, len(k.Block))
		}
		pairs = append(pairs, k.Hash, k.Block)
	}
	c := &CookieCodec{name: CookieNameInsecure, secure: secure, sameSite: http.SameSiteLaxMode}
	if secure {
		c.name = CookieNameSecure
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	c.codecs = securecookie.CodecsFromPairs(pairs...)
	for _, sc := range c.codecs {
		s, ok := sc.(*securecookie.SecureCookie)
		if !ok {
			return nil, errors.New("session: unexpected securecookie codec type")
		}
		// NopEncoder: the id is raw bytes; gob would add a type
		// description to every cookie and a decoder to attack.
		s.SetSerializer(securecookie.NopEncoder{})
		s.MaxLength(MaxCookieLen)
		s.MaxAge(int(maxAge / time.Second))
	}
	return c, nil
}

// Name is the cookie name in use.
func (c *CookieCodec) Name() string { return c.name }

// Encode signs and encrypts a raw id with the newest key.
func (c *CookieCodec) Encode(id []byte) (string, error) {
	if len(id) != IDLen {
		return "", fmt.Errorf("session: id of %d bytes", len(id))
	}
	// securecookie encrypts the serialised value in place, and
	// NopEncoder's serialisation is the caller's slice itself: copy it.
	v, err := c.codecs[0].Encode(c.name, bytes.Clone(id))
	if err != nil {
		return "", fmt.Errorf("session: encode cookie: %w", err)
	}
	return v, nil
}

// Decode returns the raw id inside value, or an error wrapping ErrBadCookie
// for anything that is not a cookie this gateway issued under one of its
// keys. It never panics, whatever the input.
func (c *CookieCodec) Decode(value string) ([]byte, error) {
	if value == "" || len(value) > MaxCookieLen {
		return nil, fmt.Errorf("%w: length %d", ErrBadCookie, len(value))
	}
	var id []byte
	if err := securecookie.DecodeMulti(c.name, value, &id, c.codecs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCookie, err)
	}
	if len(id) != IDLen {
		return nil, fmt.Errorf("%w: id of %d bytes", ErrBadCookie, len(id))
	}
	return id, nil
}

// Cookie is the Set-Cookie for value; an empty value deletes the cookie.
// The cookie has no Max-Age: it lives as long as the browser session, and
// the server-side record decides when it stops working.
func (c *CookieCodec) Cookie(value string) *http.Cookie {
	ck := &http.Cookie{
		Name:     c.name,
		Value:    value,
		Path:     "/",
		HttpOnly: true,
		Secure:   c.secure,
		SameSite: c.sameSite,
	}
	if value == "" {
		ck.MaxAge = -1
	}
	return ck
}
