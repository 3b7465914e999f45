package accesstoken

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
)

// HKDF info strings of DerivePepper and DeriveSealKeys; never change them
// (a different pepper kills every token).
const (
	pepperInfo = "superset-gateway access-token pepper v1"
	sealInfo   = "superset-gateway access-token seal v1"
)

// DerivePepper derives a 32-byte pepper from a long-lived gateway secret
// (HKDF-SHA256), for deployments without a dedicated pepper file. The
// secret must outlive the tokens: derive it from the oldest cookie-key
// generation, and know that retiring that generation kills every token.
func DerivePepper(secret []byte) ([]byte, error) {
	if len(secret) < MinPepperLen {
		return nil, fmt.Errorf("%w: pepper source must be at least %d bytes", ErrConfig, MinPepperLen)
	}
	return hkdf.Key(sha256.New, secret, nil, pepperInfo, 32)
}

// DeriveSealKeys derives one 32-byte AES-256-GCM key from each secret
// (HKDF-SHA256), keeping the order: pass the cookie-key generations newest
// first, and rotating cookie keys rotates the sealing keys with them.
func DeriveSealKeys(secrets [][]byte) ([][]byte, error) {
	out := make([][]byte, 0, len(secrets))
	for i, s := range secrets {
		if len(s) < 32 {
			return nil, fmt.Errorf("%w: seal key source %d is shorter than 32 bytes", ErrConfig, i)
		}
		k, err := hkdf.Key(sha256.New, s, nil, sealInfo, 32)
		if err != nil {
			return nil, fmt.Errorf("accesstoken: derive: %w", err)
		}
		out = append(out, k)
	}
	return out, nil
}
