package ratelimit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/principal"
)

// What stage 5 costs a signed-in API request: the address and the API
// bucket, on the per-process backend and on Redis (two round trips).
func benchStage(b *testing.B, backend Backend) {
	big := Limit{Rate: 1 << 30, Period: time.Second, Burst: 1 << 30}
	s := newStage(b, backend, Limits{Address: big, API: big}, nil)
	r := httptest.NewRequest(http.MethodGet, "/api/v1/chart/", nil)
	r.RemoteAddr = "192.0.2.1:1"
	x := &principal.Exchange{Principal: principal.Principal{Kind: principal.Session, UserID: "7"}}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if s.Check(ctx, r, x) != nil {
			b.Fatal("limited")
		}
	}
}

func BenchmarkStageMemory(b *testing.B) { benchStage(b, NewMemory(0, nil)) }

func BenchmarkStageRedis(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	benchStage(b, NewRedis(clientTB(b, srv)))
}
