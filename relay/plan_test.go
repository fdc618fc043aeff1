package relay

import (
	"errors"
	"fmt"
	"testing"

	"github.com/bccguard/bccguard/policy"
	"github.com/bccguard/bccguard/relay/store"
)

// Every decision that queues copies plans valid ones, and an invalid plan
// (which only a bug in bccguard makes) is a temporary failure for the
// client, never a 250 nor a 5xx.
func TestPlanFor(t *testing.T) {
	rcpts := []store.Recipient{{Addr: "a@example.net"}, {Addr: "b@example.org"}, {Addr: "c@example.com"}}
	for action, want := range map[policy.Action]struct {
		rewrite store.Rewrite
		copies  int
	}{
		policy.Pass:    {store.RewritePass, 1},
		policy.Explode: {store.RewriteExplode, 3},
		policy.Bcc:     {store.RewriteBcc, 1},
	} {
		p, err := planFor(policy.Decision{Action: action}, rcpts)
		if err != nil || len(p) != want.copies || p[0].Rewrite != want.rewrite || p.Validate() != nil {
			t.Errorf("%s: plan %+v, %v; want %d valid copies of %s", action, p, err, want.copies, want.rewrite)
		}
	}
	if p, err := planFor(policy.Decision{Action: policy.Quarantine}, rcpts); err != nil || len(p) != 0 {
		t.Errorf("quarantine: plan %+v, %v; want none", p, err)
	}
	if p, err := planFor(policy.Decision{Action: policy.Explode, Monitor: true}, rcpts); err != nil || len(p) != 1 || p[0].Rewrite != store.RewritePass {
		t.Errorf("monitored explode: plan %+v, %v; want one pass copy", p, err)
	}
	if _, err := planFor(policy.Decision{Action: policy.Reject, Message: "no"}, rcpts); !isSMTPErr(err) {
		t.Errorf("reject: %v, want the SMTP reply", err)
	}

	bad := store.Plan{{Recipients: rcpts[:2], Rewrite: store.RewriteExplode}}
	err := bad.Validate()
	if !errors.Is(err, store.ErrInvalidPlan) {
		t.Fatalf("Validate of an explode to two = %v, want ErrInvalidPlan", err)
	}
	reply, closeConn := replyFor(fmt.Errorf("commit: %w", err))
	if reply.Code != 451 || closeConn {
		t.Errorf("reply to an invalid plan = %d (close %v), want 451", reply.Code, closeConn)
	}
}
