package fakesuperset

import (
	"net/http/httptest"
	"testing"

	"github.com/superset-gateway/superset-gateway/superset/conformance"
)

func conformanceTarget(t *testing.T, serverSide bool) conformance.Target {
	t.Helper()
	f := New(Options{
		SecretKey:          "conformance-secret-key-0123456789abcdef",
		GuestSecret:        "conformance-guest-secret-0123456789abcdef",
		GuestAudience:      "http://superset.test/",
		ServerSideSessions: serverSide,
	})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	d := f.Dashboard()
	return conformance.Target{
		BaseURL:            srv.URL,
		SecretKey:          "conformance-secret-key-0123456789abcdef",
		JWTSecret:          "conformance-secret-key-0123456789abcdef",
		GuestSecret:        "conformance-guest-secret-0123456789abcdef",
		GuestAudience:      "http://superset.test/",
		Admin:              conformance.Credentials{Username: "admin", Password: AdminPassword},
		Alpha:              conformance.Credentials{Username: "alice", Password: AlicePassword},
		Gamma:              conformance.Credentials{Username: "bob", Password: BobPassword},
		DashboardID:        d.ID,
		DashboardSlug:      d.Slug,
		EmbedUUID:          d.EmbedUUID,
		ServerSideSessions: serverSide,
	}
}

// TestConformance holds the fake to the same protocol facts as the real
// Superset 6.1.0.
func TestConformance(t *testing.T) {
	t.Run("CookieSessions", func(t *testing.T) { conformance.Run(t, conformanceTarget(t, false)) })
	t.Run("ServerSideSessions", func(t *testing.T) { conformance.Run(t, conformanceTarget(t, true)) })
}

// TestConformanceAPIKeys holds the fake's FAB 5.3.0 API keys to the facts
// e2e's TestFABAPIKeys checks on the real 6.1.0 with FAB 5.3.0.
func TestConformanceAPIKeys(t *testing.T) {
	f := New(Options{SecretKey: "conformance-secret-key-0123456789abcdef", APIKeys: true, APIKeyPrefixes: []string{"sst_", "acme_"}})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	conformance.RunAPIKeys(t, conformance.Target{
		BaseURL:        srv.URL,
		SecretKey:      "conformance-secret-key-0123456789abcdef",
		JWTSecret:      "conformance-secret-key-0123456789abcdef",
		Admin:          conformance.Credentials{Username: "admin", Password: AdminPassword},
		Gamma:          conformance.Credentials{Username: "bob", Password: BobPassword},
		APIKeyPrefixes: []string{"sst_", "acme_"},
	})
}
