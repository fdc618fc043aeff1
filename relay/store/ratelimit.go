package store

import (
	"context"
	"time"
)

// RateSlots is how many slots a rate window is counted in: a count over
// the last Window is the sum of the current slot and the RateSlots before
// it, each Window/RateSlots long. The oldest slot may reach a little
// before the window, so a count is never lower than what the window holds
// and at most one slot's worth (1/60 of the window) higher: a limit never
// admits more than it says, and an event leaves the count between one
// window and 61/60 of a window after it.
const RateSlots = 60

// RateSlot is the slot of the window that at falls in.
func RateSlot(at time.Time, window time.Duration) int64 {
	w := int64(window) / RateSlots
	if w <= 0 {
		w = 1
	}
	return at.UnixNano() / w
}

// RateRequest is what one mail transaction adds to one rate count.
type RateRequest struct {
	// Scope names what is counted: a rate limit and the value of its key
	// (a user, a sender domain, a network), as the caller spells it.
	Scope string
	// Window is how far back the count goes; scopes are told apart by
	// their window too, so a limit whose window changed starts afresh.
	Window time.Duration
	// Messages and Recipients are added.
	Messages, Recipients int64
	// MaxMessages and MaxRecipients, when positive, bound the counts: a
	// request that would bring a count over its bound adds nothing.
	MaxMessages, MaxRecipients int64
}

// RateCount is a scope's count over its window.
type RateCount struct {
	Messages   int64 `json:"messages"`
	Recipients int64 `json:"recipients"`
}

// RateResult is what TakeRate did.
type RateResult struct {
	// Taken is set when every request was added. When a request would
	// have exceeded a bound, none was added (a refused transaction
	// counts nowhere).
	Taken bool
	// Counts are the counts of each request's scope, in the order of the
	// requests: after the additions when Taken, as they stand otherwise.
	Counts []RateCount
	// Over marks the requests that would have exceeded their bound.
	Over []bool
}

// RateCounter keeps the counts that rate limits are checked against. It is
// part of the store so that replicas sharing a database share the counts.
// Times are the callers' clocks, as for leases.
type RateCounter interface {
	// TakeRate checks and adds reqs at now, all or nothing, atomically
	// with respect to every other TakeRate and GiveRate on the same scopes
	// (from any process sharing the store). The scopes of one call are
	// distinct.
	TakeRate(ctx context.Context, now time.Time, reqs []RateRequest) (RateResult, error)
	// GiveRate takes back what a TakeRate at the same time added, for a
	// transaction that was not accepted after all. What has left the
	// window meanwhile is not taken back; counts never go below zero.
	GiveRate(ctx context.Context, at time.Time, reqs []RateRequest) error
}
