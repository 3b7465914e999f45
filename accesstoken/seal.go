package accesstoken

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Sealer encrypts values at rest with AES-256-GCM. A sealed value is
// "<key id>:" followed by the 12-byte nonce and the ciphertext; the key id
// is the first 8 hex digits of SHA-256(key), so keys need no names. The
// additional data binds a value to its store key, so a value copied to
// another key does not open.
type Sealer struct {
	keys []sealKey // newest first
}

type sealKey struct {
	id   string
	aead cipher.AEAD
}

// NewSealer takes 32-byte keys, newest first: Seal uses the first, Open
// any of them. Rotate by prepending a new key and dropping the oldest
// once every value has been re-sealed (Guard re-seals on read).
func NewSealer(keys [][]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: at least one sealing key is required", ErrConfig)
	}
	s := &Sealer{}
	for i, k := range keys {
		if len(k) != 32 {
			return nil, fmt.Errorf("%w: sealing key %d is %d bytes, want 32", ErrConfig, i, len(k))
		}
		blk, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		aead, err := cipher.NewGCM(blk)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		sum := sha256.Sum256(k)
		s.keys = append(s.keys, sealKey{id: hex.EncodeToString(sum[:4]), aead: aead})
	}
	return s, nil
}

// KeyID returns the id of the newest key (what Seal writes).
func (s *Sealer) KeyID() string { return s.keys[0].id }

// Seal encrypts plain for the store key ad with the newest key.
func (s *Sealer) Seal(plain []byte, ad string) []byte {
	k := s.keys[0]
	out := make([]byte, 0, len(k.id)+1+12+len(plain)+16)
	out = append(out, k.id...)
	out = append(out, ':')
	var nonce [12]byte
	_, _ = rand.Read(nonce[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	out = append(out, nonce[:]...)
	return k.aead.Seal(out, nonce[:], plain, []byte(ad))
}

// Open decrypts a value sealed for ad with any configured key. stale
// reports that it was not sealed with the newest key (re-seal it). The
// error wraps ErrSeal.
func (s *Sealer) Open(sealed []byte, ad string) (plain []byte, stale bool, err error) {
	i := bytes.IndexByte(sealed, ':')
	if i != 8 || len(sealed) < 9+12+16 {
		return nil, false, fmt.Errorf("%w: malformed", ErrSeal)
	}
	id := string(sealed[:i])
	for n, k := range s.keys {
		if k.id != id {
			continue
		}
		p, err := k.aead.Open(nil, sealed[9:21], sealed[21:], []byte(ad))
		if err != nil {
			return nil, false, fmt.Errorf("%w: %w", ErrSeal, err)
		}
		return p, n > 0, nil
	}
	return nil, false, fmt.Errorf("%w: unknown key id", ErrSeal)
}
