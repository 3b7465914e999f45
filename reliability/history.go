// Package reliability checks histories of what a gateway acknowledged and
// answered under faults: the invariant every run must keep is that no
// credential issued before an acknowledged revocation is accepted after the
// acknowledgement plus the documented propagation bound.
package reliability

import (
	"fmt"
	"sort"
	"sync"
	"time"
)

// Kind is what an operation of a history did.
type Kind int

const (
	// Revoke is a revocation of every credential of User issued before
	// it (User is a revocation key: a user id, or any name a Use lists in
	// Under, such as a dashboard's guest tokens or one access token); it
	// counts only when acknowledged (Status 2xx).
	Revoke Kind = iota
	// Use presents a credential of User issued at Issued.
	Use
)

// Op is one operation as the client saw it: sent at Sent, answered at Done
// with Status (0: no answer).
type Op struct {
	Kind       Kind
	User       string
	Credential string // a name for reports, never the credential
	// Under are the other revocation keys that end a credential (Use):
	// a guest token falls under its dashboards' keys and the global one,
	// an access token under its own id besides its owner's.
	Under []string
	// Issued is when the credential was issued (Use); Granularity is the
	// precision of Issued (a JWT's iat has whole seconds).
	Issued      time.Time
	Granularity time.Duration
	Sent, Done  time.Time
	Status      int
}

func ok(status int) bool { return status >= 200 && status < 300 }

// History records operations from many goroutines.
type History struct {
	mu  sync.Mutex
	ops []Op
}

// Add records op.
func (h *History) Add(op Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// Ops returns a copy of the operations in the order they were sent.
func (h *History) Ops() []Op {
	h.mu.Lock()
	out := append([]Op(nil), h.ops...)
	h.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Sent.Before(out[j].Sent) })
	return out
}

// Violation is an accepted use of a credential that an acknowledged
// revocation had ended.
type Violation struct {
	Use, Revoke Op
}

func (v Violation) String() string {
	return fmt.Sprintf("%s of %s (issued %s) accepted at %s, %s after the revocation acknowledged at %s",
		v.Use.Credential, v.Revoke.User, v.Use.Issued.Format(time.RFC3339Nano), v.Use.Sent.Format(time.RFC3339Nano),
		v.Use.Sent.Sub(v.Revoke.Done), v.Revoke.Done.Format(time.RFC3339Nano))
}

// Check returns every use that was accepted although it was sent more than
// bound after the acknowledgement of a revocation of its user, and the
// credential was issued before that revocation was sent (by a whole
// Granularity, since a credential issued in the same second as a stamp is
// ambiguous and the gateway refuses it, which Check does not require).
func Check(ops []Op, bound time.Duration) []Violation {
	var out []Violation
	acked := map[string][]Op{}
	for _, op := range ops {
		if op.Kind == Revoke && ok(op.Status) {
			acked[op.User] = append(acked[op.User], op)
		}
	}
	for _, u := range ops {
		if u.Kind != Use || !ok(u.Status) {
			continue
		}
	keys:
		for _, k := range append([]string{u.User}, u.Under...) {
			for _, r := range acked[k] {
				if !u.Issued.Add(u.Granularity).After(r.Sent) && u.Sent.After(r.Done.Add(bound)) {
					out = append(out, Violation{Use: u, Revoke: r})
					break keys
				}
			}
		}
	}
	return out
}
