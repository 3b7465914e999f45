package redis_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/store/redis"
	"github.com/superset-gateway/superset-gateway/store/storetest"
)

var (
	failoverRounds = flag.Int("failover-rounds", 2, "masters TestSentinelFailoverKeepsAcknowledgedRevocations kills")
	failoverReport = flag.String("failover-report", "", "write the failover figures (markdown) to this file")
	// Three rounds in make unit: without the reload on MOVED (redis.go,
	// waited) a killed master that came back as a replica answered MOVED
	// to every pinned write of its old slots, and the third round's
	// stamps stalled.
	clusterRounds = flag.Int("cluster-rounds", 3, "masters TestClusterFailoverKeepsAcknowledgedRevocations kills, one after the other")
	clusterReport = flag.String("cluster-report", "", "write the Cluster failover figures (markdown) to this file")
)

func openWaiting(t *testing.T, url string, timeout time.Duration) *redis.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := redis.New(ctx, redis.Options{URL: url, DialTimeout: time.Second, WaitReplicas: 1, WaitTimeout: timeout})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// replicaSynced waits until replica reports a live link to its master.
func replicaSynced(t *testing.T, replica *redistest.Server) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		info, err := replica.Do("INFO", "replication")
		if err == nil && strings.Contains(info, "master_link_status:up") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica not in sync: %v %q", err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestConformanceWaitingForAReplica: every store operation behaves the
// same when each write waits for a replica's acknowledgement.
func TestConformanceWaitingForAReplica(t *testing.T) {
	master := redistest.Start(t, redistest.Options{})
	replica := redistest.Start(t, redistest.Options{ReplicaOf: master})
	replicaSynced(t, replica)
	storetest.Run(t, func(t *testing.T) store.Store { return openWaiting(t, master.URL(), 2*time.Second) }, storetest.SharedBackend())
}

// TestWriteWithoutReplicaIsUnavailable: with no replica to acknowledge it,
// a write is an error, never an acknowledgement a failover could undo.
func TestWriteWithoutReplicaIsUnavailable(t *testing.T) {
	master := redistest.Start(t, redistest.Options{})
	s := openWaiting(t, master.URL(), 50*time.Millisecond)
	ctx := context.Background()
	for name, write := range map[string]func() error{
		"set":        func() error { return s.Set(ctx, "k", []byte("v"), 0) },
		"max_int64":  func() error { _, err := s.MaxInt64(ctx, "epoch:user:1", 5); return err },
		"delete":     func() error { return s.Delete(ctx, "a", "b") },
		"sadd":       func() error { return s.SAdd(ctx, "set", "m") },
		"lpush_trim": func() error { return s.LPushTrim(ctx, "list", []byte("x"), 3) },
	} {
		if err := write(); !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "acknowledged by 0 of 1") {
			t.Errorf("%s without a replica: %v; want ErrUnavailable naming the missing acknowledgement", name, err)
		}
	}
}

// TestSentinelFailoverKeepsAcknowledgedRevocations: revocations (epoch
// stamps) are written continuously while the master is killed with
// SIGKILL, twice; every stamp acknowledged before or during each failover
// is still there after it. Writes that failed were never acknowledged, so
// they may or may not be there.
func TestSentinelFailoverKeepsAcknowledgedRevocations(t *testing.T) {
	a := redistest.Start(t, redistest.Options{AppendOnly: true})
	b := redistest.Start(t, redistest.Options{AppendOnly: true, ReplicaOf: a})
	replicaSynced(t, b)
	sentinels := redistest.StartSentinels(t, a, "gw", 3, 2, 1500*time.Millisecond)
	addrs := make([]string, len(sentinels))
	for i, sn := range sentinels {
		addrs[i] = sn.Addr()
	}
	s := openWaiting(t, "redis+sentinel://"+strings.Join(addrs, ",")+"/gw", time.Second)

	w := startStamping(t, s)
	sc := goredis.NewSentinelClient(&goredis.Options{Addr: sentinels[0].Addr()})
	t.Cleanup(func() { _ = sc.Close() })
	masterAddr := func() string {
		v, _ := sc.GetMasterAddrByName(context.Background(), "gw").Result()
		return strings.Join(v, ":")
	}
	servers := []*redistest.Server{a, b}
	for round := range *failoverRounds {
		w.waitAcked(50 * (round + 1))
		victim := servers[round%2]
		before := masterAddr()
		if before != victim.Addr() {
			t.Fatalf("round %d: sentinels name master %q, expected %s", round, before, victim.Addr())
		}
		victim.Kill()
		deadline := time.Now().Add(30 * time.Second)
		for masterAddr() == before {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no failover within 30s", round)
			}
			time.Sleep(50 * time.Millisecond)
		}
		// The old master comes back; Sentinel makes it a replica of the
		// new one, and writes are acknowledged again.
		victim.Restart(t)
		replicaSynced(t, victim)
		w.waitAcked(w.count() + 20)
	}
	nAcked, keys, failed, lost := w.stopAndVerify(t)
	summary := fmt.Sprintf("%d masters killed with SIGKILL; %d epoch stamps acknowledged (%d keys), %d refused during the failovers, %d acknowledged keys lost",
		*failoverRounds, nAcked, keys, failed, lost)
	t.Log(summary)
	if *failoverReport != "" {
		head := fmt.Sprintf("Run %s on %s/%s, %d CPUs, by `make failover-report`: one master and one replica (AOF always), three Sentinels (quorum 2, down-after 1.5s), store.redis_wait_replicas 1.\n\n",
			time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
		if err := os.WriteFile(*failoverReport, []byte(head+summary+".\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// stamping writes epoch stamps continuously over 200 keys, recording the
// highest stamp acknowledged per key, until stopAndVerify.
type stamping struct {
	s      *redis.Store
	mu     sync.Mutex
	acked  map[string]int64
	n      int
	failed int
	// lastErr is the last refusal's error (for a failure's message).
	lastErr error
	stop    chan struct{}
	done    chan struct{}
}

func startStamping(t *testing.T, s *redis.Store) *stamping {
	w := &stamping{s: s, acked: map[string]int64{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			key := fmt.Sprintf("epoch:user:%d", i%200)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			got, err := s.MaxInt64(ctx, key, time.Now().UnixNano())
			cancel()
			w.mu.Lock()
			if err == nil {
				w.acked[key] = max(w.acked[key], got)
				w.n++
			} else {
				w.failed++
				w.lastErr = err
			}
			w.mu.Unlock()
			// A bounded rate (appendfsync always fsyncs each write on
			// the master's main thread; a flood would delay its answers
			// to the Sentinels' PINGs into false failovers).
			time.Sleep(5 * time.Millisecond)
		}
	}()
	t.Cleanup(func() {
		select {
		case <-w.stop:
		default:
			close(w.stop)
		}
		<-w.done
	})
	return w
}

func (w *stamping) failures() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

func (w *stamping) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

func (w *stamping) waitAcked(n int) {
	deadline := time.Now().Add(30 * time.Second)
	for w.count() < n {
		if time.Now().After(deadline) {
			w.mu.Lock()
			err := w.lastErr
			w.mu.Unlock()
			panic(fmt.Sprintf("only %d stamps acknowledged; last refusal: %v", w.count(), err))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stopAndVerify stops writing and reads every acknowledged key back from
// the deployment as it is now.
func (w *stamping) stopAndVerify(t *testing.T) (acked, keys, failed, lost int) {
	t.Helper()
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for key, want := range w.acked {
		got, err := w.s.GetInt64(context.Background(), key)
		// The client may still route a slot to the dead master until it
		// reloads the cluster's slot map: that is availability, not
		// loss, so it is asked again.
		for errors.Is(err, store.ErrUnavailable) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			got, err = w.s.GetInt64(context.Background(), key)
		}
		if err != nil || got < want {
			lost++
			if lost <= 5 {
				t.Errorf("%s: acknowledged %d, found %d (%v)", key, want, got, err)
			}
		}
	}
	return w.n, len(w.acked), w.failed, lost
}

// TestClusterFailoverKeepsAcknowledgedRevocations: a Redis Cluster of
// three masters, each with a replica; stamps over 200 keys (all three
// masters' slots) while a master is killed with SIGKILL and its replica
// takes over, -cluster-rounds times (make unit: 3; make
// cluster-failover-report: CLUSTER_ROUNDS): after each failover the dead master
// comes back (as its successor's replica, in sync) before the next round
// kills another master, the masters in turn. Every acknowledged stamp is
// still there at the end.
func TestClusterFailoverKeepsAcknowledgedRevocations(t *testing.T) {
	nodes := redistest.StartCluster(t, 3, 1)
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.Addr()
	}
	s := openWaiting(t, "redis+cluster://"+strings.Join(addrs, ","), time.Second)
	w := startStamping(t, s)
	w.waitAcked(100)
	isMaster := func(n *redistest.Server) bool {
		info, err := n.Do("INFO", "replication")
		return err == nil && strings.Contains(info, "role:master")
	}
	var took []time.Duration
	killed := map[*redistest.Server]int{}
	for round := range *clusterRounds {
		// The master killed least often so far (the first in node order
		// among those): rounds go around the shards, and a shard failed
		// over before fails over again once its old master is back.
		var victim *redistest.Server
		for _, n := range nodes {
			if isMaster(n) && (victim == nil || killed[n] < killed[victim]) {
				victim = n
			}
		}
		if victim == nil {
			t.Fatalf("round %d: no master found", round)
		}
		killed[victim]++
		t0 := time.Now()
		victim.Kill()
		// The cluster is whole again when every survivor has marked the
		// victim failed and reports cluster_state:ok (its replica took the
		// slots over).
		deadline := time.Now().Add(30 * time.Second)
		for {
			var okNodes int
			for _, n := range nodes {
				if n == victim {
					continue
				}
				info, err1 := n.Do("CLUSTER", "INFO")
				view, err2 := n.Do("CLUSTER", "NODES")
				failed := false
				for l := range strings.SplitSeq(view, "\n") {
					if strings.Contains(l, victim.Addr()) && strings.Contains(l, "fail") && !strings.Contains(l, "fail?") {
						failed = true
					}
				}
				if err1 == nil && err2 == nil && failed && strings.Contains(info, "cluster_state:ok") {
					okNodes++
				}
			}
			if okNodes == len(nodes)-1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no failover within 30s of a master's death", round)
			}
			time.Sleep(100 * time.Millisecond)
		}
		took = append(took, time.Since(t0))
		t.Logf("round %d: master %s killed, cluster whole after %s; %d stamps acknowledged, %d refused so far",
			round, victim.Addr(), took[len(took)-1].Round(10*time.Millisecond), w.count(), w.failures())
		w.waitAcked(w.count() + 100)
		if round == *clusterRounds-1 {
			break
		}
		// The old master comes back as a replica of the one that took
		// its slots, so that the shard can fail over again.
		victim.Restart(t)
		replicaSynced(t, victim)
		w.waitAcked(w.count() + 50)
	}
	acked, keys, failed, lost := w.stopAndVerify(t)
	slices.Sort(took)
	summary := fmt.Sprintf("%d rounds, one master of the three killed with SIGKILL in each (in turn); %d epoch stamps acknowledged (%d keys), %d refused during the failovers, %d acknowledged keys lost; cluster whole again after the kill: median %s, max %s",
		*clusterRounds, acked, keys, failed, lost, took[len(took)/2].Round(10*time.Millisecond), took[len(took)-1].Round(10*time.Millisecond))
	t.Log(summary)
	if *clusterReport != "" {
		head := fmt.Sprintf("Run %s on %s/%s, %d CPUs (shared with other work), by `make cluster-failover-report`: a Redis Cluster of three masters, each with one replica (AOF always, cluster-node-timeout 1s), store.redis_wait_replicas 1; after each failover the killed master is restarted and resyncs as a replica before the next round.\n\n",
			time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
		load, _ := os.ReadFile("/proc/loadavg")
		if f := strings.Fields(string(load)); len(f) >= 3 {
			head += fmt.Sprintf("Load average at the end (1, 5, 15 min): %s.\n\n", strings.Join(f[:3], ", "))
		}
		if err := os.WriteFile(*clusterReport, []byte(head+summary+".\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
