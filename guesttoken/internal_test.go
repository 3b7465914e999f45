package guesttoken

import "time"

// testSecret and t0 are the internal tests' guest secret and clock start
// (the external tests' helpers_test.go has its own).
const testSecret = "a-strong-guest-secret-for-tests-0123456789abcdef"

var t0 = time.Date(2026, 5, 20, 12, 0, 0, 0, time.UTC)
