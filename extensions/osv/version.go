package osv

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/osv-scalibr/semantic"
)

// osv-scalibr's parsers never refuse: an npm string that is not SemVer
// and a PyPI string outside PEP 440 (a "legacy" version) both get some
// order. An audit must not order garbage, so versions are checked
// against the grammar first and a string outside it is ErrVersion.
var (
	semverGrammar = regexp.MustCompile(`^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)
	// PEP 440, public and local versions, case-insensitive.
	pep440Grammar = regexp.MustCompile(`(?i)^v?(\d+!)?\d+(\.\d+)*([-_.]?(a|b|c|rc|alpha|beta|pre|preview)[-_.]?\d*)?((-\d+)|([-_.]?(post|rev|r)[-_.]?\d*))?([-_.]?dev[-_.]?\d*)?(\+[a-z0-9]+([-_.][a-z0-9]+)*)?$`)
)

// ParseVersion parses s in ecosystem's order, refusing strings outside
// the ecosystem's grammar (npm and the extension feed: SemVer 2.0; PyPI:
// PEP 440). Other ecosystems are left to osv-scalibr.
func ParseVersion(s, ecosystem string) (semantic.Version, error) {
	eco, _, _ := strings.Cut(ecosystem, ":")
	switch eco {
	case NPM, Extension:
		if !semverGrammar.MatchString(s) {
			return nil, fmt.Errorf("%w: %q is not SemVer", ErrVersion, s)
		}
		eco = NPM
	case PyPI:
		if !pep440Grammar.MatchString(strings.TrimSpace(s)) {
			return nil, fmt.Errorf("%w: %q is not a PEP 440 version", ErrVersion, s)
		}
	}
	v, err := semantic.Parse(s, eco)
	if err != nil {
		return nil, fmt.Errorf("%w: %q as %s: %v", ErrVersion, s, eco, err)
	}
	return v, nil
}
