package store

import (
	"context"
	"encoding/json"
	"time"
)

// The notification outbox: what bccguard has to tell security (webhooks,
// email) and senders about held mail, kept durable until it is sent.
//
// A notification is queued in the transaction that makes the event true:
// Spool.Commit for a hold, Approve, Release and Discard for review
// actions (their trailing notices argument), so an event is never lost
// and never announced without having happened. It is then claimed under a
// lease, as deliveries are: with several replicas on one database each
// notification is sent by one of them at a time, retried until it is
// sent or given up, at least once.

// NotificationState is a notification's state.
type NotificationState string

// Notification states. Pending is the only one that is claimed.
const (
	NotificationPending NotificationState = "pending"
	NotificationSent    NotificationState = "sent"
	NotificationFailed  NotificationState = "failed" // given up
)

// Final reports whether no further attempt will be made.
func (s NotificationState) Final() bool {
	return s == NotificationSent || s == NotificationFailed
}

// NewNotification is a notification to queue.
type NewNotification struct {
	// Key identifies the notification for good: a notification whose key
	// is already stored is not queued again (at most one notice per
	// message, event and channel, and one digest per period, however many
	// replicas try). Keys stay taken until the notification is purged.
	Key       string `json:"key"`
	Channel   string `json:"channel"`
	Event     string `json:"event"`
	MessageID string `json:"message_id,omitempty"`
	// Payload is what the sender of the notification needs, as JSON; the
	// store keeps it opaque.
	Payload json.RawMessage `json:"payload"`
}

// Notification is a notification's stored state.
type Notification struct {
	ID          string            `json:"id"`
	Key         string            `json:"key"`
	Channel     string            `json:"channel"`
	Event       string            `json:"event"`
	MessageID   string            `json:"message_id,omitempty"`
	Payload     json.RawMessage   `json:"payload"`
	State       NotificationState `json:"state"`
	Attempts    int               `json:"attempts"`
	CreatedAt   time.Time         `json:"created_at"`
	NextAttempt time.Time         `json:"next_attempt"`
	// DoneAt is when it became final (zero while pending).
	DoneAt    time.Time `json:"done_at,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// ClaimedNotification is a notification handed out by ClaimNotifications
// with the lease that protects it.
type ClaimedNotification struct {
	Notification
	LeaseUntil time.Time
}

// NotificationOutcome is the result of one attempt to send a notification.
type NotificationOutcome struct {
	// State is Sent, Failed (given up) or Pending (try again at
	// NextAttempt).
	State       NotificationState
	NextAttempt time.Time
	Error       string
}

// NotificationFilter selects notifications. Zero values select all.
type NotificationFilter struct {
	States    []NotificationState
	Channel   string
	MessageID string
	// Limit caps the results (0: 1000).
	Limit int
}

// NotificationStore is the outbox side of the store. Every backend that
// implements Store implements it too, with the same conformance suite.
type NotificationStore interface {
	// QueueNotifications queues notifications that go with no other
	// change (digests, tests), in one transaction, skipping those whose
	// key is taken. It returns how many it queued.
	QueueNotifications(ctx context.Context, ns []NewNotification) (int, error)
	// ClaimNotifications returns up to limit pending notifications due at
	// now and not under another live lease, oldest due first, leased to
	// owner for lease.
	ClaimNotifications(ctx context.Context, owner string, now time.Time, limit int, lease time.Duration) ([]ClaimedNotification, error)
	// CompleteNotification records an attempt's outcome and releases the
	// lease; ErrLeaseLost if owner no longer holds it, ErrNotFound if there
	// is no such notification. It counts the attempt.
	CompleteNotification(ctx context.Context, owner, id string, out NotificationOutcome) error
	// NextNotificationDue is the earliest time ClaimNotifications can
	// return something (false if nothing is pending), a leased one
	// counting at its lease's end.
	NextNotificationDue(ctx context.Context) (time.Time, bool, error)
	// Notifications lists notifications matching f, oldest first.
	Notifications(ctx context.Context, f NotificationFilter) ([]Notification, error)
	// PendingNotifications counts pending notifications by channel.
	PendingNotifications(ctx context.Context) (map[string]int, error)
	// PurgeNotifications deletes final notifications that became final
	// before before, and returns how many; their keys are free again.
	PurgeNotifications(ctx context.Context, before time.Time) (int, error)
}
