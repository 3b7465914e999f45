//go:build !race

package knownsecret

// wordlistLines is the size of the wordlist TestWordlistMillion streams.
const wordlistLines = 1_000_000
