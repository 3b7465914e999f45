// Package audit records security-relevant events (logins, revocations,
// refusals, admin calls) as JSON lines, one per event, and keeps the most
// recent ones in the shared store so that the admin API can show them from
// any replica.
//
// What an event may carry: Actor, Subject, RequestID and IP identify who did
// what to whom; Reason is a fixed identifier (the same string as the metric
// label). Details holds allow-listed, non-secret fields only, chosen by the
// emitting code: ids, counts, names of scopes, never a token, a cookie, a
// password, a secret, an Authorization header or a query string that may
// hold a guest token. As a last line of defence, Emit drops every Details
// key whose name contains password, passwd, token, cookie, secret or
// authorization (case-insensitively, at any depth) and logs the key's name,
// never its value. Put a token's id in Subject, not in Details.
//
// Refusals are anyone's to cause, so they are recorded apart (Refusal, not
// Emit): throttled per (event, reason), kept in their own bounded recent
// list, and every dropped one is counted and summed up in a periodic
// "audit.refusals_dropped" event. Revocations, admin actions, logins and
// every other change of security state go through Emit, which never drops
// and which no flood of refusals can push out of the recent events.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"
)

// recentWriteBudget bounds the write of an event to the recent list.
const recentWriteBudget = 250 * time.Millisecond

// RecentKey is the store list that holds the most recent events, newest first.
const RecentKey = "audit:recent"

// DefaultRecentMax is the number of recent events kept when Options.RecentMax
// is zero.
const DefaultRecentMax = 1000

// Outcomes used across the gateway.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeDenied  = "denied"
)

// Event is one audit record. Its JSON keys are a stable interface (DESIGN.md
// §6): ts, event, actor, subject, request_id, ip, outcome, reason, and note
// and details when there are any.
type Event struct {
	TS        time.Time `json:"ts"`         // set by Emit when zero
	Event     string    `json:"event"`      // e.g. "user.revoke", "session.rotate"
	Actor     string    `json:"actor"`      // who acted: "user:42", "admin-token:ci", "gateway"
	Subject   string    `json:"subject"`    // what it acted on: "user:7", "dashboard:12"
	RequestID string    `json:"request_id"` // the X-Request-ID, to join with access logs
	IP        string    `json:"ip"`         // client IP as the gateway resolved it
	Outcome   string    `json:"outcome"`    // OutcomeSuccess, OutcomeFailure, OutcomeDenied
	Reason    string    `json:"reason"`     // a fixed identifier (a policy.Reason, a trigger), never free text
	// Note is an admin's own free-text reason, cleaned once with
	// CleanNote by whoever took it from the request.
	Note    string         `json:"note,omitempty"`
	Details map[string]any `json:"details,omitempty"`
}

// RecentStore is the part of the store the recent-events list needs;
// store.Store satisfies it.
type RecentStore interface {
	// LPushTrim prepends value and keeps at most max entries.
	LPushTrim(ctx context.Context, key string, value []byte, max int) error
	// LRange returns up to n entries, newest first.
	LRange(ctx context.Context, key string, n int) ([][]byte, error)
}

// Options configure a Logger.
type Options struct {
	// Writer receives one JSON line per event, in a single Write call. It is
	// stdout or a file opened with OpenSink; nil discards lines (tests that
	// only look at Recent).
	Writer io.Writer
	// Recent keeps the most recent events for the admin API; nil keeps none
	// and Recent then returns ErrNoRecent.
	Recent RecentStore
	// RecentMax bounds the recent list; 0 means DefaultRecentMax.
	RecentMax int
	// Now is the clock for events without a TS; nil means time.Now.
	Now func() time.Time
	// Logger receives the logger's own problems (a failed write, a dropped
	// secret-looking key); nil means zap.NewNop().
	Logger *zap.Logger
	// Throttle shapes how many refusals are recorded (Refusal); its zero
	// value is the defaults.
	Throttle ThrottleOptions
	// Dropped counts refusals the throttle dropped; nil counts nothing
	// (the summary events still record them).
	Dropped DropObserver
}

// ErrNoRecent is returned by Recent when no RecentStore was configured.
var ErrNoRecent = errors.New("audit: no recent-events store")

// Logger writes audit events. It is safe for concurrent use.
type Logger struct {
	mu     sync.Mutex // serialises writes so lines never interleave
	w      io.Writer
	recent RecentStore
	max    int
	now    func() time.Time
	log    *zap.Logger

	refusalMax int
	thr        *throttle
	dropped    DropObserver
}

// New returns a Logger configured by opts.
func New(opts Options) *Logger {
	l := &Logger{w: opts.Writer, recent: opts.Recent, max: opts.RecentMax, now: opts.Now, log: opts.Logger}
	if l.w == nil {
		l.w = io.Discard
	}
	if l.max <= 0 {
		l.max = DefaultRecentMax
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = zap.NewNop()
	}
	l.refusalMax = opts.Throttle.RecentMax
	if l.refusalMax <= 0 {
		l.refusalMax = DefaultRefusalRecentMax
	}
	l.thr = newThrottle(opts.Throttle)
	l.dropped = opts.Dropped
	if l.dropped == nil {
		l.dropped = nopDrops{}
	}
	return l
}

// Emit writes ev as one JSON line and pushes it onto the recent list. A zero
// TS is set from the clock; TS is recorded in UTC. Secret-looking Details
// keys are dropped (see the package comment); ev.Details itself is never
// modified. Emit is synchronous: it returns after the write and the store
// call, so a caller on the request path bounds it with ctx's deadline. The
// line is written even when the store fails; the error then says so and the
// caller decides whether that matters (an admin revocation reports it, a
// per-request refusal only logs it).
func (l *Logger) Emit(ctx context.Context, ev Event) error {
	return l.record(ctx, ev, RecentKey, l.max)
}

// requestKey is the context key of WithRequest.
type requestKey struct{}

type requestInfo struct{ id, ip string }

// WithRequest returns ctx carrying the request id and client address of
// the request being served, so that an event emitted anywhere below it
// without its own RequestID or IP gets them: the one join between audit
// events, access-log records and Superset's own log.
func WithRequest(ctx context.Context, requestID, ip string) context.Context {
	return context.WithValue(ctx, requestKey{}, requestInfo{requestID, ip})
}

// record writes ev and keeps it on the recent list key, at most max long.
func (l *Logger) record(ctx context.Context, ev Event, key string, max int) error {
	if ev.TS.IsZero() {
		ev.TS = l.now()
	}
	if ri, ok := ctx.Value(requestKey{}).(requestInfo); ok {
		if ev.RequestID == "" {
			ev.RequestID = ri.id
		}
		if ev.IP == "" {
			ev.IP = ri.ip
		}
	}
	ev.TS = ev.TS.UTC()
	if ev.Details != nil {
		var dropped []string
		ev.Details = sanitize(ev.Details, "", &dropped)
		if len(dropped) > 0 {
			l.log.Warn("audit: dropped secret-looking detail keys; emit allow-listed fields only",
				zap.String("event", ev.Event), zap.Strings("keys", dropped))
		}
	}
	line, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("audit: encode %s: %w", ev.Event, err)
	}
	line = append(line, '\n')

	l.mu.Lock()
	_, werr := l.w.Write(line)
	l.mu.Unlock()
	if werr != nil {
		l.log.Error("audit: write failed", zap.String("event", ev.Event), zap.Error(werr))
		werr = fmt.Errorf("audit: write %s: %w", ev.Event, werr)
	}

	var serr error
	if l.recent != nil {
		// The store keeps the line without its newline. The line above is
		// the record; the recent list is a view of it, so a slow store
		// may cost a request at most recentWriteBudget here, not a whole
		// store timeout on top of the one that already failed it.
		rctx, cancel := context.WithTimeout(ctx, recentWriteBudget)
		err := l.recent.LPushTrim(rctx, key, line[:len(line)-1], max)
		cancel()
		if err != nil {
			l.log.Warn("audit: recent list not updated", zap.String("event", ev.Event), zap.Error(err))
			serr = fmt.Errorf("audit: keep recent %s: %w", ev.Event, err)
		}
	}
	return errors.Join(werr, serr)
}

// Recent returns up to n events (all kept ones when n <= 0) whose TS is at or
// after since, newest first: the kept events and the kept refusals merged.
// Refusals take at most a quarter of n (RefusalShare) unless too few other
// events fill the rest, so that a flood of refusals never hides a
// revocation or an admin action from the view. A zero since means no lower
// bound. Entries that do not decode are skipped: the lists are shared with
// other replicas, which may run another version.
func (l *Logger) Recent(ctx context.Context, since time.Time, n int) ([]Event, error) {
	if l.recent == nil {
		return nil, ErrNoRecent
	}
	events, err := l.read(ctx, RecentKey, since, n, l.max)
	if err != nil {
		return nil, err
	}
	refusals, err := l.read(ctx, RecentRefusalsKey, since, n, l.refusalMax)
	if err != nil {
		return nil, err
	}
	return MergeRecent(events, refusals, n), nil
}

// read decodes up to n (all kept when n <= 0) entries of the list key, kept
// at most max long, whose TS is at or after since.
func (l *Logger) read(ctx context.Context, key string, since time.Time, n, max int) ([]Event, error) {
	if n <= 0 || n > max {
		n = max
	}
	// Read the whole kept list when filtering by time: entries from several
	// replicas are only roughly ordered.
	fetch := n
	if !since.IsZero() {
		fetch = max
	}
	raw, err := l.recent.LRange(ctx, key, fetch)
	if err != nil {
		return nil, fmt.Errorf("audit: read recent: %w", err)
	}
	out := make([]Event, 0, min(n, len(raw)))
	for _, b := range raw {
		var ev Event
		if err := json.Unmarshal(b, &ev); err != nil {
			continue
		}
		if !since.IsZero() && ev.TS.Before(since) {
			continue
		}
		out = append(out, ev)
		if len(out) == n {
			break
		}
	}
	return out, nil
}

// RefusalShare is the largest share of a Recent answer of n events that
// refusals may take while other events are left to show: 1/RefusalShare.
const RefusalShare = 4

// MergeRecent merges events and refusals, each newest first, into at most n
// events newest first (all of both when n <= 0). Refusals get at most
// n/RefusalShare places, more only when events run out.
func MergeRecent(events, refusals []Event, n int) []Event {
	ne, nr := len(events), len(refusals)
	if n > 0 {
		quota := n / RefusalShare
		nr = min(nr, max(quota, n-ne))
		ne = min(ne, n-nr)
	}
	out := make([]Event, 0, ne+nr)
	i, j := 0, 0
	for i < ne || j < nr {
		// Ties go to the event: a revocation and the refusal it caused
		// share a millisecond often enough.
		if j == nr || i < ne && !events[i].TS.Before(refusals[j].TS) {
			out = append(out, events[i])
			i++
		} else {
			out = append(out, refusals[j])
			j++
		}
	}
	return out
}

// secretLooking reports whether a Details key's name suggests it holds a
// credential.
func secretLooking(key string) bool {
	k := strings.ToLower(key)
	for _, w := range [...]string{"password", "passwd", "token", "cookie", "secret", "authorization"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// sanitize returns d without secret-looking keys, descending into nested
// maps (map[string]any, map[string]string) and []any, and appends the
// dropped keys' dotted paths to dropped. It copies every map it visits rather
// than only changed ones: the caller's map stays untouched, and audit events
// are too rare for the copies to matter. Values of other types (structs) are
// kept as they are, which is one more reason to emit plain fields only.
func sanitize(d map[string]any, prefix string, dropped *[]string) map[string]any {
	out := make(map[string]any, len(d))
	for k, v := range d {
		if secretLooking(k) {
			*dropped = append(*dropped, prefix+k)
			continue
		}
		out[k] = sanitizeValue(v, prefix+k+".", dropped)
	}
	return out
}

func sanitizeValue(v any, prefix string, dropped *[]string) any {
	switch x := v.(type) {
	case map[string]any:
		return sanitize(x, prefix, dropped)
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, s := range x {
			m[k] = s
		}
		return sanitize(m, prefix, dropped)
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = sanitizeValue(e, prefix, dropped)
		}
		return s
	default:
		return v
	}
}

// OpenSink opens the audit output named by config: "stdout" (or empty) for
// the process's standard output, otherwise a file path opened for appending
// and created with mode 0600, since audit lines name users and IPs. Closing
// the stdout sink does not close os.Stdout.
func OpenSink(output string) (io.WriteCloser, error) {
	if output == "" || output == "stdout" {
		return nopCloser{os.Stdout}, nil
	}
	f, err := os.OpenFile(output, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", output, err)
	}
	return f, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// MaxNote is the longest note kept, in bytes.
const MaxNote = 500

// CleanNote makes an admin's free-text note safe to keep: control and
// other unprintable characters become spaces, the text is cut to MaxNote
// bytes on a character boundary and trimmed. Every note goes through it
// once, where it leaves the request.
func CleanNote(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) > MaxNote {
		cut := MaxNote
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return strings.TrimSpace(s)
}
