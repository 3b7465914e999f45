package superset

import (
	"slices"
	"testing"
)

func TestPyFields(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"Bearer abc", []string{"Bearer", "abc"}},
		{"  Bearer\t\tabc  ", []string{"Bearer", "abc"}},
		{"Bearer\x85abc", []string{"Bearer", "abc"}},       // NEL as a Latin-1 byte
		{"Bearer\xa0abc", []string{"Bearer", "abc"}},       // NBSP as a Latin-1 byte
		{"Bearer\x1cabc\x1f", []string{"Bearer", "abc"}},   // file/unit separators
		{"Bearer\u0085abc", []string{"Bearer\xc2", "abc"}}, // UTF-8 NEL: Python sees "Â" then NEL
		{"Bearer\x00abc", []string{"Bearer\x00abc"}},       // NUL is not whitespace
		{"a,b c", []string{"a,b", "c"}},                    // commas are the caller's
	} {
		if got := PyFields(c.in); !slices.Equal(got, c.want) {
			t.Errorf("PyFields(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
