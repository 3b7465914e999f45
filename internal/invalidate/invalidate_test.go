package invalidate

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/store"
)

// flaky is a pub/sub whose subscriptions the test ends and refuses.
type flaky struct {
	mu    sync.Mutex
	fail  int // subscriptions still to refuse
	chans []chan store.Message
}

func (f *flaky) Subscribe(context.Context, ...string) (<-chan store.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		return nil, errors.New("store: unavailable")
	}
	ch := make(chan store.Message, 4)
	f.chans = append(f.chans, ch)
	return ch, nil
}

func (f *flaky) last() chan store.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.chans[len(f.chans)-1]
}

func (f *flaky) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.chans)
}

func TestEvictsClearsAfterLossAndRetries(t *testing.T) {
	f := &flaky{fail: 1}
	var mu sync.Mutex
	var evicted []string
	clears := 0
	subscribed := make(chan struct{}, 8)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := Start(ctx, Options{Store: f, Channel: "c", MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		Evict: func(p []byte) { mu.Lock(); evicted = append(evicted, string(p)); mu.Unlock() },
		Clear: func() { mu.Lock(); clears++; mu.Unlock() }, OnSubscribed: func() { subscribed <- struct{}{} }})
	if err == nil {
		t.Fatal("the first, refused subscription was not reported")
	}
	<-subscribed // the retry in the background got through
	mu.Lock()
	if clears != 1 {
		t.Fatalf("clears after the first live subscription: %d, want 1", clears)
	}
	mu.Unlock()
	f.last() <- store.Message{Payload: []byte("k1")}
	close(f.last()) // the subscription is lost
	<-subscribed
	mu.Lock()
	defer mu.Unlock()
	if len(evicted) != 1 || evicted[0] != "k1" || clears != 2 || f.count() != 2 {
		t.Fatalf("evicted %v, clears %d, subscriptions %d", evicted, clears, f.count())
	}
}

func TestStopsWithContext(t *testing.T) {
	f := &flaky{}
	ctx, cancel := context.WithCancel(context.Background())
	if err := Start(ctx, Options{Store: f, Channel: "c", Evict: func([]byte) {}}); err != nil {
		t.Fatal(err)
	}
	cancel()
	close(f.last())
	time.Sleep(20 * time.Millisecond)
	if f.count() != 1 {
		t.Fatalf("resubscribed after the context ended: %d subscriptions", f.count())
	}
}

func TestRequiredOptions(t *testing.T) {
	if err := Start(context.Background(), Options{}); err == nil {
		t.Fatal("no error without a store")
	}
}
