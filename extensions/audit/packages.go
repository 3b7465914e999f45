package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/superset-gateway/superset-gateway/extensions/osv"
)

// Package is one third-party package found in or beside a bundle.
type Package struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	Source    string `json:"source"` // where it was identified
}

// fromCycloneDX reads components' purls (pkg:npm/…, pkg:pypi/…).
func fromCycloneDX(data []byte, src string) ([]Package, error) {
	var doc struct {
		BOMFormat  string `json:"bomFormat"`
		Components []struct {
			Purl string `json:"purl"`
		} `json:"components"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	if doc.BOMFormat != "CycloneDX" {
		return nil, fmt.Errorf("%s: bomFormat is not CycloneDX", src)
	}
	var out []Package
	for _, c := range doc.Components {
		if p, ok := parsePurl(c.Purl); ok {
			p.Source = src
			out = append(out, p)
		}
	}
	return out, nil
}

func parsePurl(purl string) (Package, bool) {
	rest, ok := strings.CutPrefix(purl, "pkg:")
	if !ok {
		return Package{}, false
	}
	rest, _, _ = strings.Cut(rest, "?")
	rest, _, _ = strings.Cut(rest, "#")
	typ, nv, ok := strings.Cut(rest, "/")
	if !ok {
		return Package{}, false
	}
	at := strings.LastIndex(nv, "@")
	if at <= 0 {
		return Package{}, false
	}
	name, err1 := url.PathUnescape(nv[:at])
	ver, err2 := url.PathUnescape(nv[at+1:])
	if err1 != nil || err2 != nil || ver == "" {
		return Package{}, false
	}
	switch strings.ToLower(typ) {
	case "npm":
		return Package{Ecosystem: osv.NPM, Name: name, Version: ver}, true
	case "pypi":
		return Package{Ecosystem: osv.PyPI, Name: name, Version: ver}, true
	}
	return Package{}, false
}

// fromPackageLock reads npm's package-lock.json (v1 dependencies, v2/v3
// packages).
func fromPackageLock(data []byte, src string) ([]Package, error) {
	var doc struct {
		Packages map[string]struct {
			Version string `json:"version"`
			Name    string `json:"name"`
		} `json:"packages"`
		Dependencies map[string]struct {
			Version string `json:"version"`
		} `json:"dependencies"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	seen := map[string]bool{}
	var out []Package
	add := func(name, ver string) {
		if name == "" || ver == "" || seen[name+"@"+ver] {
			return
		}
		seen[name+"@"+ver] = true
		out = append(out, Package{Ecosystem: osv.NPM, Name: name, Version: ver, Source: src})
	}
	for path, p := range doc.Packages {
		if path == "" {
			continue // the project itself
		}
		i := strings.LastIndex(path, "node_modules/")
		if i < 0 {
			continue
		}
		name := path[i+len("node_modules/"):]
		if p.Name != "" {
			name = p.Name
		}
		add(name, p.Version)
	}
	for name, d := range doc.Dependencies {
		add(name, d.Version)
	}
	sortPackages(out)
	return out, nil
}

// fromRequirements reads pinned `name==version` lines; anything else is
// returned as unpinned (it cannot be matched to a version).
func fromRequirements(data []byte, src string) (pkgs []Package, unpinned []string) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "-") {
			continue
		}
		line, _, _ = strings.Cut(line, ";")
		name, ver, ok := strings.Cut(line, "==")
		name = strings.TrimSpace(name)
		if i := strings.Index(name, "["); i >= 0 {
			name = name[:i]
		}
		ver = strings.TrimSpace(ver)
		if !ok || name == "" || ver == "" || strings.ContainsAny(ver, "*,<>=!~ ") {
			unpinned = append(unpinned, strings.TrimSpace(line))
			continue
		}
		pkgs = append(pkgs, Package{Ecosystem: osv.PyPI, Name: name, Version: ver, Source: src})
	}
	return pkgs, unpinned
}

// Banner comments that bundlers keep (/*! name v1.2.3 */, @license
// name v1.2.3, * name v1.2.3 | license): the package name and version.
var banner = regexp.MustCompile(`(?m)(?:/\*[!*]|^\s*\*|@license)\s*(?:@license\s+)?(@[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*|[a-zA-Z0-9][a-zA-Z0-9._-]*)\s+v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)\b`)

// node_modules paths webpack leaves in module ids: names without versions.
var modulePath = regexp.MustCompile(`node_modules/((?:@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*)/`)

// fromJS finds npm packages in built JS: versioned ones from banners,
// and names seen only as webpack module paths (no version: reported, not
// matched).
func fromJS(data []byte, src string) (pkgs []Package, unversioned []string) {
	seen := map[string]bool{}
	for _, m := range banner.FindAllSubmatch(data, -1) {
		name, ver := strings.ToLower(string(m[1])), string(m[2])
		if name == "license" || seen[name+"@"+ver] {
			continue
		}
		seen[name+"@"+ver] = true
		seen[name] = true
		pkgs = append(pkgs, Package{Ecosystem: osv.NPM, Name: name, Version: ver, Source: src})
	}
	for _, m := range modulePath.FindAllSubmatch(data, -1) {
		name := string(m[1])
		if !seen[name] {
			seen[name] = true
			unversioned = append(unversioned, name)
		}
	}
	sort.Strings(unversioned)
	return pkgs, unversioned
}

func sortPackages(p []Package) {
	sort.Slice(p, func(i, j int) bool {
		if p[i].Name != p[j].Name {
			return p[i].Name < p[j].Name
		}
		return p[i].Version < p[j].Version
	})
}
