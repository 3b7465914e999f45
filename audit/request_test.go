package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestEmitTakesTheRequestFromTheContext(t *testing.T) {
	var out bytes.Buffer
	l := New(Options{Writer: &out})
	ctx := WithRequest(context.Background(), "req-42", "192.0.2.9")
	if err := l.Emit(ctx, Event{Event: "access_token.created"}); err != nil {
		t.Fatal(err)
	}
	// Set ones win.
	if err := l.Emit(ctx, Event{Event: "epoch.stamp", RequestID: "req-own", IP: "198.51.100.1"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Emit(context.Background(), Event{Event: "session.expired"}); err != nil {
		t.Fatal(err)
	}
	var got []Event
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var ev Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
	}
	if got[0].RequestID != "req-42" || got[0].IP != "192.0.2.9" {
		t.Fatalf("from context: %+v", got[0])
	}
	if got[1].RequestID != "req-own" || got[1].IP != "198.51.100.1" {
		t.Fatalf("own values replaced: %+v", got[1])
	}
	if got[2].RequestID != "" {
		t.Fatalf("background event got %q", got[2].RequestID)
	}
}

// TestRefusalSummaryIsNoRequests: the dropped-refusals summary a request
// happens to trigger does not carry that request's id.
func TestRefusalSummaryIsNoRequests(t *testing.T) {
	var out bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(Options{Writer: &out, Now: func() time.Time { return now }, Throttle: ThrottleOptions{Rate: 0.001, Burst: 1, SummaryEvery: time.Second}})
	ctx := WithRequest(context.Background(), "req-flood", "")
	for i := 0; i < 5; i++ {
		_ = l.Refusal(ctx, Event{Event: "jwt.refused", Reason: "expired"})
	}
	now = now.Add(2 * time.Second)
	_ = l.Refusal(ctx, Event{Event: "jwt.refused", Reason: "expired"})
	found := false
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var ev Event
		_ = json.Unmarshal([]byte(line), &ev)
		if ev.Event == EventRefusalsDropped {
			found = true
			if ev.RequestID != "" {
				t.Fatalf("summary carries %q", ev.RequestID)
			}
		}
	}
	if !found {
		t.Fatalf("no summary in %s", out.String())
	}
}

// withoutRequestID are the events whose audit.Event literal leaves
// RequestID unset, and why each still carries it or cannot. A new event
// must either set RequestID or be added here with its reason.
var withoutRequestID = map[string]string{
	"access_token.created":     "emitted under the /-/tokens request's context: Emit takes it from audit.WithRequest",
	"access_token.revoked":     "emitted under the /-/tokens or admin request's context: Emit takes it from audit.WithRequest",
	"session.revoked":          "Vault.emit sets it from the request",
	"session.logout":           "Vault.emit sets it from the request",
	"session.rotated":          "Vault.emit sets it from the request",
	"login.failure":            "Vault.emit sets it from the request",
	"login.success":            "Vault.emit sets it from the request",
	"session.ended":            "Vault.emit sets it from the request",
	"session.expired":          "background: the sweeper ends idle sessions, no request",
	"store.generation_created": "background: written at start",
	"audit.refusals_dropped":   "background: a periodic summary of many requests",
	"(computed)":               "admin page: page.event sets it from the request after the literal",
	"extension.verdict":        "once per extension version, when the policy first decides on it (a refresh or the first answer that lists it): about the extension, not one request",
	"upstream.secret_mismatch": "once per node, found by the health probe (no request) or the first answer; Emit takes the request's id from the context when a request found it",
}

// TestEveryAuditEventCarriesTheRequestID walks every audit.Event literal
// in the gateway's source and checks that it sets RequestID or is one of
// withoutRequestID, so that correlation cannot be forgotten silently.
func TestEveryAuditEventCarriesTheRequestID(t *testing.T) {
	fset := token.NewFileSet()
	seen := 0
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "e2e" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && path != "..") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			cl, ok := n.(*ast.CompositeLit)
			if !ok || !isEventType(cl.Type, f.Name.Name) {
				return true
			}
			seen++
			name, hasID := "(computed)", false
			for _, e := range cl.Elts {
				kv, ok := e.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				switch key := kv.Key.(*ast.Ident); {
				case key == nil:
				case key.Name == "RequestID":
					hasID = true
				case key.Name == "Event":
					if bl, ok := kv.Value.(*ast.BasicLit); ok {
						name, _ = strconv.Unquote(bl.Value)
					}
				}
			}
			if len(cl.Elts) == 0 {
				return true // the zero Event, e.g. a "not found" return
			}
			if !hasID {
				if _, ok := withoutRequestID[name]; !ok {
					t.Errorf("%s: audit event %q sets no RequestID; set it, or say in withoutRequestID why not", fset.Position(cl.Pos()), name)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 15 {
		t.Fatalf("walked only %d audit.Event literals: the walk is broken", seen)
	}
}

func isEventType(e ast.Expr, pkg string) bool {
	switch x := e.(type) {
	case *ast.SelectorExpr:
		id, ok := x.X.(*ast.Ident)
		return ok && id.Name == "audit" && x.Sel.Name == "Event"
	case *ast.Ident:
		return pkg == "audit" && x.Name == "Event"
	}
	return false
}
