package store

import (
	"errors"
	"testing"
)

// The stored values never change (queued deliveries and approvals on disk
// and in PostgreSQL hold them); people's names for them round-trip.
func TestRewriteNames(t *testing.T) {
	stored := map[Rewrite]string{RewritePass: "pass", RewriteExplode: "explode", RewriteBcc: "bcc"}
	if len(Rewrites()) != len(stored) {
		t.Fatalf("Rewrites() = %v, want the %d stored ones", Rewrites(), len(stored))
	}
	for _, rw := range Rewrites() {
		if string(rw) != stored[rw] || !rw.Valid() {
			t.Errorf("rewrite %q: stored as %q, valid %v", rw, stored[rw], rw.Valid())
		}
		if got, ok := RewriteNamed(rw.Name()); !ok || got != rw {
			t.Errorf("RewriteNamed(%q) = %q, %v; want %q", rw.Name(), got, ok, rw)
		}
	}
	if RewritePass.Name() != "as-is" {
		t.Errorf("RewritePass.Name() = %q, want as-is", RewritePass.Name())
	}
	for _, name := range []string{"pass", "", "shout", "Explode"} {
		if rw, ok := RewriteNamed(name); ok {
			t.Errorf("RewriteNamed(%q) = %q, want none", name, rw)
		}
	}
}

func TestPlanCopies(t *testing.T) {
	rcpts := []Recipient{{Addr: "a@example.net"}, {Addr: "b@example.org"}}
	for rw, copies := range map[Rewrite]int{RewriteExplode: 2, RewriteBcc: 1, RewritePass: 1} {
		p := PlanCopies(rw, rcpts)
		n := 0
		for _, d := range p {
			n += len(d.Recipients)
			if d.Rewrite != rw {
				t.Errorf("%s: a copy rewritten %s", rw, d.Rewrite)
			}
		}
		if len(p) != copies || n != len(rcpts) || p.Validate() != nil {
			t.Errorf("%s: %d copies to %d recipients (%v), want %d valid copies to %d", rw, len(p), n, p.Validate(), copies, len(rcpts))
		}
	}
	bad := Plan{{Recipients: rcpts[:1], Rewrite: RewriteBcc}, {Recipients: rcpts, Rewrite: RewriteExplode}}
	if err := bad.Validate(); !errors.Is(err, ErrInvalidPlan) {
		t.Errorf("Validate of an explode to two = %v, want ErrInvalidPlan", err)
	}
	if err := (Plan{}).Validate(); err != nil {
		t.Errorf("Validate of an empty plan = %v, want nil (a hold)", err)
	}
}
