package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotQueued: the message exists but has no deliveries: it is held for
// review in the quarantine, where its own actions apply, not the queue's.
var ErrNotQueued = errors.New("store: message has no deliveries (held for review in the quarantine)")

// DefaultQueueMatchLimit is how many message IDs QueuedMessages returns
// when QueueFilter.Limit is 0.
const DefaultQueueMatchLimit = 10000

// QueueFilter selects queued messages for a bulk queue action
// (`queue delete --all --state deferred --sender …`). Zero values select
// every message with an unfinished delivery.
type QueueFilter struct {
	// States: messages with at least one delivery in one of these states.
	// Only unfinished states (queued, deferred, held) can match: finished
	// deliveries leave the queue.
	States []State
	// Sender, if set, is the exact envelope sender (case-insensitive);
	// NullSender selects messages from the null sender <> instead.
	Sender     string
	NullSender bool
	// Limit caps the IDs returned (0: DefaultQueueMatchLimit).
	Limit int
}

// Unfinished reports whether s is a state a delivery still has work in:
// queued, deferred or held.
func (s State) Unfinished() bool {
	return s == StateQueued || s == StateDeferred || s == StateHeld
}

// QueueAdmin is the operator's side of the queue: acting on one queued
// message at a time, as Postfix's postsuper does. Every backend that
// implements Store implements it too, with the same conformance suite.
//
// Each method acts on every delivery of the message in one transaction.
// A message that does not exist (never stored, or collected once all its
// deliveries were final) is ErrNotFound; one without deliveries (a
// quarantine hold) is ErrNotQueued. A delivery under a live lease (an
// attempt in flight) is changed like the others; its attempt still
// records its outcome: a final one stands (the copy has gone), and a
// deferral of a delivery held meanwhile leaves it held.
type QueueAdmin interface {
	// HoldQueued puts every queued or deferred delivery of the message on
	// hold at now (postsuper -h) and returns how many it changed.
	HoldQueued(ctx context.Context, messageID string, now time.Time) (int, error)
	// ReleaseQueued makes every held delivery of the message queued and
	// due at now (postsuper -H), adding the time it was held to HeldFor,
	// and returns how many it changed.
	ReleaseQueued(ctx context.Context, messageID string, now time.Time) (int, error)
	// Requeue makes every unfinished delivery of the message queued and due
	// at now, with its attempt count (and so its retry backoff) back at
	// zero; held ones are released as by ReleaseQueued. It returns how
	// many it changed.
	Requeue(ctx context.Context, messageID string, now time.Time) (int, error)
	// DeleteQueued removes the message, all its deliveries and its body
	// (postsuper -d) and returns the deliveries that were unfinished, so
	// the caller can tell the sender who will not get it.
	DeleteQueued(ctx context.Context, messageID string) ([]Delivery, error)
	// QueuedMessages returns the IDs of the messages matching f, oldest
	// first.
	QueuedMessages(ctx context.Context, f QueueFilter) ([]string, error)
}
