package stub_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/superset-gateway/superset-gateway/bench/stub"
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
	get(stub.HealthPath)
	// Three sequential requests on one keep-alive client: one connection.
	if got := s.Accepted(); got != 1 {
		t.Errorf("accepted %d connections, want 1", got)
	}
}
