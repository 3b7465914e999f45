package enforce

import (
	"path/filepath"
	"sort"
)

// globBundles lists dir/*.supx as Superset's discovery does (not
// recursive).
func globBundles(dir string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(dir, "*.supx"))
	sort.Strings(m)
	return m, err
}

func sortVerdicts(v []Verdict) {
	sort.Slice(v, func(i, j int) bool { return v[i].ID < v[j].ID })
}
