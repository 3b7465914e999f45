package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Session is a loaded session. It is immutable: the vault replaces it rather
// than changing it, so it may be shared by concurrent requests and the cache.
type Session struct {
	id  []byte // raw id: derives the jar key; never logged or stored
	hid string // hex SHA-256 of id: the store key and public handle

	UserID     string    // Superset user id; "" for an anonymous session
	Username   string    // as Superset reported it; may be "" if unknown
	AuthMethod string    // superset.LoginMethod: "form", "remote_user", "oauth:<provider>"; or "other"
	LoginAt    time.Time // when UserID was set; zero if anonymous
	Created    time.Time
	LastSeen   time.Time
	ClientIP   string
	UserAgent  string
	Jar        Jar // read-only

	sealed []byte // the encrypted jar as stored, reused by last_seen writes

	// The Cookie header for Superset, rendered once per loaded session;
	// valid until hdrUntil (Unix ms; 0: no jar cookie expires).
	hdr      string
	hdrUntil int64
}

// prepare renders the Cookie header; it runs before s is shared.
func (s *Session) prepare(now time.Time) {
	s.hdr = s.Jar.CookieHeader(now)
	s.hdrUntil = 0
	for _, c := range s.Jar {
		if c.Expires > now.UnixMilli() && (s.hdrUntil == 0 || c.Expires < s.hdrUntil) {
			s.hdrUntil = c.Expires
		}
	}
}

// cookieHeader is the Cookie header that carries s's jar to Superset.
func (s *Session) cookieHeader(now time.Time) string {
	if s.hdrUntil != 0 && now.UnixMilli() >= s.hdrUntil {
		return s.Jar.CookieHeader(now)
	}
	return s.hdr
}

// Handle is the public name of the session: the hex SHA-256 of its id. It
// is what the /-/sessions page and the admin API use to name a session; it
// cannot be turned back into a cookie.
func (s *Session) Handle() string { return s.hid }

// Anonymous reports whether no Superset user is attached.
func (s *Session) Anonymous() bool { return s.UserID == "" }

// record is the stored form. Metadata is plaintext (the /-/sessions page and
// the admin API list sessions without their ids); Superset's cookies are in
// Jar, sealed under a key only the holder of the raw id can derive.
type record struct {
	V        int    `json:"v"`
	UserID   string `json:"uid,omitempty"`
	Username string `json:"un,omitempty"`
	Method   string `json:"am,omitempty"`
	LoginAt  int64  `json:"la,omitempty"` // Unix ms
	Created  int64  `json:"cr"`           // Unix ms
	LastSeen int64  `json:"ls"`           // Unix ms
	IP       string `json:"ip,omitempty"`
	UA       string `json:"ua,omitempty"`
	Jar      []byte `json:"jar,omitempty"` // nonce || AES-256-GCM(jar JSON), AAD = hid
}

const recordVersion = 1

// jarKeyInfo is the HKDF info string; changing it makes every stored jar
// unreadable, so it carries a version.
const jarKeyInfo = "superset-gateway session jar v1"

// maxRecordBytes refuses absurd store values before parsing them.
const maxRecordBytes = 64 << 10

var errCorrupt = errors.New("session: corrupt record")

func hashID(id []byte) string {
	sum := sha256.Sum256(id)
	return hex.EncodeToString(sum[:])
}

func jarAEAD(id []byte) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, id, nil, jarKeyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("session: derive jar key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("session: jar cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

// sealJar encrypts j under a key derived from the raw id with HKDF-SHA256,
// binding the ciphertext to the session's hashed id (AAD) so that a jar
// cannot be moved to another record.
func sealJar(id []byte, hid string, j Jar, rnd io.Reader) ([]byte, error) {
	if len(j) == 0 {
		return nil, nil
	}
	plain, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("session: marshal jar: %w", err)
	}
	aead, err := jarAEAD(id)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := io.ReadFull(rnd, nonce); err != nil {
		return nil, fmt.Errorf("session: jar nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, plain, []byte(hid)), nil
}

func openJar(id []byte, hid string, sealed []byte) (Jar, error) {
	if len(sealed) == 0 {
		return Jar{}, nil
	}
	aead, err := jarAEAD(id)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: jar too short", errCorrupt)
	}
	ns := aead.NonceSize()
	plain, err := aead.Open(nil, sealed[:ns], sealed[ns:], []byte(hid))
	if err != nil {
		return nil, fmt.Errorf("%w: jar does not open", errCorrupt)
	}
	var j Jar
	if err := json.Unmarshal(plain, &j); err != nil {
		return nil, fmt.Errorf("%w: jar: %w", errCorrupt, err)
	}
	if j == nil {
		j = Jar{}
	}
	return j, nil
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

// marshal encodes s with its already sealed jar.
func (s *Session) marshal() ([]byte, error) {
	return json.Marshal(record{
		V: recordVersion, UserID: s.UserID, Username: s.Username, Method: s.AuthMethod,
		LoginAt: ms(s.LoginAt), Created: ms(s.Created), LastSeen: ms(s.LastSeen),
		IP: s.ClientIP, UA: s.UserAgent, Jar: s.sealed,
	})
}

// parseRecord decodes the metadata of a stored record; the jar stays sealed.
func parseRecord(hid string, b []byte) (*Session, error) {
	if len(b) > maxRecordBytes {
		return nil, fmt.Errorf("%w: %d bytes", errCorrupt, len(b))
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	if r.V != recordVersion {
		return nil, fmt.Errorf("%w: version %d", errCorrupt, r.V)
	}
	return &Session{
		hid: hid, UserID: r.UserID, Username: r.Username, AuthMethod: r.Method,
		LoginAt: fromMS(r.LoginAt), Created: fromMS(r.Created), LastSeen: fromMS(r.LastSeen),
		ClientIP: r.IP, UserAgent: r.UA, sealed: r.Jar,
	}, nil
}
