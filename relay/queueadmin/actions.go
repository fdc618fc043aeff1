package queueadmin

import (
	"context"
	"fmt"
	"time"

	"github.com/bccguard/bccguard/relay/review"
)

// Actions on one message (Result.Action).
const (
	ActionHold    = "hold"
	ActionRelease = "release"
	ActionRequeue = "requeue"
)

// Result is what a hold, release or requeue did to one message.
type Result struct {
	ID     string `json:"id"`
	Action string `json:"action"`
	// Changed is how many of its deliveries changed.
	Changed int `json:"changed"`
	// Note says why nothing changed.
	Note string `json:"note,omitempty"`
	// Error is set, in a list of results (the CLI's, for several IDs),
	// for a message the action failed on.
	Error *review.Error `json:"error,omitempty"`
}

// Hold puts the message's queued and deferred deliveries on hold
// (postsuper -h): they are not attempted, and the queue lifetime does not
// run for them, until Release or Requeue. An attempt in flight finishes;
// if it defers, the delivery stays held.
func (s *Service) Hold(ctx context.Context, a review.Actor, id string) (Result, error) {
	return s.change(ctx, a, ActionHold, id, s.st.HoldQueued, "no delivery of it is queued or deferred")
}

// Release makes the message's held deliveries due now (postsuper -H).
func (s *Service) Release(ctx context.Context, a review.Actor, id string) (Result, error) {
	return s.change(ctx, a, ActionRelease, id, s.st.ReleaseQueued, "none of its deliveries is held")
}

// Requeue starts every unfinished delivery of the message over, due now,
// with its retry backoff back at the first interval; held ones are
// released. (postsuper -r re-runs a message through Postfix's cleanup;
// bccguard renders every attempt afresh anyway, so what is left to start
// over is the retry schedule.)
func (s *Service) Requeue(ctx context.Context, a review.Actor, id string) (Result, error) {
	return s.change(ctx, a, ActionRequeue, id, s.st.Requeue, "it has no unfinished delivery")
}

func (s *Service) change(ctx context.Context, a review.Actor, action, id string,
	op func(context.Context, string, time.Time) (int, error), nothing string) (Result, error) {
	res := Result{ID: id, Action: action}
	err := authorize(a, true)
	if err == nil {
		err = checkID(id)
	}
	if err == nil {
		res.Changed, err = op(ctx, id, s.now())
		err = s.storeErr(ctx, err, id, action)
	}
	if err == nil && res.Changed == 0 {
		res.Note = "nothing to " + action + ": " + nothing
	}
	s.record(ctx, a, action, id, err, countText(res.Changed, "delivery", "deliveries")+" changed")
	if err == nil && res.Changed > 0 && action != ActionHold {
		s.wake()
	}
	return res, err
}

func countText(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
