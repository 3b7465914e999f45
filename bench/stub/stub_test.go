package stub_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/bench/stub"
	"github.com/superset-gateway/superset-gateway/superset/flaskcookie"
)

func TestStubBodiesAndConnectionCount(t *testing.T) {
	s, err := stub.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())

	client := &http.Client{Transport: &http.Transport{}}
	get := func(path string) []byte {
		t.Helper()
		resp, err := client.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, err)
		}
		return b
	}
	j := get(stub.JSONPath)
	if len(j) != stub.JSONSize || !json.Valid(j) {
		t.Errorf("JSON body: %d bytes, valid=%v", len(j), json.Valid(j))
	}
	if n := len(get(stub.StaticPath)); n != stub.StaticSize {
		t.Errorf("static body: %d bytes", n)
	}
	if l := get(stub.LargeJSONPath); len(l) != stub.StaticSize || !json.Valid(l) {
		t.Errorf("large JSON body: %d bytes, valid=%v", len(l), json.Valid(l))
	}
	get(stub.HealthPath)
	// Four sequential requests on one keep-alive client: one connection.
	if got := s.Accepted(); got != 1 {
		t.Errorf("accepted %d connections, want 1", got)
	}
}

func TestStubLoginSetsSignedFlaskCookie(t *testing.T) {
	s, err := stub.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Post(s.URL+stub.LoginPath, "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var value string
	for _, c := range resp.Cookies() {
		if c.Name == "session" {
			value = c.Value
		}
	}
	fs, err := flaskcookie.Decode(value, s.SecretKey, time.Hour, time.Now())
	if err != nil {
		t.Fatalf("session cookie %q: %v", value, err)
	}
	if uid, _ := fs.UserID(); uid != stub.BenchUserID {
		t.Fatalf("_user_id %q", uid)
	}
	if _, err := flaskcookie.Decode(value, "another-secret", time.Hour, time.Now()); err == nil {
		t.Fatal("cookie verifies under another secret")
	}
	// GET is not a login.
	resp, err = client.Get(s.URL + stub.LoginPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET login: status %d", resp.StatusCode)
	}
}

// TestStubRefusesBearerThatIsNotAJWT: an access token a proxy forgot to
// replace must not be answered 200, or the bench would measure it as a
// success.
func TestStubRefusesBearerThatIsNotAJWT(t *testing.T) {
	s, err := stub.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	for auth, want := range map[string]int{
		"":                             http.StatusOK,
		"Basic YmVuY2g6YmVuY2g=":       http.StatusOK,
		"Bearer aGVhZA.Ym9keQ.c2ln":    http.StatusOK,
		"bearer aGVhZA.Ym9keQ.c2ln":    http.StatusOK,
		"Bearer sgw_abc_def_01234567":  http.StatusUnauthorized,
		"Bearer aGVhZA..c2ln":          http.StatusUnauthorized,
		"Bearer aGVhZA.Ym9keQ.c2ln.eA": http.StatusUnauthorized,
		"Bearer x":                     http.StatusUnauthorized,
	} {
		for _, path := range []string{stub.JSONPath, stub.LargeJSONPath} {
			req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("%s with %q: status %d, want %d", path, auth, resp.StatusCode, want)
			}
		}
	}
}
