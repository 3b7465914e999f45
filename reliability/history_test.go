package reliability

import (
	"testing"
	"time"
)

// TestCheck: the checker finds the one accepted use that comes after an
// acknowledged revocation plus the bound, and nothing else.
func TestCheck(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	old := Op{Kind: Use, User: "2", Credential: "old", Issued: at(-5000), Granularity: time.Second}
	use := func(c Op, sentMS, status int) Op {
		c.Sent, c.Done, c.Status = at(sentMS), at(sentMS+5), status
		return c
	}
	ops := []Op{
		{Kind: Revoke, User: "2", Sent: at(0), Done: at(10), Status: 200},
		{Kind: Revoke, User: "3", Sent: at(0), Done: at(10), Status: 503}, // not acknowledged
		use(old, -100, 200), // before the revocation
		use(old, 500, 200),  // within the bound
		use(old, 2000, 401), // refused
		use(old, 2100, 503), // not answered: fine
		use(old, 3000, 200), // the violation
		use(Op{Kind: Use, User: "2", Credential: "new", Issued: at(1000), Granularity: time.Second}, 4000, 200),         // issued after
		use(Op{Kind: Use, User: "3", Credential: "bob", Issued: at(-5000), Granularity: time.Second}, 4000, 200),        // revocation not acknowledged
		use(Op{Kind: Use, User: "2", Credential: "same-second", Issued: at(-500), Granularity: time.Second}, 4000, 200), // ambiguous second
	}
	v := Check(ops, time.Second)
	if len(v) != 1 || v[0].Use.Sent != at(3000) || v[0].Use.Credential != "old" {
		t.Fatalf("Check = %v; want the one use at +3s", v)
	}
	if s := v[0].String(); s == "" {
		t.Fatal("empty description")
	}
	if v := Check(ops, 5*time.Second); len(v) != 0 {
		t.Fatalf("with a 5s bound: %v", v)
	}
}

// TestCheckUnder: a credential is ended by a revocation of any key it
// falls under (a guest token by its dashboard's or the global one, an
// access token by its own id), and by no other key.
func TestCheckUnder(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	guest := Op{Kind: Use, User: "guest", Credential: "guest-token", Under: []string{"guest-dashboard:1", "guest-all"},
		Issued: at(-5000), Granularity: time.Second, Sent: at(3000), Done: at(3005), Status: 200}
	for _, c := range []struct {
		key  string
		want int
	}{{"guest-dashboard:1", 1}, {"guest-all", 1}, {"guest-dashboard:2", 0}, {"token:x", 0}} {
		ops := []Op{{Kind: Revoke, User: c.key, Sent: at(0), Done: at(10), Status: 200}, guest}
		if v := Check(ops, time.Second); len(v) != c.want {
			t.Errorf("revocation of %s: %d violations, want %d", c.key, len(v), c.want)
		}
	}
}
