package policy

import (
	"strconv"
	"time"
)

// DefaultRetryAfter is the wait a 503 or 429 suggests when none is
// configured.
const DefaultRetryAfter = 5 * time.Second

// RetryAfter is the Retry-After value for a wait of d: whole seconds,
// rounded up, never below 1 (a zero would invite an immediate retry
// storm); d <= 0 means DefaultRetryAfter.
func RetryAfter(d time.Duration) string {
	if d <= 0 {
		d = DefaultRetryAfter
	}
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}
