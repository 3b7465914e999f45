package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/store"
)

// memList is an in-memory RecentStore with the semantics of store.Store's
// LPushTrim/LRange.
type memList struct {
	mu    sync.Mutex
	lists map[string][][]byte
	err   error
}

func (m *memList) LPushTrim(_ context.Context, key string, value []byte, max int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	if m.lists == nil {
		m.lists = map[string][][]byte{}
	}
	l := append([][]byte{bytes.Clone(value)}, m.lists[key]...)
	if len(l) > max {
		l = l[:max]
	}
	m.lists[key] = l
	return nil
}

func (m *memList) LRange(_ context.Context, key string, n int) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	l := m.lists[key]
	return l[:min(n, len(l))], nil
}

var _ audit.RecentStore = (store.Store)(nil)

// fakeClock advances one second per call.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { c.t = c.t.Add(time.Second); return c.t }

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func TestEmitWritesOneJSONLineWithStableKeys(t *testing.T) {
	var buf bytes.Buffer
	clk := &fakeClock{t: t0}
	l := audit.New(audit.Options{Writer: &buf, Now: clk.Now})
	err := l.Emit(context.Background(), audit.Event{
		Event: "user.revoke", Actor: "admin-token:ci", Subject: "user:42",
		RequestID: "req-1", IP: "192.0.2.7", Outcome: audit.OutcomeSuccess, Reason: "offboarding",
		Details: map[string]any{"epoch": 1746100801000},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ts":"2026-05-01T12:00:01Z","event":"user.revoke","actor":"admin-token:ci","subject":"user:42","request_id":"req-1","ip":"192.0.2.7","outcome":"success","reason":"offboarding","details":{"epoch":1746100801000}}` + "\n"
	if got := buf.String(); got != want {
		t.Fatalf("line\n got %s\nwant %s", got, want)
	}
}

func TestEmptyFieldsAreStillPresent(t *testing.T) {
	var buf bytes.Buffer
	l := audit.New(audit.Options{Writer: &buf})
	if err := l.Emit(context.Background(), audit.Event{Event: "x", TS: t0.In(time.FixedZone("CEST", 7200))}); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ts", "event", "actor", "subject", "request_id", "ip", "outcome", "reason"} {
		if _, ok := m[k]; !ok {
			t.Errorf("key %q missing from %s", k, buf.String())
		}
	}
	if _, ok := m["details"]; ok {
		t.Errorf("details present without details: %s", buf.String())
	}
	if m["ts"] != "2026-05-01T12:00:00Z" {
		t.Errorf("ts = %v, want UTC", m["ts"])
	}
}

func TestSecretLookingDetailKeysAreDropped(t *testing.T) {
	var buf bytes.Buffer
	core, logs := observer.New(zap.WarnLevel)
	l := audit.New(audit.Options{Writer: &buf, Logger: zap.New(core)})
	details := map[string]any{
		"scopes":        []any{"charts:read"},
		"Password":      "hunter2",
		"new_password":  "hunter3",
		"access_token":  "sgw_abc_def",
		"Cookie":        "session=eyJ",
		"client_secret": "s3cr3t",
		"authorization": "Bearer eyJ",
		"headers":       map[string]string{"Authorization": "Bearer eyJnested", "User-Agent": "curl"},
		"items":         []any{map[string]any{"guest_token": "eyJguest", "id": 3}},
	}
	if err := l.Emit(context.Background(), audit.Event{Event: "token.create", Details: details}); err != nil {
		t.Fatal(err)
	}
	line := buf.String()
	for _, secret := range []string{"hunter2", "hunter3", "sgw_abc_def", "session=eyJ", "s3cr3t", "Bearer", "eyJguest"} {
		if strings.Contains(line, secret) {
			t.Errorf("secret %q reached the audit line: %s", secret, line)
		}
	}
	for _, kept := range []string{`"scopes":["charts:read"]`, `"User-Agent":"curl"`, `"id":3`} {
		if !strings.Contains(line, kept) {
			t.Errorf("allowed detail %s missing: %s", kept, line)
		}
	}
	if _, ok := details["Password"]; !ok {
		t.Error("Emit modified the caller's Details")
	}
	// The drop is logged by key name, never by value.
	if logs.Len() != 1 {
		t.Fatalf("%d warnings, want 1", logs.Len())
	}
	logged := fmt.Sprint(logs.All()[0].ContextMap())
	if !strings.Contains(logged, "headers.Authorization") || strings.Contains(logged, "hunter2") {
		t.Errorf("warning = %s", logged)
	}
}

// lineWriter records each Write call separately.
type lineWriter struct {
	mu     sync.Mutex
	writes []string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func TestConcurrentEmitsAreWholeLines(t *testing.T) {
	w := &lineWriter{}
	l := audit.New(audit.Options{Writer: w, Recent: &memList{}})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				_ = l.Emit(context.Background(), audit.Event{Event: "e", Subject: fmt.Sprintf("%d/%d", g, i)})
			}
		})
	}
	wg.Wait()
	if len(w.writes) != 400 {
		t.Fatalf("%d writes, want 400 (one per event)", len(w.writes))
	}
	for _, s := range w.writes {
		if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") || !json.Valid([]byte(s)) {
			t.Fatalf("write is not one JSON line: %q", s)
		}
	}
}

func TestRecentNewestFirstSinceAndLimit(t *testing.T) {
	clk := &fakeClock{t: t0}
	l := audit.New(audit.Options{Recent: &memList{}, RecentMax: 5, Now: clk.Now})
	ctx := context.Background()
	for i := 1; i <= 7; i++ { // TS = t0+1s … t0+7s
		if err := l.Emit(ctx, audit.Event{Event: "e", Subject: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	subjects := func(evs []audit.Event) string {
		var s []string
		for _, e := range evs {
			s = append(s, e.Subject)
		}
		return strings.Join(s, ",")
	}
	all, err := l.Recent(ctx, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := subjects(all); got != "7,6,5,4,3" {
		t.Errorf("all kept = %s, want 7,6,5,4,3 (RecentMax 5, newest first)", got)
	}
	two, _ := l.Recent(ctx, time.Time{}, 2)
	if got := subjects(two); got != "7,6" {
		t.Errorf("n=2: %s", got)
	}
	since, _ := l.Recent(ctx, t0.Add(6*time.Second), 0)
	if got := subjects(since); got != "7,6" {
		t.Errorf("since t0+6s: %s, want 7,6 (inclusive)", got)
	}
	if !all[0].TS.Equal(t0.Add(7 * time.Second)) {
		t.Errorf("TS round trip: %v", all[0].TS)
	}
}

func TestRecentWithoutStore(t *testing.T) {
	l := audit.New(audit.Options{})
	if err := l.Emit(context.Background(), audit.Event{Event: "e"}); err != nil {
		t.Fatalf("emit without writer or store: %v", err)
	}
	if _, err := l.Recent(context.Background(), time.Time{}, 1); !errors.Is(err, audit.ErrNoRecent) {
		t.Fatalf("err = %v, want ErrNoRecent", err)
	}
}

func TestStoreFailureStillWritesLine(t *testing.T) {
	var buf bytes.Buffer
	l := audit.New(audit.Options{Writer: &buf, Recent: &memList{err: fmt.Errorf("redis: %w", store.ErrUnavailable)}})
	err := l.Emit(context.Background(), audit.Event{Event: "user.revoke"})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("err = %v, want store.ErrUnavailable wrapped", err)
	}
	if !strings.Contains(buf.String(), `"event":"user.revoke"`) {
		t.Fatal("line not written when the store failed")
	}
	if _, err := l.Recent(context.Background(), time.Time{}, 1); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Recent err = %v", err)
	}
}

func TestRecentSkipsUndecodableEntries(t *testing.T) {
	m := &memList{}
	l := audit.New(audit.Options{Recent: m})
	ctx := context.Background()
	_ = l.Emit(ctx, audit.Event{Event: "good"})
	_ = m.LPushTrim(ctx, audit.RecentKey, []byte("not json"), 10)
	evs, err := l.Recent(ctx, time.Time{}, 0)
	if err != nil || len(evs) != 1 || evs[0].Event != "good" {
		t.Fatalf("Recent = %+v, %v", evs, err)
	}
}

func TestOpenSinkFileAppendsWith0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	for _, ev := range []string{"first", "second"} {
		w, err := audit.OpenSink(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := audit.New(audit.Options{Writer: w}).Emit(context.Background(), audit.Event{Event: ev}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode %o, want 600", perm)
	}
	f, _ := os.Open(path)
	defer f.Close()
	var events []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev audit.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		events = append(events, ev.Event)
	}
	if strings.Join(events, ",") != "first,second" {
		t.Errorf("file holds %v, want first,second (appended)", events)
	}
}

func TestOpenSinkStdoutIsNotClosed(t *testing.T) {
	w, err := audit.OpenSink("stdout")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stdout.Stat(); err != nil {
		t.Fatalf("stdout closed: %v", err)
	}
	if _, err := audit.OpenSink(filepath.Join(t.TempDir(), "no", "such", "dir", "a.log")); err == nil {
		t.Fatal("opening a file in a missing directory succeeded")
	}
}
