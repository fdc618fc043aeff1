package relay

import (
	"github.com/bccguard/bccguard/policy"
	"github.com/bccguard/bccguard/relay/store"
)

// planFor turns a decision into the copies to queue: the one place where a
// policy action becomes a rewrite (the policy knows no copies; the store
// knows no actions). A rejection is the error the client sees; a hold
// queues nothing (a reviewer's release plans its copies later, with the
// same store.PlanCopies).
func planFor(dec policy.Decision, rcpts []store.Recipient) (store.Plan, error) {
	switch a := dec.Effective(); a {
	case policy.Reject:
		return nil, rejectReply(dec.Message)
	case policy.Quarantine:
		return nil, nil
	case policy.Explode:
		return store.PlanCopies(store.RewriteExplode, rcpts), nil
	case policy.Bcc:
		return store.PlanCopies(store.RewriteBcc, rcpts), nil
	default:
		return store.PlanCopies(store.RewritePass, rcpts), nil
	}
}
