package config

import (
	"strings"
	"time"
)

// Extensions configures the extension supply-chain enforcement at the
// proxy (docs/extensions.md). Off by default: Superset's ENABLE_EXTENSIONS
// is off by default too.
type Extensions struct {
	// Enabled turns the enforcement on.
	Enabled bool `yaml:"enabled"`
	// OSV are advisory sources: directories of OSV JSON records,
	// osv.dev all.zip exports, or single records (read offline).
	OSV []string `yaml:"osv"`
	// OnUnavailable is "open" (only the policy applies) or "closed"
	// (every extension refused) while advisory data is missing or stale.
	OnUnavailable string `yaml:"on_unavailable"`
	// MaxDataAge: advisory data whose newest record is older is stale
	// (0: never).
	MaxDataAge time.Duration `yaml:"max_data_age"`
	// RefreshInterval re-reads the advisory sources and bundles_dir.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// BundlesDir is Superset's EXTENSIONS_PATH, mounted read-only: its
	// bundles are audited and every served file pinned to their SHA-256.
	BundlesDir string `yaml:"bundles_dir"`
	// Allow, Block (id or id@version), MinVersions (id → version) and
	// MaxAge are the version policy.
	Allow       []string          `yaml:"allow"`
	Block       []string          `yaml:"block"`
	MinVersions map[string]string `yaml:"min_versions"`
	MaxAge      time.Duration     `yaml:"max_age"`
}

func (c *Config) validateExtensions() error {
	e := c.Extensions
	if !e.Enabled {
		return nil
	}
	if e.OnUnavailable != "open" && e.OnUnavailable != "closed" {
		return bad("extensions.on_unavailable", "must be open or closed, got %q", e.OnUnavailable)
	}
	if e.RefreshInterval < time.Second {
		return bad("extensions.refresh_interval", "must be at least 1s, got %s", e.RefreshInterval)
	}
	for _, b := range e.Block {
		if id, v, has := strings.Cut(b, "@"); id == "" || (has && v == "") {
			return bad("extensions.block", "%q: want id or id@version", b)
		}
	}
	return nil
}
