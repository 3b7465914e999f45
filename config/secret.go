package config

import "fmt"

// Secret is a secret value read from a …_file key. It prints as
// "[redacted]" under every fmt verb, YAML and JSON, so a config dumped to a
// log or an error message never leaks it. Use the bytes directly only where
// the secret is needed.
type Secret []byte

const redacted = "[redacted]"

// String never returns the value.
func (s Secret) String() string {
	if s == nil {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the bytes.
func (s Secret) GoString() string { return s.String() }

// Format applies to every verb (%x, %d, %q…), which String alone does not
// cover for a byte slice.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// MarshalYAML never returns the value.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON never returns the value.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalText never returns the value (encoders that prefer it to the above).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
