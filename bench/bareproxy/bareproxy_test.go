package bareproxy_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/superset-gateway/superset-gateway/bench/bareproxy"
	"github.com/superset-gateway/superset-gateway/bench/stub"
)

func TestProxiesAndReusesUpstreamConnections(t *testing.T) {
	s, err := stub.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	u, _ := url.Parse(s.URL)
	front := httptest.NewServer(bareproxy.New(u))
	defer front.Close()

	const workers, each = 4, 50
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{}}
			for range each {
				resp, err := c.Get(front.URL + stub.JSONPath)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || len(b) != stub.JSONSize {
					t.Errorf("status %d, %d bytes", resp.StatusCode, len(b))
				}
			}
		})
	}
	wg.Wait()
	// A pooled proxy opens about as many upstream connections as it has
	// concurrent requests, not one per request.
	if got := s.Accepted(); got > 2*workers {
		t.Errorf("stub accepted %d connections for %d requests from %d workers", got, workers*each, workers)
	}
}
