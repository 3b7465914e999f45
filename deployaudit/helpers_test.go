package deployaudit_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func hs256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}
