//go:build race

package knownsecret

// wordlistLines is smaller under the race detector, which makes every HMAC
// ten times slower; the full 10^6 lines run without it.
const wordlistLines = 100_000
