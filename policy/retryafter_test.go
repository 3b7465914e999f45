package policy

import (
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "5"}, {-time.Second, "5"}, {time.Nanosecond, "1"}, {time.Second, "1"},
		{1500 * time.Millisecond, "2"}, {30 * time.Second, "30"},
	} {
		if got := RetryAfter(c.d); got != c.want {
			t.Errorf("RetryAfter(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}
