package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/apijwt"
	"github.com/superset-gateway/superset-gateway/superset/client"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

const fakeSecret = "fake-superset-secret-key-for-service-tests-0123456789"

// rewriteTo sends every request to the test server, like the upstream pool
// fills in a node's scheme and host.
type rewriteTo struct{ u *url.URL }

func (r rewriteTo) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host = r.u.Scheme, r.u.Host
	return http.DefaultTransport.RoundTrip(req)
}

func fakeResolver(t *testing.T, userID int) (client.AliasResolver, fakesuperset.Dashboard) {
	t.Helper()
	f := fakesuperset.New(fakesuperset.Options{SecretKey: fakeSecret})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	id := client.NewServiceIdentity([]byte(fakeSecret), userID, nil)
	return client.AliasResolver{API: client.Through(rewriteTo{u}), Identity: id}, f.Dashboard()
}

func TestAliasResolverNamesEveryAlias(t *testing.T) {
	r, d := fakeResolver(t, 1) // admin
	want := []string{"1", d.Slug, d.EmbedUUID}
	for _, ref := range []string{"1", d.Slug} {
		got, err := r.Aliases(context.Background(), ref)
		if err != nil {
			t.Fatalf("Aliases(%q): %v", ref, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Aliases(%q) = %v, want %v", ref, got, want)
		}
	}
}

func TestAliasResolverFailsRatherThanGuess(t *testing.T) {
	r, _ := fakeResolver(t, 1)
	if _, err := r.Aliases(context.Background(), "no-such-dashboard"); err == nil {
		t.Fatal("an unknown dashboard resolved")
	}
	// A service user Superset does not know (or a wrong JWT secret) must
	// fail loudly, not resolve to nothing.
	r, _ = fakeResolver(t, 999)
	if _, err := r.Aliases(context.Background(), "1"); err == nil {
		t.Fatal("resolved as a user Superset does not have")
	}
	none := client.AliasResolver{Identity: client.NewServiceIdentity(nil, 0, nil)}
	if _, err := none.Aliases(context.Background(), "1"); !errors.Is(err, client.ErrNoServiceUser) {
		t.Fatalf("without service_user_id: %v, want ErrNoServiceUser", err)
	}
}

func TestServiceIdentityMintsShortLivedAccessTokens(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := client.NewServiceIdentity([]byte(fakeSecret), 7, func() time.Time { return now })
	tok, err := s.Bearer()
	if err != nil {
		t.Fatal(err)
	}
	c, err := apijwt.Verifier{Key: []byte(fakeSecret)}.Verify(tok, apijwt.Access, now)
	if err != nil {
		t.Fatalf("minted token does not verify as Superset would: %v", err)
	}
	if c.Subject != "7" || c.ExpiresAt.Sub(c.IssuedAt) > (5*time.Minute) {
		t.Fatalf("claims sub=%q lifetime=%s", c.Subject, c.ExpiresAt.Sub(c.IssuedAt))
	}
	if again, _ := s.Bearer(); again != tok {
		t.Error("a still-valid token was re-minted")
	}
	now = now.Add((5 * time.Minute))
	if later, _ := s.Bearer(); later == tok || strings.Count(later, ".") != 2 {
		t.Error("an expiring token was not replaced")
	}
	if _, err := (apijwt.Verifier{Key: []byte("another-key-another-key-another-key")}).Verify(tok, apijwt.Access, now); err == nil {
		t.Error("the service token verifies under another key")
	}
}
