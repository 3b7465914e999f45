// Package redis implements store.Store over go-redis/v9's UniversalClient:
// one server, Sentinel or Cluster, with TLS and ACL users.
//
// It keeps "absent" and "down" apart: redis.Nil becomes store.ErrNotFound;
// anything that means Redis could not answer (network, timeout, closed
// client, LOADING, READONLY, ...) becomes store.ErrUnavailable. Other error
// replies (WRONGTYPE, a script error) are returned as plain errors, since
// retrying will not fix them.
package redis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/superset-gateway/superset-gateway/store"
)

var _ store.Store = (*Store)(nil)

// Options configures New. Only URL is required.
type Options struct {
	// URL names the deployment; see ParseURL for the forms. It may carry a
	// password; New never puts it in an error.
	URL string
	// DialTimeout bounds each connection attempt; zero means 5s.
	DialTimeout time.Duration
	// OpTimeout bounds each command's read and write on the socket (a
	// slow or silent Redis fails the operation, ErrUnavailable, instead
	// of holding the request: a request makes several store calls, and
	// go-redis' 3s default let one take 12s under a 2s latency fault).
	// Zero means 1s. A WAIT is given WaitTimeout on top.
	OpTimeout time.Duration
	// PoolSize is connections per node; zero means go-redis' default
	// (10 per CPU).
	PoolSize int
	// TLSCAFile is a PEM bundle to verify the server with, for rediss://;
	// empty means the system roots.
	TLSCAFile string
	// TLSServerName overrides the name checked in the server certificate.
	TLSServerName string
	// TLSInsecureSkipVerify turns off certificate verification. For tests
	// only: it lets anyone on the path read every session.
	TLSInsecureSkipVerify bool
	// SentinelUsername and SentinelPassword authenticate to the Sentinels
	// when they differ from the master's credentials in the URL.
	SentinelUsername string
	SentinelPassword string
	// WaitReplicas, when above 0, makes every write return only after
	// that many replicas acknowledged it (Redis WAIT on the connection
	// that wrote), so that a failover to a replica keeps every write the
	// gateway acknowledged. A write that is not acknowledged in
	// WaitTimeout is an error wrapping store.ErrUnavailable: it is on the
	// master and may or may not survive a failover, so the caller must not
	// report it as done (every write of the gateway is idempotent and can
	// be repeated).
	WaitReplicas int
	// WaitTimeout bounds the wait for replicas; zero means 500ms.
	WaitTimeout time.Duration
}

// Store is a store.Store over Redis. It is safe for concurrent use.
type Store struct {
	c        goredis.UniversalClient
	cluster  bool
	redacted string
	// wait and waitMS are Options.WaitReplicas and WaitTimeout.
	wait   int
	waitMS int64
	maxInt *goredis.Script

	closeOnce sync.Once
	done      chan struct{} // closed by Close; stops subscription pumps
}

// New connects and PINGs. If Redis cannot be reached (or refuses our
// credentials) the error wraps store.ErrUnavailable; the gateway then exits
// rather than fall back to another store, since replicas on different
// stores would not see each other's revocations.
func New(ctx context.Context, o Options) (*Store, error) {
	cfg, err := ParseURL(o.URL)
	if err != nil {
		return nil, err
	}
	dial := o.DialTimeout
	if dial <= 0 {
		dial = 5 * time.Second
	}
	uo := &goredis.UniversalOptions{
		Addrs:            cfg.Addrs,
		DB:               cfg.DB,
		Username:         cfg.Username,
		Password:         cfg.Password,
		MasterName:       cfg.Master,
		IsClusterMode:    cfg.Mode == Cluster,
		SentinelUsername: o.SentinelUsername,
		SentinelPassword: o.SentinelPassword,
		DialTimeout:      dial,
		ReadTimeout:      opTimeout(o),
		WriteTimeout:     opTimeout(o),
		// One retry, for a pooled connection that died with a Redis
		// restart; go-redis' three would make a silent Redis cost four
		// OpTimeouts per command.
		MaxRetries: 1,
		PoolSize:   o.PoolSize,
		// Without this go-redis ignores ctx deadlines on reads, and a
		// request's deadline would not bound a hung Redis.
		ContextTimeoutEnabled: true,
	}
	if cfg.TLS {
		tc, err := tlsConfig(o, cfg)
		if err != nil {
			return nil, err
		}
		uo.TLSConfig = tc
	}
	s := &Store{
		c:        goredis.NewUniversalClient(uo),
		cluster:  cfg.Mode == Cluster,
		redacted: cfg.Redacted(),
		maxInt:   goredis.NewScript(maxInt64Script),
		done:     make(chan struct{}),
		wait:     o.WaitReplicas,
		waitMS:   500,
	}
	if o.WaitTimeout > 0 {
		s.waitMS = max(o.WaitTimeout.Milliseconds(), 1)
	}
	if cc, ok := s.c.(*goredis.ClusterClient); ok {
		cc.AddHook(reloadOnNetError{cc})
	}
	if err := s.c.Ping(ctx).Err(); err != nil {
		_ = s.c.Close()
		return nil, fmt.Errorf("redis: connect to %s: %w", s.redacted, wrapErr("ping", err))
	}
	return s, nil
}

// opTimeout is o.OpTimeout (default 1s), plus the wait for replicas when
// writes carry a WAIT, which the server holds for up to WaitTimeout.
func opTimeout(o Options) time.Duration {
	t := o.OpTimeout
	if t <= 0 {
		t = time.Second
	}
	if o.WaitReplicas > 0 {
		w := o.WaitTimeout
		if w <= 0 {
			w = 500 * time.Millisecond
		}
		t += w
	}
	return t
}

func tlsConfig(o Options, cfg Config) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         o.TLSServerName,
		InsecureSkipVerify: o.TLSInsecureSkipVerify,
	}
	if tc.ServerName == "" && len(cfg.Addrs) == 1 {
		host, _, _ := net.SplitHostPort(cfg.Addrs[0])
		tc.ServerName = host
	}
	if o.TLSCAFile != "" {
		pem, err := os.ReadFile(o.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("redis: read TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis: TLS CA file %s holds no PEM certificate", o.TLSCAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// String is the URL with the password redacted.
func (s *Store) String() string { return s.redacted }

// Client exposes the underlying client for consumers that need Redis
// itself (the redis_rate limiter). It must not be closed by them.
func (s *Store) Client() goredis.UniversalClient { return s.c }

func (s *Store) closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func checkTTL(op string, ttl time.Duration) error {
	if ttl < 0 {
		// go-redis reads -1 as KEEPTTL; refuse rather than surprise.
		return fmt.Errorf("redis %s: negative ttl %v", op, ttl)
	}
	return nil
}

// Get returns the value or store.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := s.c.Get(ctx, key).Bytes()
	if err != nil {
		return nil, wrapErr("get", err)
	}
	return v, nil
}

// Set writes value; ttl 0 means no expiry and clears any previous TTL. A
// negative ttl is an error.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL("set", ttl); err != nil {
		return err
	}
	if s.wait > 0 {
		return s.waited(ctx, "set", key, func(p goredis.Pipeliner) { p.Set(ctx, key, value, ttl) })
	}
	return wrapErr("set", s.c.Set(ctx, key, value, ttl).Err())
}

// SetNX writes only if key is absent and reports whether it wrote.
func (s *Store) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL("setnx", ttl); err != nil {
		return false, err
	}
	if s.wait > 0 {
		var c *goredis.BoolCmd
		err := s.waited(ctx, "setnx", key, func(p goredis.Pipeliner) { c = p.SetNX(ctx, key, value, ttl) })
		if err != nil {
			return false, err
		}
		return c.Val(), nil
	}
	ok, err := s.c.SetNX(ctx, key, value, ttl).Result()
	if err != nil {
		return false, wrapErr("setnx", err)
	}
	return ok, nil
}

// Delete removes keys of any type; absent keys are not an error. On a
// Cluster the keys may live in different slots, so they are deleted one by
// one in a pipeline (not atomically).
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	if s.wait > 0 {
		if !s.cluster {
			return s.waited(ctx, "delete", keys[0], func(p goredis.Pipeliner) { p.Del(ctx, keys...) })
		}
		for _, k := range keys { // each on its own slot's master
			if err := s.waited(ctx, "delete", k, func(p goredis.Pipeliner) { p.Del(ctx, k) }); err != nil {
				return err
			}
		}
		return nil
	}
	if !s.cluster || len(keys) == 1 {
		return wrapErr("delete", s.c.Del(ctx, keys...).Err())
	}
	_, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, k)
		}
		return nil
	})
	return wrapErr("delete", err)
}

// maxInt64Script compares decimal strings digit by digit because Redis' Lua
// numbers are doubles: epochs in nanoseconds exceed 2^53, where a numeric
// comparison would call distinct stamps equal. Only canonical decimals (as
// strconv.FormatInt writes them) are accepted from the stored value.
const maxInt64Script = `
local function less(a, b)
  local an, bn = a:sub(1, 1) == '-', b:sub(1, 1) == '-'
  if an ~= bn then return an end
  if an then a, b = b:sub(2), a:sub(2) end
  if #a ~= #b then return #a < #b end
  for i = 1, #a do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return false
end
local cur = redis.call('GET', KEYS[1])
local v = ARGV[1]
if cur then
  local digits = cur
  if digits:sub(1, 1) == '-' then digits = digits:sub(2) end
  if not (cur == '0' or digits:match('^[1-9]%d*$')) or #digits > 19 then
    return redis.error_reply('ERR max_int64: stored value is not a canonical integer')
  end
  if not less(cur, v) then
    redis.call('PERSIST', KEYS[1])
    return cur
  end
end
redis.call('SET', KEYS[1], v)
return v
`

// MaxInt64 sets key to max(current, v) atomically (a Lua script, sent by
// EVALSHA and loaded on NOSCRIPT) and returns the stored value.
func (s *Store) MaxInt64(ctx context.Context, key string, v int64) (int64, error) {
	var res string
	var err error
	if s.wait > 0 {
		// EVAL rather than EVALSHA: a NOSCRIPT reply cannot be retried
		// inside the pipeline that carries the WAIT.
		var c *goredis.Cmd
		if err = s.waited(ctx, "max_int64", key, func(p goredis.Pipeliner) {
			c = s.maxInt.Eval(ctx, p, []string{key}, strconv.FormatInt(v, 10))
		}); err != nil {
			return 0, err
		}
		res, err = c.Text()
	} else {
		res, err = s.maxInt.Run(ctx, s.c, []string{key}, strconv.FormatInt(v, 10)).Text()
	}
	if err != nil {
		return 0, wrapErr("max_int64", err)
	}
	n, err := strconv.ParseInt(res, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redis max_int64: stored value is not an int64: %w", err)
	}
	return n, nil
}

// GetInt64 reads a decimal integer; ErrNotFound if absent, a plain error if
// the value is not an integer.
func (s *Store) GetInt64(ctx context.Context, key string) (int64, error) {
	v, err := s.c.Get(ctx, key).Result()
	if err != nil {
		return 0, wrapErr("get_int64", err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redis get_int64: value is not an int64: %w", err)
	}
	return n, nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, m := range ss {
		out[i] = m
	}
	return out
}

// SAdd adds members; none is a no-op.
func (s *Store) SAdd(ctx context.Context, key string, members ...string) error {
	if len(members) == 0 {
		return nil
	}
	if s.wait > 0 {
		return s.waited(ctx, "sadd", key, func(p goredis.Pipeliner) { p.SAdd(ctx, key, toAny(members)...) })
	}
	return wrapErr("sadd", s.c.SAdd(ctx, key, toAny(members)...).Err())
}

// SRem removes members; none, or an absent set, is a no-op.
func (s *Store) SRem(ctx context.Context, key string, members ...string) error {
	if len(members) == 0 {
		return nil
	}
	if s.wait > 0 {
		return s.waited(ctx, "srem", key, func(p goredis.Pipeliner) { p.SRem(ctx, key, toAny(members)...) })
	}
	return wrapErr("srem", s.c.SRem(ctx, key, toAny(members)...).Err())
}

// SMembers returns the members in no particular order; empty if absent.
func (s *Store) SMembers(ctx context.Context, key string) ([]string, error) {
	m, err := s.c.SMembers(ctx, key).Result()
	if err != nil {
		return nil, wrapErr("smembers", err)
	}
	return m, nil
}

// LPushTrim prepends value and trims the list to max entries in one
// MULTI/EXEC. max must be at least 1.
func (s *Store) LPushTrim(ctx context.Context, key string, value []byte, max int) error {
	if max < 1 {
		return fmt.Errorf("redis lpush_trim: max %d < 1", max)
	}
	if s.wait > 0 {
		// A script is as atomic as MULTI/EXEC and, unlike it, can share a
		// pipeline with the WAIT that follows.
		return s.waited(ctx, "lpush_trim", key, func(p goredis.Pipeliner) {
			p.Eval(ctx, lpushTrimScript, []string{key}, value, max)
		})
	}
	_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.LPush(ctx, key, value)
		p.LTrim(ctx, key, 0, int64(max)-1)
		return nil
	})
	return wrapErr("lpush_trim", err)
}

// LRange returns up to n entries, newest first; empty if absent or n < 1.
func (s *Store) LRange(ctx context.Context, key string, n int) ([][]byte, error) {
	if n < 1 {
		// LRANGE 0 -1 would mean "everything".
		return [][]byte{}, nil
	}
	l, err := s.c.LRange(ctx, key, 0, int64(n)-1).Result()
	if err != nil {
		return nil, wrapErr("lrange", err)
	}
	out := make([][]byte, len(l))
	for i, e := range l {
		out[i] = []byte(e)
	}
	return out, nil
}

// Publish sends payload to every subscriber on every replica.
func (s *Store) Publish(ctx context.Context, channel string, payload []byte) error {
	return wrapErr("publish", s.c.Publish(ctx, channel, payload).Err())
}

// Subscribe returns once Redis has confirmed every channel. The returned
// channel closes when ctx is done or the Store is closed. go-redis
// reconnects and resubscribes after a network error; messages published
// meanwhile are lost, which the contract allows (consumers bound staleness
// with a cache TTL). A consumer that stops reading stalls only its own
// subscription.
func (s *Store) Subscribe(ctx context.Context, channels ...string) (<-chan store.Message, error) {
	if len(channels) == 0 {
		return nil, errors.New("redis subscribe: no channels")
	}
	if s.closed() {
		return nil, wrapErr("subscribe", goredis.ErrClosed)
	}
	ps := s.c.Subscribe(ctx, channels...)
	// A message can arrive on the first channel before the last is
	// confirmed; keep it rather than drop it.
	var early []store.Message
	for confirmed := 0; confirmed < len(channels); {
		v, err := ps.Receive(ctx)
		if err != nil {
			_ = ps.Close()
			return nil, wrapErr("subscribe", err)
		}
		switch m := v.(type) {
		case *goredis.Subscription:
			confirmed++
		case *goredis.Message:
			early = append(early, store.Message{Channel: m.Channel, Payload: []byte(m.Payload)})
		}
	}
	in := ps.Channel(goredis.WithChannelSize(128))
	out := make(chan store.Message, 16)
	go func() {
		defer close(out)
		defer ps.Close()
		send := func(m store.Message) bool {
			select {
			case out <- m:
				return true
			case <-ctx.Done():
			case <-s.done:
			}
			return false
		}
		for _, m := range early {
			if !send(m) {
				return
			}
		}
		for {
			select {
			case m, ok := <-in:
				if !ok {
					return
				}
				if !send(store.Message{Channel: m.Channel, Payload: []byte(m.Payload)}) {
					return
				}
			case <-ctx.Done():
				return
			case <-s.done:
				return
			}
		}
	}()
	return out, nil
}

// Ping checks Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	return wrapErr("ping", s.c.Ping(ctx).Err())
}

// Durability reads appendonly and appendfsync with CONFIG GET. Durable is
// true only for appendonly yes with appendfsync always. Where CONFIG is
// refused (an ACL user without +config, a managed Redis that renames it)
// it reports Detail "unknown" and Durable false instead of failing. On a
// Cluster it reports whichever node answered.
func (s *Store) Durability(ctx context.Context) (store.Durability, error) {
	d := store.Durability{Backend: "redis"}
	aof, err := s.configGet(ctx, "appendonly")
	if err != nil {
		return s.unknownDurability(d, err)
	}
	fsync, err := s.configGet(ctx, "appendfsync")
	if err != nil {
		return s.unknownDurability(d, err)
	}
	d.AppendOnly = aof == "yes"
	d.AppendFsync = fsync
	d.Durable = d.AppendOnly && fsync == "always"
	switch {
	case d.Durable:
		d.Detail = "redis appendonly yes, appendfsync always: every acknowledged write survives a crash"
	case d.AppendOnly:
		d.Detail = fmt.Sprintf("redis appendonly yes, appendfsync %s: acknowledged writes (revocations) from up to the last second can be lost on a crash; set appendfsync always", fsync)
	default:
		d.Detail = "redis appendonly no: writes since the last RDB snapshot (revocations included) are lost on a crash; set appendonly yes and appendfsync always"
	}
	return d, nil
}

func (s *Store) unknownDurability(d store.Durability, err error) (store.Durability, error) {
	werr := wrapErr("durability", err)
	if !errors.Is(err, errConfigMissing) && errors.Is(werr, store.ErrUnavailable) {
		return store.Durability{}, werr
	}
	d.Detail = "unknown"
	return d, nil
}

// errConfigMissing means CONFIG GET answered without the parameter (a proxy
// or managed Redis filtering it).
var errConfigMissing = errors.New("redis: CONFIG GET did not return the parameter")

func (s *Store) configGet(ctx context.Context, param string) (string, error) {
	m, err := s.c.ConfigGet(ctx, param).Result()
	if err != nil {
		return "", err
	}
	v, ok := m[param]
	if !ok {
		return "", errConfigMissing
	}
	return v, nil
}

// Close stops subscriptions and closes the client. It is safe to call more
// than once; later calls return nil. After Close every method returns an
// error wrapping store.ErrUnavailable.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		err = s.c.Close()
	})
	if err != nil {
		return fmt.Errorf("redis: close: %w", err)
	}
	return nil
}

const lpushTrimScript = `
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
return 1
`

// waited runs the commands queue adds and then WAIT, in one pipeline on one
// connection to the master that owns key: WAIT counts the replicas that
// acknowledged this connection's writes, so it must follow them on the
// same connection. Fewer than s.wait replicas within the timeout is an
// error wrapping store.ErrUnavailable.
func (s *Store) waited(ctx context.Context, op, key string, queue func(goredis.Pipeliner)) error {
	var c goredis.Cmdable = s.c
	cc, cluster := s.c.(*goredis.ClusterClient)
	if cluster {
		m, err := cc.MasterForKey(ctx, key)
		if err != nil {
			return wrapErr(op, err)
		}
		c = m
	}
	var w *goredis.Cmd
	cmds, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		queue(p)
		w = p.Do(ctx, "WAIT", s.wait, s.waitMS)
		return nil
	})
	for _, cmd := range cmds {
		if cmd.Err() != nil && cmd != goredis.Cmder(w) {
			err = cmd.Err()
			break
		}
	}
	if err != nil {
		// The pipeline went to the node the slot map names, pinned, so
		// go-redis does not follow a MOVED (or ASK) answer nor reload
		// the map for it: a master killed and back as a replica before
		// the client saw the new map answers MOVED to every write of its
		// old slots, until the periodic reload a minute later (found by
		// repeated Cluster failovers, make cluster-failover-report). The command did not run;
		// the write is refused and the next one goes where the new map
		// says.
		if cluster && isRedirect(err) {
			cc.ReloadState(ctx)
		}
		return wrapErr(op, err)
	}
	n, err := w.Int64()
	if err != nil {
		return wrapErr(op, err)
	}
	if n < int64(s.wait) {
		return fmt.Errorf("redis %s: written on the master but acknowledged by %d of %d replicas within %dms, so a failover may lose it: %w",
			op, n, s.wait, s.waitMS, store.ErrUnavailable)
	}
	return nil
}

// isRedirect reports a Cluster redirection answer (MOVED or ASK).
func isRedirect(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "MOVED ") || strings.HasPrefix(msg, "ASK ")
}

// reloadOnNetError asks a Cluster client to reload the slot map when a
// command fails on the network. go-redis reloads it on MOVED and every
// 60s, but a master that died answers nothing, not MOVED: until the next
// reload every key of its slots would fail, although its replica took them
// over within a second (TestClusterFailoverKeepsAcknowledgedRevocations).
// The reload is lazy and coalesced by go-redis, so a burst of failures
// costs one CLUSTER SLOTS.
type reloadOnNetError struct{ c *goredis.ClusterClient }

func (h reloadOnNetError) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h reloadOnNetError) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		h.check(ctx, err)
		return err
	}
}

func (h reloadOnNetError) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		h.check(ctx, err)
		return err
	}
}

func (h reloadOnNetError) check(ctx context.Context, err error) {
	var ne net.Error
	if err != nil && (errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)) {
		h.c.ReloadState(ctx)
	}
}
