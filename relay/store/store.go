// Package store is bccguard's durable queue: messages (stored once, however
// many recipients they have), their deliveries (each with its own state) and,
// later, the quarantine and audit log.
//
// The Store interface is the seam between the SMTP side and persistence. Every
// backend (the embedded one in store/embedded, PostgreSQL later) must pass the
// one conformance suite in store/storetest, so the relay can rely on the same
// semantics everywhere:
//
//   - Spool + Commit: a message body is streamed into a Spool; Commit makes the
//     body, the message record and all its deliveries durable (fsync'd) in one
//     step before it returns. Nothing is visible to Claim before Commit, and an
//     aborted or crashed spool leaves nothing behind that a later Open sees.
//   - Claim hands out due deliveries under a lease: while a lease holds, no
//     other Claim returns that delivery. A lease that expires (its holder died)
//     makes the delivery claimable again: delivery is at-least-once.
//   - Complete records one attempt's outcome. When every delivery of a message
//     is final the message body may be removed.
package store

import (
	"context"
	"errors"
	"io"
	"time"
)

// Errors a backend returns; callers test them with errors.Is.
var (
	// ErrNotFound: no message or delivery with that ID.
	ErrNotFound = errors.New("store: not found")
	// ErrLeaseLost: the caller's lease on a delivery expired and another
	// claimant may hold it now; the outcome was not recorded.
	ErrLeaseLost = errors.New("store: lease lost")
	// ErrNoSpace: the backend could not write because its disk or quota is
	// full. The relay answers 452 4.3.1 and accepts again when space returns.
	ErrNoSpace = errors.New("store: no space left")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
)

// Recipient is one envelope recipient with its DSN parameters (RFC 3461).
type Recipient struct {
	Addr string `json:"addr"`
	// Notify is the NOTIFY= values (NEVER, SUCCESS, FAILURE, DELAY); empty
	// when the client gave none.
	Notify []string `json:"notify,omitempty"`
	// ORcpt is the ORCPT= value as "type;address" (decoded), empty if absent.
	ORcpt string `json:"orcpt,omitempty"`
}

// Envelope is what the client said in MAIL FROM and RCPT TO.
type Envelope struct {
	// Sender is the reverse-path; empty for the null sender <>.
	Sender string `json:"sender"`
	// Ret is the DSN RET= value (FULL or HDRS), empty if absent.
	Ret string `json:"ret,omitempty"`
	// EnvID is the DSN ENVID= value (decoded), empty if absent.
	EnvID string `json:"envid,omitempty"`
	// Body is the BODY= value (7BIT, 8BITMIME, BINARYMIME), empty if absent.
	Body string `json:"body,omitempty"`
	// SMTPUTF8 is set when the client used the SMTPUTF8 parameter.
	SMTPUTF8   bool        `json:"smtputf8,omitempty"`
	Recipients []Recipient `json:"recipients"`
}

// Client describes who handed the message to bccguard.
type Client struct {
	Listener string `json:"listener"`
	IP       string `json:"ip"`
	Helo     string `json:"helo,omitempty"`
	User     string `json:"user,omitempty"` // AUTH identity, empty if none
	TLS      bool   `json:"tls,omitempty"`
}

// Message is the stored record of one accepted message. The raw message
// (with bccguard's Received: header first) is read back with Store.Open.
type Message struct {
	ID         string    `json:"id"`
	Envelope   Envelope  `json:"envelope"`
	Client     Client    `json:"client"`
	ReceivedAt time.Time `json:"received_at"`
	// Size is the length in bytes of the stored raw message.
	Size int64 `json:"size"`
	// HeaderLen is the length of the stored header block, including the
	// empty line that ends it (0 if the message had no body separator), so
	// renderers can seek straight to the body.
	HeaderLen int64 `json:"header_len"`
	// Decision is the policy decision as the policy package encodes it;
	// the store keeps it opaque.
	Decision []byte `json:"decision,omitempty"`
	// Quarantine, when set on a message committed without deliveries,
	// makes it a Hold for review.
	Quarantine *Quarantine `json:"quarantine,omitempty"`
	// AuthResults is the Authentication-Results: field (with its CRLF)
	// recording the DKIM verification made at ingest, written at the top
	// of every copy; empty when nothing was verified. It is kept here
	// because the result is known only once the whole message has been
	// spooled, after its header block.
	AuthResults string `json:"auth_results,omitempty"`
}

// State is a delivery's state.
type State string

// Delivery states. Queued and Deferred are pending; Held is neither
// pending nor final (an operator put it on hold: it is not attempted and
// does not age towards the queue lifetime until released); the others are
// final.
const (
	StateQueued    State = "queued"
	StateDeferred  State = "deferred"
	StateHeld      State = "held"
	StateDelivered State = "delivered"
	StateBounced   State = "bounced"
	StateExpired   State = "expired"
)

// Final reports whether no further attempt will be made.
func (s State) Final() bool {
	return s == StateDelivered || s == StateBounced || s == StateExpired
}

// Delivery is a delivery's stored state.
type Delivery struct {
	ID          string      `json:"id"`
	MessageID   string      `json:"message_id"`
	Recipients  []Recipient `json:"recipients"`
	Rewrite     Rewrite     `json:"rewrite"`
	State       State       `json:"state"`
	Attempts    int         `json:"attempts"`
	CreatedAt   time.Time   `json:"created_at"`
	NextAttempt time.Time   `json:"next_attempt"`
	// LastError is the last attempt's error or upstream reply, safe to show
	// to operators.
	LastError string `json:"last_error,omitempty"`
	// HeldSince is when an operator put the delivery on hold (zero unless
	// State is Held); HeldFor is how long it was held before, in total.
	// The time held does not count towards the queue lifetime.
	HeldSince time.Time     `json:"held_since,omitzero"`
	HeldFor   time.Duration `json:"held_for,omitempty"`
}

// Claimed is a delivery handed out by Claim, with its message record and the
// lease that protects it.
type Claimed struct {
	Delivery Delivery
	Message  Message
	// LeaseUntil is when the lease expires; Complete after it may fail
	// with ErrLeaseLost.
	LeaseUntil time.Time
}

// Outcome is the result of one delivery attempt.
type Outcome struct {
	// State is the new state: Delivered, Deferred, Bounced or Expired.
	State State
	// NextAttempt is when a Deferred delivery is due again.
	NextAttempt time.Time
	// Error is the attempt's error or upstream reply (empty on success).
	Error string
	// Recipients, when non-nil on a Deferred outcome, replaces the
	// delivery's recipients: the others of its group were delivered or
	// bounced in this attempt and must not be sent again.
	Recipients []Recipient
}

// Filter selects deliveries for List and Flush. Zero values select all.
type Filter struct {
	// States, if set, limits to these states.
	States []State
	// MessageID, if set, limits to one message.
	MessageID string
	// Limit caps the number of results of List (0: backend default).
	Limit int
}

// Stats summarises the queue for metrics and health checks.
type Stats struct {
	// Pending is the number of deliveries queued or deferred.
	Pending int
	// Deferred is the number of deliveries in state Deferred.
	Deferred int
	// Held is the number of deliveries an operator put on hold (not in
	// Pending, nor in Oldest).
	Held int
	// Oldest is the creation time of the oldest pending delivery (zero if none).
	Oldest time.Time
}

// Spool receives one message's raw bytes. Write streams them to durable
// storage without holding the whole message in memory; Commit makes them and
// the records durable; Abort (safe to call after Commit, as a deferred
// cleanup) discards an uncommitted spool.
type Spool interface {
	io.Writer
	// Commit stores msg (its ID, Size and ReceivedAt are filled in by the
	// backend when zero) with its deliveries, durably, before returning. It
	// returns the message ID. It refuses a plan that does not Validate
	// (ErrInvalidPlan) before storing anything. With no deliveries the message is kept but
	// nothing is queued (the quarantine builds on this). The notices are
	// queued in the same transaction (see NotificationStore), those whose
	// key is taken skipped.
	Commit(ctx context.Context, msg Message, deliveries Plan, notices ...NewNotification) (string, error)
	Abort() error
}

// Store is the durable queue. Implementations are safe for concurrent use.
type Store interface {
	// NewSpool starts a new message. The ID it will get is known up front
	// so it can appear in the Received: header written into the spool.
	NewSpool(ctx context.Context) (Spool, string, error)
	// Open returns the stored raw message.
	Open(ctx context.Context, messageID string) (io.ReadCloser, error)
	// Message returns a message record.
	Message(ctx context.Context, messageID string) (Message, error)

	// Claim returns up to limit deliveries that are due at now (pending,
	// NextAttempt <= now, not under another live lease), leased to owner
	// for the lease duration.
	Claim(ctx context.Context, owner string, now time.Time, limit int, lease time.Duration) ([]Claimed, error)
	// Complete records the outcome of an attempt on a claimed delivery and
	// releases the lease. It counts the attempt.
	Complete(ctx context.Context, owner, deliveryID string, out Outcome) error
	// NextDue is the earliest time at which Claim can return something
	// (false if nothing is pending): the earliest NextAttempt, where a
	// delivery under a live lease counts at its lease's end. Workers sleep
	// until then.
	NextDue(ctx context.Context) (time.Time, bool, error)

	// List returns deliveries matching f, oldest first.
	List(ctx context.Context, f Filter) ([]Delivery, error)
	// Flush makes every deferred delivery matching f due now, as
	// postqueue -f does, and returns how many it changed.
	Flush(ctx context.Context, f Filter, now time.Time) (int, error)
	// Stats summarises pending deliveries.
	Stats(ctx context.Context) (Stats, error)
	// Ping checks that the store is usable and writable (for /readyz).
	Ping(ctx context.Context) error

	Close() error
}
