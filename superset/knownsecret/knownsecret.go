// Package knownsecret is the list of secrets Superset deployments are known
// to run with (shipped defaults, placeholders from Superset's docker files,
// Helm chart and documentation) and a streaming matcher over it and over an
// operator's wordlist. Anyone can sign Superset session cookies and guest
// tokens with these values (CVE-2023-27524), so a deployment that signs
// with one is open to forgery.
//
// The package never returns a secret in an error or a Match: callers report
// an entry's ID, which is safe to log, count and show.
package knownsecret

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Kind says what a list entry was shipped as.
type Kind string

const (
	// KindSecretKey: a SECRET_KEY value (signs session cookies and, unless
	// JWT_SECRET_KEY is set, API JWTs).
	KindSecretKey Kind = "secret_key"
	// KindGuestToken: a GUEST_TOKEN_JWT_SECRET value.
	KindGuestToken Kind = "guest_token"
	// KindAny: a generic placeholder seen for either.
	KindAny Kind = "any"
)

// Entry is one known secret. ID is stable and safe to show; Value is the
// secret and must never be logged; Source says where it was published
// (docs/audit.md cites each one).
type Entry struct {
	ID     string
	Kind   Kind
	Value  string
	Source string
}

// List returns the built-in entries, newest Superset defaults first. The
// slice is new on every call.
func List() []Entry {
	return []Entry{
		{"superset-change-me", KindSecretKey, "CHANGE_ME_TO_A_COMPLEX_RANDOM_SECRET",
			"superset/constants.py CHANGE_ME_SECRET_KEY, SECRET_KEY's default since Superset 2.0 (PR #17984), still in 6.1.0"},
		{"superset-legacy-default", KindSecretKey, "\x02\x01thisismyscretkey\x01\x02\\e\\y\\y\\h",
			"superset/config.py SECRET_KEY default until PR #17984 (Jan 2022); CVE-2023-27524"},
		// The same default as copied from config.py's source text, where
		// the Python escapes were not interpreted.
		{"superset-legacy-default-literal", KindSecretKey, `\2\1thisismyscretkey\1\2\e\y\y\h`,
			"the source text of the pre-2022 superset/config.py default, copied verbatim"},
		{"superset-helm-chart", KindSecretKey, "thisISaSECRET_1234",
			"Helm chart helm/superset/templates/_helpers.tpl until PR #23916 (Nov 2023); docs/docs/installation/kubernetes.mdx"},
		{"superset-docker-env", KindSecretKey, "TEST_NON_DEV_SECRET",
			"docker/.env (and .env-non-dev) SUPERSET_SECRET_KEY of Superset's docker-compose setup"},
		{"superset-docs-example", KindSecretKey, "YOUR_OWN_RANDOM_GENERATED_SECRET_KEY",
			"docs/docs/configuration/configuring-superset.mdx superset_config.py example"},
		{"superset-guest-default", KindGuestToken, "test-guest-secret-change-me",
			"superset/config.py GUEST_TOKEN_JWT_SECRET default (6.1.0)"},
		{"superset-async-default", KindAny, "test-secret-change-me",
			"superset/config.py GLOBAL_ASYNC_QUERIES_JWT_SECRET default (6.1.0), also seen reused as guest secret"},
		{"placeholder-secret", KindAny, "secret", "generic placeholder in embedding tutorials and examples"},
		{"placeholder-changeme", KindAny, "changeme", "generic placeholder"},
		{"placeholder-superset", KindAny, "superset", "generic placeholder (the product's name)"},
		{"placeholder-your-secret", KindAny, "your-secret-key", "generic placeholder in embedding tutorials"},
	}
}

// Match is the entry a signature verified under. It carries no secret.
type Match struct {
	// ID is the built-in entry's ID, or "wordlist:<line>" for a line of
	// an operator's wordlist.
	ID     string
	Source string
}

// Verifier reports whether secret verifies a signature the caller holds
// (a cookie's HMAC, a JWT's). It must be safe to call many times.
type Verifier func(secret []byte) bool

// FindBuiltin tries every built-in entry in order and returns the first
// that verifies.
func FindBuiltin(verify Verifier) (Match, bool) {
	for _, e := range List() {
		if verify([]byte(e.Value)) {
			return Match{ID: e.ID, Source: e.Source}, true
		}
	}
	return Match{}, false
}

// MaxLineBytes is the longest wordlist line tried; longer lines are
// skipped (counted in Stats.Skipped), never a reason to stop.
const MaxLineBytes = 4096

// Stats describe one wordlist scan.
type Stats struct {
	Lines   int // lines read
	Tried   int // non-empty lines tried
	Skipped int // lines over MaxLineBytes
	Elapsed time.Duration
}

// ErrWordlist wraps a failure to read the wordlist.
var ErrWordlist = errors.New("knownsecret: wordlist")

// ScanWordlist streams r line by line (one secret a line; a trailing "\r"
// and empty lines ignored; nothing is held but the current line) and
// returns the first line that verifies. ctx cancels a long scan between
// lines. The Match names the line number, never its text.
func ScanWordlist(ctx context.Context, r io.Reader, verify Verifier) (Match, bool, Stats, error) {
	start := time.Now()
	var st Stats
	br := bufio.NewReaderSize(r, 64<<10)
	var long bool // inside a line longer than the buffer
	for {
		if st.Lines%4096 == 0 {
			if err := ctx.Err(); err != nil {
				st.Elapsed = time.Since(start)
				return Match{}, false, st, fmt.Errorf("%w: %w", ErrWordlist, err)
			}
		}
		line, isPrefix, err := br.ReadLine()
		if err == io.EOF {
			break
		}
		if err != nil {
			st.Elapsed = time.Since(start)
			return Match{}, false, st, fmt.Errorf("%w: line %d: %w", ErrWordlist, st.Lines+1, err)
		}
		if long {
			// The rest of an over-long line.
			long = isPrefix
			continue
		}
		st.Lines++
		if isPrefix || len(line) > MaxLineBytes {
			st.Skipped++
			long = isPrefix
			continue
		}
		if len(line) == 0 {
			continue
		}
		st.Tried++
		if verify(line) {
			st.Elapsed = time.Since(start)
			return Match{ID: fmt.Sprintf("wordlist:%d", st.Lines), Source: "operator wordlist"}, true, st, nil
		}
	}
	st.Elapsed = time.Since(start)
	return Match{}, false, st, nil
}
