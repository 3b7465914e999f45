package policy

import (
	"bytes"
	"fmt"
)

// DefaultMinSecretBytes is the shortest secret CheckSecret accepts when the
// caller passes min <= 0: 256 bits, the size of an HMAC-SHA256 key.
const DefaultMinSecretBytes = 32

// Problems a secret can have. CheckSecret's Reason is "<name>: <problem>",
// so the operator learns which key to fix and why, and never the value.
const (
	SecretEmpty       = "is empty"
	SecretKnownValue  = "is a published default or placeholder value"
	SecretLowEntropy  = "has too little entropy (one repeated character, a repeated pattern or a simple sequence)"
	secretTooShortFmt = "is shorter than %d bytes"
)

// SecretTooShort is the problem text for a secret under min bytes.
func SecretTooShort(min int) string { return fmt.Sprintf(secretTooShortFmt, min) }

// knownSecrets are values shipped by Superset's code, Helm chart, docker
// files and docs (superset-protocol.md §8). Anyone can sign cookies and
// tokens with them, so a deployment that kept one is open to forgery
// (CVE-2023-27524). Compared case-insensitively.
func knownSecrets() [][]byte {
	return [][]byte{
		[]byte("\x02\x01thisismyscretkey\x01\x02\\e\\y\\y\\h"),
		// The same default as copied from superset/config.py's source text.
		[]byte(`\2\1thisismyscretkey\1\2\e\y\y\h`),
		[]byte("CHANGE_ME_TO_A_COMPLEX_RANDOM_SECRET"),
		[]byte("thisISaSECRET_1234"),
		[]byte("TEST_NON_DEV_SECRET"),
		[]byte("YOUR_OWN_RANDOM_GENERATED_SECRET_KEY"),
		[]byte("test-guest-secret-change-me"),
		[]byte("test-secret-change-me"),
	}
}

// placeholderMarkers betray a value someone meant to replace: a secret that
// contains one was copied from an example, whatever else it contains.
func placeholderMarkers() [][]byte {
	return [][]byte{
		[]byte("thisismyscretkey"),
		[]byte("change_me"),
		[]byte("change-me"),
		[]byte("changeme"),
		[]byte("your_own_random"),
		[]byte("your-own-random"),
	}
}

// CheckSecret decides whether value is strong enough to serve as the secret
// called name (a config key, used only in the Problem). It refuses, in this
// order: an empty value, a known published default or placeholder, a value
// shorter than min bytes (DefaultMinSecretBytes when min <= 0), and a value
// with visibly low entropy. It cannot prove a secret random; it catches the
// mistakes operators actually make. The Problem never contains the value.
func CheckSecret(name string, value []byte, min int) SecretVerdict {
	if min <= 0 {
		min = DefaultMinSecretBytes
	}
	refuse := func(problem string) SecretVerdict {
		return SecretVerdict{Problem: name + ": " + problem}
	}
	if len(value) == 0 {
		return refuse(SecretEmpty)
	}
	lower := bytes.ToLower(value)
	for _, k := range knownSecrets() {
		if bytes.Equal(lower, bytes.ToLower(k)) {
			return refuse(SecretKnownValue)
		}
	}
	for _, m := range placeholderMarkers() {
		if bytes.Contains(lower, m) {
			return refuse(SecretKnownValue)
		}
	}
	if len(value) < min {
		return refuse(SecretTooShort(min))
	}
	if lowEntropy(value) {
		return refuse(SecretLowEntropy)
	}
	return SecretVerdict{OK: true}
}

// lowEntropy reports values whose length overstates their strength: few
// distinct bytes, a pattern repeated at least twice, or an arithmetic run
// such as "abcdef…" or "0123…".
func lowEntropy(v []byte) bool {
	var seen [256]bool
	distinct := 0
	for _, b := range v {
		if !seen[b] {
			seen[b] = true
			distinct++
		}
	}
	if distinct < 5 {
		return true
	}
	if period(v) <= len(v)/2 {
		return true
	}
	if len(v) >= 3 {
		d := int(v[1]) - int(v[0])
		run := true
		for i := 2; i < len(v); i++ {
			if int(v[i])-int(v[i-1]) != d {
				run = false
				break
			}
		}
		if run {
			return true
		}
	}
	return false
}

// period returns the smallest p such that v[i] == v[i-p] for every i >= p
// (len(v) when v does not repeat), using the KMP failure function.
func period(v []byte) int {
	fail := make([]int, len(v))
	k := 0
	for i := 1; i < len(v); i++ {
		for k > 0 && v[i] != v[k] {
			k = fail[k-1]
		}
		if v[i] == v[k] {
			k++
		}
		fail[i] = k
	}
	if len(v) == 0 {
		return 0
	}
	return len(v) - fail[len(v)-1]
}

// SecretVerdict is CheckSecret's answer. It is not a request Decision: its
// Problem is a sentence for the operator, naming the key and what is wrong.
type SecretVerdict struct {
	OK      bool
	Problem string
}
