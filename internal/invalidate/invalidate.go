// Package invalidate keeps one replica's cache of store state in step with
// the other replicas: every package that caches what it read from the store
// (sessions, epochs, jti revocations, access tokens, guest-token stamps)
// publishes the key it changed on a channel, and each replica evicts that
// key on receipt. The cache TTL is the bound on propagation when a message
// is lost; a lost subscription is therefore followed, once it is back, by
// clearing the whole cache, since messages sent meanwhile are gone.
//
// This is the one loop that does it, so the five caches cannot drift apart
// again (one of the earlier copies never cleared after a resubscription).
package invalidate

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/store"
)

// Subscriber is the store's pub/sub; store.Store satisfies it.
type Subscriber interface {
	Subscribe(ctx context.Context, channels ...string) (<-chan store.Message, error)
}

// Options configure Start. Store, Channel and Evict are required.
type Options struct {
	Store   Subscriber
	Channel string
	// Evict removes what one message names from the cache. It must not
	// block.
	Evict func(payload []byte)
	// Clear empties the cache; it is called after every resubscription.
	// nil means the cache has nothing to clear (no cache configured).
	Clear func()
	// OnSubscribed, if set, is called each time a subscription is live
	// (tests wait for it).
	OnSubscribed func()
	// MinBackoff and MaxBackoff bound the wait between attempts; 0 means
	// 100 ms and 10 s.
	MinBackoff, MaxBackoff time.Duration
	// Logger may be nil.
	Logger *zap.Logger
}

// Start subscribes, returning once the first attempt has answered: nil
// when the subscription is live, its error otherwise. Either way the loop
// goes on in the background until ctx is done, resubscribing with backoff
// after any loss and clearing the cache each time it is back.
func Start(ctx context.Context, o Options) error {
	if o.Store == nil || o.Channel == "" || o.Evict == nil {
		return errors.New("invalidate: Store, Channel and Evict are required")
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(10*time.Second, o.MinBackoff)
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	ch, err := o.Store.Subscribe(ctx, o.Channel)
	if err == nil && o.OnSubscribed != nil {
		o.OnSubscribed()
	}
	go run(ctx, o, ch)
	return err
}

func run(ctx context.Context, o Options, ch <-chan store.Message) {
	backoff := o.MinBackoff
	for {
		if ch != nil {
			backoff = o.MinBackoff
			for m := range ch {
				o.Evict(m.Payload)
			}
		}
		if ctx.Err() != nil {
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, o.MaxBackoff)
		var err error
		if ch, err = o.Store.Subscribe(ctx, o.Channel); err != nil {
			ch = nil
			o.Logger.Warn("invalidation subscription failed; the cache TTL bounds staleness until it is back",
				zap.String("channel", o.Channel), zap.Error(err))
			continue
		}
		// Messages sent while unsubscribed are lost.
		if o.Clear != nil {
			o.Clear()
		}
		if o.OnSubscribed != nil {
			o.OnSubscribed()
		}
	}
}
