package redis_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/store/redis"
)

// BenchmarkMaxInt64Replicated is the cost of store.redis_wait_replicas: an
// epoch stamp on a master with one replica, acknowledged by the master
// alone or by the replica too (docs/configuration.md quotes the figures).
func BenchmarkMaxInt64Replicated(b *testing.B) {
	master := redistest.Start(b, redistest.Options{AppendOnly: true})
	replica := redistest.Start(b, redistest.Options{AppendOnly: true, ReplicaOf: master})
	for _, wait := range []int{0, 1} {
		b.Run(map[int]string{0: "master", 1: "replica"}[wait], func(b *testing.B) {
			ctx := context.Background()
			s, err := redis.New(ctx, redis.Options{URL: master.URL(), WaitReplicas: wait, WaitTimeout: time.Second})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			deadline := time.Now().Add(15 * time.Second)
			for {
				info, _ := replica.Do("INFO", "replication")
				if strings.Contains(info, "master_link_status:up") || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := s.MaxInt64(ctx, "epoch:user:1", int64(i)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
