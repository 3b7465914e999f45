// Package policy is the version policy for Superset extensions: an
// allow-list, minimum versions, a maximum age and a blocklist of `id` or
// `id@version`. Decide is pure: it takes what is known about one
// extension and returns every rule it breaks.
package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/superset-gateway/superset-gateway/extensions/osv"
)

// ErrPolicy is an invalid policy (a bad blocklist entry, a minimum
// version that does not parse).
var ErrPolicy = errors.New("extensions/policy: invalid")

// Rules is the operator's policy. The zero value allows everything.
type Rules struct {
	// Allow, when not empty, is the only extension ids permitted.
	Allow []string `yaml:"allow" json:"allow"`
	// Block entries are `id` (every version) or `id@x.y.z` (that version).
	Block []string `yaml:"block" json:"block"`
	// MinVersions maps an id to its lowest permitted version.
	MinVersions map[string]string `yaml:"min_versions" json:"min_versions"`
	// MaxAge refuses a bundle built longer ago than this (0: no limit).
	MaxAge time.Duration `yaml:"max_age" json:"max_age"`
}

// Validate checks every entry parses.
func (r Rules) Validate() error {
	for _, b := range r.Block {
		id, v, hasV := strings.Cut(b, "@")
		if id == "" || (hasV && v == "") {
			return fmt.Errorf("%w: block entry %q: want id or id@version", ErrPolicy, b)
		}
		if hasV {
			if _, err := osv.ParseVersion(v, osv.Extension); err != nil {
				return fmt.Errorf("%w: block entry %q: %v", ErrPolicy, b, err)
			}
		}
	}
	for id, v := range r.MinVersions {
		if _, err := osv.ParseVersion(v, osv.Extension); err != nil || v == "" {
			return fmt.Errorf("%w: min_versions[%s] = %q does not parse", ErrPolicy, id, v)
		}
	}
	return nil
}

// Violation kinds.
const (
	NotAllowed   = "not_allowed"
	Blocked      = "blocked"
	BelowMinimum = "below_minimum"
	TooOld       = "too_old"
	BadVersion   = "unparsable_version"
)

// Violation is one rule an extension breaks.
type Violation struct {
	Kind   string
	Detail string
}

// Subject is what is known about one extension. Built is zero when
// unknown (the list API does not say): MaxAge is then not checked.
type Subject struct {
	ID      string
	Version string
	Built   time.Time
}

// Decide returns every violation of r by s, at now.
func (r Rules) Decide(s Subject, now time.Time) []Violation {
	var out []Violation
	if len(r.Allow) > 0 && !contains(r.Allow, s.ID) {
		out = append(out, Violation{NotAllowed, fmt.Sprintf("%s is not on the allow-list", s.ID)})
	}
	for _, b := range r.Block {
		id, v, hasV := strings.Cut(b, "@")
		if id != s.ID {
			continue
		}
		if !hasV {
			out = append(out, Violation{Blocked, fmt.Sprintf("%s is blocked (every version)", s.ID)})
			continue
		}
		if same, err := equalVersions(v, s.Version); err == nil && same {
			out = append(out, Violation{Blocked, fmt.Sprintf("%s@%s is blocked", s.ID, s.Version)})
		}
	}
	if min, ok := r.MinVersions[s.ID]; ok {
		sv, err := osv.ParseVersion(s.Version, osv.Extension)
		if err != nil {
			out = append(out, Violation{BadVersion, fmt.Sprintf("%s version %q does not parse", s.ID, s.Version)})
		} else if c, err := sv.CompareStr(min); err != nil || c < 0 {
			out = append(out, Violation{BelowMinimum, fmt.Sprintf("%s@%s is below the minimum %s", s.ID, s.Version, min)})
		}
	}
	if r.MaxAge > 0 && !s.Built.IsZero() && now.Sub(s.Built) > r.MaxAge {
		out = append(out, Violation{TooOld, fmt.Sprintf("%s was built %s, more than %s ago", s.ID, s.Built.UTC().Format(time.RFC3339), r.MaxAge)})
	}
	return out
}

func equalVersions(a, b string) (bool, error) {
	va, err := osv.ParseVersion(a, osv.Extension)
	if err != nil {
		return a == b, err
	}
	c, err := va.CompareStr(b)
	if err != nil {
		return a == b, err
	}
	return c == 0, nil
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
