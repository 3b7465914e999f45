package policy

import (
	"bytes"
	"strings"
	"testing"
)

func TestCheckSecret(t *testing.T) {
	const name = "superset.secret_key"
	strong := []byte("q8Vt2mZ4rN7xK1pL9cW3hY6bF0dS5gJ8aE2uT7oR4iM1nB6v")
	tests := []struct {
		desc  string
		value []byte
		min   int
		allow bool
		why   string
	}{
		{"random base64", strong, 0, true, ""},
		{"random bytes", []byte{0x8f, 0x11, 0xa3, 0x5c, 0x02, 0xee, 0x91, 0x47, 0x3b, 0xd0, 0x6a, 0x19, 0xc4, 0x7e, 0x28, 0xf5, 0x63, 0x0d, 0xb9, 0x84, 0x12, 0x5a, 0xe7, 0x3f, 0xc1, 0x98, 0x04, 0x6d, 0xab, 0x72, 0x31, 0xfe}, 0, true, ""},
		{"nil", nil, 0, false, SecretEmpty},
		{"empty", []byte{}, 0, false, SecretEmpty},
		{"superset 2016 default", []byte("\x02\x01thisismyscretkey\x01\x02\\e\\y\\y\\h"), 0, false, SecretKnownValue},
		{"superset 2016 default as source text", []byte(`\2\1thisismyscretkey\1\2\e\y\y\h`), 0, false, SecretKnownValue},
		{"superset placeholder", []byte("CHANGE_ME_TO_A_COMPLEX_RANDOM_SECRET"), 0, false, SecretKnownValue},
		{"superset placeholder, lower case", []byte("change_me_to_a_complex_random_secret"), 0, false, SecretKnownValue},
		{"helm chart default", []byte("thisISaSECRET_1234"), 0, false, SecretKnownValue},
		{"docker .env default", []byte("TEST_NON_DEV_SECRET"), 0, false, SecretKnownValue},
		{"docs example", []byte("YOUR_OWN_RANDOM_GENERATED_SECRET_KEY"), 0, false, SecretKnownValue},
		{"guest token default", []byte("test-guest-secret-change-me"), 0, false, SecretKnownValue},
		{"async queries default", []byte("test-secret-change-me"), 0, false, SecretKnownValue},
		{"placeholder padded to length", []byte("CHANGE_ME_" + string(strong)), 0, false, SecretKnownValue},
		{"short", strong[:31], 0, false, SecretTooShort(32)},
		{"short for custom min", strong[:40], 48, false, SecretTooShort(48)},
		{"long enough for custom min", strong[:16], 16, true, ""},
		{"one character", bytes.Repeat([]byte("a"), 64), 0, false, SecretLowEntropy},
		{"few characters", []byte(strings.Repeat("ab", 10) + strings.Repeat("cd", 10) + "ca"), 0, false, SecretLowEntropy},
		{"repeated pattern", bytes.Repeat([]byte("s3cr3tK3y!"), 4), 0, false, SecretLowEntropy},
		{"repeated pattern, partial tail", []byte(strings.Repeat("Xy7#q", 7) + "Xy"), 0, false, SecretLowEntropy},
		{"sequence", []byte("abcdefghijklmnopqrstuvwxyz{|}~\x7f\x80"), 0, false, SecretLowEntropy},
		{"digits then letters sequence", []byte("0123456789:;<=>?@ABCDEFGHIJKLMNOP"), 0, false, SecretLowEntropy},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			d := CheckSecret(name, tt.value, tt.min)
			if d.OK != tt.allow {
				t.Fatalf("Allow = %v, want %v (reason %q)", d.OK, tt.allow, d.Problem)
			}
			want := ""
			if tt.why != "" {
				want = name + ": " + tt.why
			}
			if d.Problem != want {
				t.Fatalf("Reason = %q, want %q", d.Problem, want)
			}
			if len(tt.value) > 0 && strings.Contains(d.Problem, string(tt.value)) {
				t.Fatalf("Reason %q echoes the secret", d.Problem)
			}
		})
	}
}

func TestZeroVerdictsRefuse(t *testing.T) {
	var d Decision
	var v SecretVerdict
	if d.Allow || v.OK {
		t.Fatal("a zero Decision or SecretVerdict allows")
	}
}

func FuzzCheckSecret(f *testing.F) {
	for _, k := range knownSecrets() {
		f.Add(k, 0)
	}
	f.Add([]byte("q8Vt2mZ4rN7xK1pL9cW3hY6bF0dS5gJ8"), 32)
	f.Add([]byte(""), -1)
	f.Fuzz(func(t *testing.T, v []byte, min int) {
		d := CheckSecret("k", v, min)
		if d.OK && d.Problem != "" {
			t.Fatalf("allowed with reason %q", d.Problem)
		}
		if !d.OK && !strings.HasPrefix(d.Problem, "k: ") {
			t.Fatalf("refused with reason %q", d.Problem)
		}
		if d.OK && (len(v) == 0 || period(v) <= len(v)/2) {
			t.Fatalf("allowed a repeated or empty value %q", v)
		}
	})
}
