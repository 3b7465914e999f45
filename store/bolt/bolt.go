// Package bolt implements store.Store over an embedded bbolt file, for a
// single gateway replica without Redis (the default for a first run).
//
// Every write is one bbolt transaction, committed and fsynced before the
// method returns, so an acknowledged revocation survives kill -9. TTLs are
// stored with the value and enforced on read; a sweeper owned by the Store
// reclaims expired keys in the background. Pub/sub is in-process only: it
// reaches subscribers of the same Store, which is all a single replica has.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/superset-gateway/superset-gateway/store"
)

var _ store.Store = (*Store)(nil)

// Bucket names. kv holds strings as [8-byte big-endian expiry in Unix ns,
// 0 = none][value]; exp indexes expiring keys as [expiry][key] so the
// sweeper walks only what is due; sets and lists hold one nested bucket per
// key.
var (
	bucketKV    = []byte("kv")
	bucketExp   = []byte("exp")
	bucketSets  = []byte("sets")
	bucketLists = []byte("lists")
)

// Options tunes Open. The zero value is ready for production.
type Options struct {
	// Now is the clock for TTLs; nil means time.Now. Tests inject a fake
	// one to expire keys without sleeping.
	Now func() time.Time
	// SweepInterval is how often expired keys are deleted from the file;
	// zero means one minute, negative disables the sweeper. Reads never
	// return an expired key either way; sweeping only reclaims space.
	SweepInterval time.Duration
	// SubscriberBuffer is each subscription's channel capacity; zero means
	// 64. A subscriber whose buffer is full misses messages: Publish never
	// waits for a slow consumer.
	SubscriberBuffer int
	// LockTimeout bounds the wait for the file lock another process holds;
	// zero means one second.
	LockTimeout time.Duration
}

// Store is a store.Store over a bbolt file. It is safe for concurrent use.
// bbolt cannot store an empty key, so an empty key or set member is an
// error here (Redis would accept it); nothing in the gateway writes one.
type Store struct {
	db     *bbolt.DB
	now    func() time.Time
	subBuf int

	mu     sync.RWMutex // guards subs
	subs   map[string]map[*subscriber]struct{}
	subsWG sync.WaitGroup

	done      chan struct{} // closed by Close
	sweepDone chan struct{} // closed when the sweeper has exited
	closeOnce sync.Once
	closeErr  error
}

type subscriber struct {
	ch chan store.Message
}

// Open opens or creates the bbolt file at path (mode 0600; missing parent
// directories are created 0700) and starts the sweeper. Another process
// holding the file makes Open fail after LockTimeout with an error wrapping
// store.ErrUnavailable.
func Open(path string, o Options) (*Store, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SweepInterval == 0 {
		o.SweepInterval = time.Minute
	}
	if o.SubscriberBuffer <= 0 {
		o.SubscriberBuffer = 64
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("bolt: create directory for %s: %w", path, err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: o.LockTimeout})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("bolt: open %s: file locked by another process: %w: %w", path, store.ErrUnavailable, err)
		}
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketKV, bucketExp, bucketSets, bucketLists} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: initialise %s: %w", path, err)
	}
	s := &Store{
		db:        db,
		now:       o.Now,
		subBuf:    o.SubscriberBuffer,
		subs:      map[string]map[*subscriber]struct{}{},
		done:      make(chan struct{}),
		sweepDone: make(chan struct{}),
	}
	if o.SweepInterval > 0 {
		go s.sweepLoop(o.SweepInterval)
	} else {
		close(s.sweepDone)
	}
	return s, nil
}

// logicError marks failures of the caller's request (a non-integer value,
// an empty key) so that mapErr does not report them as the store being down.
type logicError struct{ err error }

func (e logicError) Error() string { return e.err.Error() }
func (e logicError) Unwrap() error { return e.err }

func logicf(format string, a ...any) error {
	return logicError{fmt.Errorf(format, a...)}
}

// mapErr sorts errors out of bbolt transactions: ErrNotFound and logic
// errors pass through; anything else (closed database, I/O failure) means
// the store cannot answer.
func mapErr(op string, err error) error {
	var le logicError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("bolt %s: %w", op, store.ErrNotFound)
	case errors.As(err, &le):
		return fmt.Errorf("bolt %s: %w", op, le.err)
	case errors.Is(err, store.ErrUnavailable):
		return fmt.Errorf("bolt %s: %w", op, err)
	default:
		return fmt.Errorf("bolt %s: %w: %w", op, store.ErrUnavailable, err)
	}
}

// begin refuses work once ctx is done or the store closed, so both look
// like the store not answering, as they do for Redis.
func (s *Store) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	select {
	case <-s.done:
		return fmt.Errorf("%w: store closed", store.ErrUnavailable)
	default:
		return nil
	}
}

func (s *Store) view(ctx context.Context, op string, fn func(*bbolt.Tx) error) error {
	if err := s.begin(ctx); err != nil {
		return mapErr(op, err)
	}
	return mapErr(op, s.db.View(fn))
}

func (s *Store) update(ctx context.Context, op string, fn func(*bbolt.Tx) error) error {
	if err := s.begin(ctx); err != nil {
		return mapErr(op, err)
	}
	return mapErr(op, s.db.Update(fn))
}

func checkKey(key string) error {
	if key == "" {
		return logicf("empty key")
	}
	return nil
}

// getLive returns the value of a live key (nil, false if absent or
// expired). The slice is only valid inside tx.
func (s *Store) getLive(tx *bbolt.Tx, key string) ([]byte, bool) {
	raw := tx.Bucket(bucketKV).Get([]byte(key))
	if len(raw) < 8 {
		return nil, false
	}
	if exp := int64(binary.BigEndian.Uint64(raw)); exp != 0 && s.now().UnixNano() >= exp {
		return nil, false
	}
	return raw[8:], true
}

// put writes key with an expiry (0 = none), keeping the exp index in step.
func put(tx *bbolt.Tx, key string, value []byte, exp int64) error {
	if err := deleteKV(tx, key); err != nil {
		return err
	}
	rec := make([]byte, 8+len(value))
	binary.BigEndian.PutUint64(rec, uint64(exp))
	copy(rec[8:], value)
	if err := tx.Bucket(bucketKV).Put([]byte(key), rec); err != nil {
		return err
	}
	if exp != 0 {
		return tx.Bucket(bucketExp).Put(expIndexKey(exp, key), nil)
	}
	return nil
}

func deleteKV(tx *bbolt.Tx, key string) error {
	kv := tx.Bucket(bucketKV)
	old := kv.Get([]byte(key))
	if old == nil {
		return nil
	}
	if len(old) >= 8 {
		if exp := int64(binary.BigEndian.Uint64(old)); exp != 0 {
			if err := tx.Bucket(bucketExp).Delete(expIndexKey(exp, key)); err != nil {
				return err
			}
		}
	}
	return kv.Delete([]byte(key))
}

func expIndexKey(exp int64, key string) []byte {
	k := make([]byte, 8+len(key))
	binary.BigEndian.PutUint64(k, uint64(exp))
	copy(k[8:], key)
	return k
}

func (s *Store) expiry(ttl time.Duration) int64 {
	if ttl == 0 {
		return 0
	}
	return s.now().Add(ttl).UnixNano()
}

// Get returns a copy of the value, or store.ErrNotFound if absent or
// expired.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	var out []byte
	err := s.view(ctx, "get", func(tx *bbolt.Tx) error {
		v, ok := s.getLive(tx, key)
		if !ok {
			return store.ErrNotFound
		}
		out = bytes.Clone(v)
		if out == nil {
			out = []byte{}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Set writes value, replacing any previous value and TTL; ttl 0 means no
// expiry, a negative ttl is an error.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return s.update(ctx, "set", func(tx *bbolt.Tx) error {
		if err := checkKey(key); err != nil {
			return err
		}
		if ttl < 0 {
			return logicf("negative ttl %v", ttl)
		}
		return put(tx, key, value, s.expiry(ttl))
	})
}

// SetNX writes only if key is absent or expired and reports whether it did.
func (s *Store) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	var wrote bool
	err := s.update(ctx, "set_nx", func(tx *bbolt.Tx) error {
		if err := checkKey(key); err != nil {
			return err
		}
		if ttl < 0 {
			return logicf("negative ttl %v", ttl)
		}
		if _, ok := s.getLive(tx, key); ok {
			return nil
		}
		wrote = true
		return put(tx, key, value, s.expiry(ttl))
	})
	if err != nil {
		return false, err
	}
	return wrote, nil
}

// Delete removes the keys, of any kind, in one transaction.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	return s.update(ctx, "delete", func(tx *bbolt.Tx) error {
		for _, k := range keys {
			if k == "" {
				continue
			}
			if err := deleteKV(tx, k); err != nil {
				return err
			}
			for _, b := range [][]byte{bucketSets, bucketLists} {
				err := tx.Bucket(b).DeleteBucket([]byte(k))
				if err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
					return err
				}
			}
		}
		return nil
	})
}

// parseCanonical accepts exactly what strconv.FormatInt writes, matching
// the Redis backend, which must compare decimal strings digit by digit.
func parseCanonical(v []byte) (int64, error) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != string(v) {
		return 0, logicf("stored value is not a canonical integer")
	}
	return n, nil
}

// MaxInt64 sets key to max(current, v) with no expiry and returns the
// stored value. bbolt serialises writers, so read-compare-write in one
// transaction is atomic.
func (s *Store) MaxInt64(ctx context.Context, key string, v int64) (int64, error) {
	var out int64
	err := s.update(ctx, "max_int64", func(tx *bbolt.Tx) error {
		if err := checkKey(key); err != nil {
			return err
		}
		out = v
		if cur, ok := s.getLive(tx, key); ok {
			n, err := parseCanonical(cur)
			if err != nil {
				return err
			}
			out = max(n, v)
		}
		return put(tx, key, []byte(strconv.FormatInt(out, 10)), 0)
	})
	if err != nil {
		return 0, err
	}
	return out, nil
}

// GetInt64 reads a decimal integer; ErrNotFound if absent, a plain error if
// the value is not an integer.
func (s *Store) GetInt64(ctx context.Context, key string) (int64, error) {
	v, err := s.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("bolt get_int64: %w", err)
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bolt get_int64: value is not an int64: %w", err)
	}
	return n, nil
}

// SAdd adds members; none is a no-op. Empty members are an error.
func (s *Store) SAdd(ctx context.Context, key string, members ...string) error {
	return s.update(ctx, "sadd", func(tx *bbolt.Tx) error {
		if len(members) == 0 {
			return nil
		}
		if err := checkKey(key); err != nil {
			return err
		}
		b, err := tx.Bucket(bucketSets).CreateBucketIfNotExists([]byte(key))
		if err != nil {
			return err
		}
		for _, m := range members {
			if m == "" {
				return logicf("empty set member")
			}
			if err := b.Put([]byte(m), []byte{}); err != nil {
				return err
			}
		}
		return nil
	})
}

// SRem removes members; an emptied set is deleted, as in Redis.
func (s *Store) SRem(ctx context.Context, key string, members ...string) error {
	return s.update(ctx, "srem", func(tx *bbolt.Tx) error {
		sets := tx.Bucket(bucketSets)
		b := sets.Bucket([]byte(key))
		if b == nil || len(members) == 0 {
			return nil
		}
		for _, m := range members {
			if m == "" {
				continue
			}
			if err := b.Delete([]byte(m)); err != nil {
				return err
			}
		}
		if k, _ := b.Cursor().First(); k == nil {
			return sets.DeleteBucket([]byte(key))
		}
		return nil
	})
}

// SMembers returns the members in byte order; empty if absent.
func (s *Store) SMembers(ctx context.Context, key string) ([]string, error) {
	out := []string{}
	err := s.view(ctx, "smembers", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSets).Bucket([]byte(key))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// LPushTrim prepends value and keeps the newest max entries (max >= 1).
// Entries are keyed by a per-list sequence, so the list is always the
// contiguous range of the newest sequence numbers and trimming deletes only
// what falls off the end.
func (s *Store) LPushTrim(ctx context.Context, key string, value []byte, max int) error {
	return s.update(ctx, "lpush_trim", func(tx *bbolt.Tx) error {
		if max < 1 {
			return logicf("max %d < 1", max)
		}
		if err := checkKey(key); err != nil {
			return err
		}
		b, err := tx.Bucket(bucketLists).CreateBucketIfNotExists([]byte(key))
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		var k [8]byte
		binary.BigEndian.PutUint64(k[:], seq)
		if value == nil {
			value = []byte{}
		}
		if err := b.Put(k[:], value); err != nil {
			return err
		}
		if seq <= uint64(max) {
			return nil
		}
		cutoff := seq - uint64(max)
		var drop [][]byte
		c := b.Cursor()
		for ck, _ := c.First(); ck != nil && binary.BigEndian.Uint64(ck) <= cutoff; ck, _ = c.Next() {
			drop = append(drop, bytes.Clone(ck))
		}
		for _, dk := range drop {
			if err := b.Delete(dk); err != nil {
				return err
			}
		}
		return nil
	})
}

// LRange returns copies of up to n entries, newest first; empty if absent
// or n < 1.
func (s *Store) LRange(ctx context.Context, key string, n int) ([][]byte, error) {
	out := [][]byte{}
	err := s.view(ctx, "lrange", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketLists).Bucket([]byte(key))
		if b == nil || n < 1 {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil && len(out) < n; k, v = c.Prev() {
			e := bytes.Clone(v)
			if e == nil {
				e = []byte{}
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Publish hands payload to every current subscriber of channel in this
// process, each getting its own copy. It never blocks: a subscriber whose
// buffer (Options.SubscriberBuffer) is full misses the message, which the
// contract allows; consumers bound staleness with a cache TTL.
func (s *Store) Publish(ctx context.Context, channel string, payload []byte) error {
	if err := s.begin(ctx); err != nil {
		return mapErr("publish", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for sub := range s.subs[channel] {
		select {
		case sub.ch <- store.Message{Channel: channel, Payload: bytes.Clone(payload)}:
		default:
		}
	}
	return nil
}

// Subscribe registers at once (the subscription is live on return) and
// closes the returned channel when ctx is done or the Store is closed.
func (s *Store) Subscribe(ctx context.Context, channels ...string) (<-chan store.Message, error) {
	if len(channels) == 0 {
		return nil, errors.New("bolt subscribe: no channels")
	}
	if err := s.begin(ctx); err != nil {
		return nil, mapErr("subscribe", err)
	}
	sub := &subscriber{ch: make(chan store.Message, s.subBuf)}
	s.mu.Lock()
	// Checked under the lock so that Close cannot miss this subscriber.
	if err := s.begin(ctx); err != nil {
		s.mu.Unlock()
		return nil, mapErr("subscribe", err)
	}
	for _, c := range channels {
		if s.subs[c] == nil {
			s.subs[c] = map[*subscriber]struct{}{}
		}
		s.subs[c][sub] = struct{}{}
	}
	s.subsWG.Add(1)
	s.mu.Unlock()

	go func() {
		defer s.subsWG.Done()
		select {
		case <-ctx.Done():
		case <-s.done:
		}
		// Publishers send under the read lock, so once we hold the write
		// lock and have unregistered, nobody can send on the closed channel.
		s.mu.Lock()
		for _, c := range channels {
			delete(s.subs[c], sub)
			if len(s.subs[c]) == 0 {
				delete(s.subs, c)
			}
		}
		close(sub.ch)
		s.mu.Unlock()
	}()
	return sub.ch, nil
}

// Ping checks the file is open.
func (s *Store) Ping(ctx context.Context) error {
	return s.view(ctx, "ping", func(*bbolt.Tx) error { return nil })
}

// Durability is fixed by construction: bbolt fsyncs every commit.
func (s *Store) Durability(ctx context.Context) (store.Durability, error) {
	if err := s.Ping(ctx); err != nil {
		return store.Durability{}, err
	}
	return store.Durability{
		Backend:     "bolt",
		AppendOnly:  true,
		AppendFsync: "always",
		Durable:     true,
		Detail:      "bbolt fsyncs every committed transaction: every acknowledged write survives a crash (single replica only)",
	}, nil
}

// Close stops the sweeper and subscriptions and closes the file. It is safe
// to call more than once; later calls return the first call's result. After
// Close every method returns an error wrapping store.ErrUnavailable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		<-s.sweepDone
		s.subsWG.Wait()
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("bolt: close: %w", err)
		}
	})
	return s.closeErr
}

func (s *Store) sweepLoop(every time.Duration) {
	defer close(s.sweepDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			// A failed sweep is retried next tick; reads ignore expired keys
			// regardless, so nothing depends on it succeeding.
			_, _ = s.sweep()
		}
	}
}

// sweepBatch bounds one sweep transaction, so that a backlog of expired keys
// does not hold the writer lock for long.
const sweepBatch = 1000

// sweep deletes up to sweepBatch due keys and reports how many it deleted.
func (s *Store) sweep() (int, error) {
	n := 0
	err := s.db.Update(func(tx *bbolt.Tx) error {
		now := s.now().UnixNano()
		var due [][]byte
		c := tx.Bucket(bucketExp).Cursor()
		for k, _ := c.First(); k != nil && len(due) < sweepBatch; k, _ = c.Next() {
			if int64(binary.BigEndian.Uint64(k)) > now {
				break
			}
			due = append(due, bytes.Clone(k))
		}
		for _, k := range due {
			if err := deleteKV(tx, string(k[8:])); err != nil {
				return err
			}
			// deleteKV removed the index entry already, unless it was stale;
			// deleting it again guarantees the next sweep moves on.
			if err := tx.Bucket(bucketExp).Delete(k); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
