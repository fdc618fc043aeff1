package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bccguard/bccguard/policy/content"
)

// ErrNotHeld: the quarantined message is no longer held (another reviewer
// released or deleted it, or it expired); the action was not applied.
var ErrNotHeld = errors.New("store: message is not held")

// HoldState is the state of a quarantined message.
type HoldState string

// Hold states. Held is the only state from which a message can be released
// or deleted.
const (
	HoldHeld     HoldState = "held"
	HoldReleased HoldState = "released"
	HoldDeleted  HoldState = "deleted"
	HoldExpired  HoldState = "expired"
)

// Quarantine is what the relay records when the policy holds a message. A
// Message committed with a non-nil Quarantine and no deliveries becomes a
// Hold in state held.
type Quarantine struct {
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
	// Figures are the numbers that triggered the hold, for reviewers
	// (e.g. "visible.count": 312, "body.addresses": 200).
	Figures map[string]int `json:"figures,omitempty"`
	// Visible is the visible recipient list (display name and address) the
	// message would have exposed, for the review page.
	Visible []VisibleRecipient `json:"visible,omitempty"`
	// Content is what the body and attachments hold, with masked samples
	// only (never a value in clear).
	Content *content.Report `json:"content,omitempty"`
	// BodyShows are the envelope recipients (lowercased addresses) whom
	// the body or an attachment shows: a rewritten release cannot hide
	// them.
	BodyShows []string  `json:"body_shows,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
	// NotifySender: the rule tells the envelope sender of the hold and of
	// how it ends, with SenderNotice (its template, "" for the default),
	// kept here so that a policy reload does not change a hold's notices.
	NotifySender bool   `json:"notify_sender,omitempty"`
	SenderNotice string `json:"sender_notice,omitempty"`
}

// VisibleRecipient is one address shown in To:/Cc:.
type VisibleRecipient struct {
	Name    string `json:"name,omitempty"`
	Address string `json:"address"`
	Field   string `json:"field"` // "to" or "cc"
}

// Approval is one reviewer's consent to a release (the four-eyes rule needs
// two from different reviewers).
type Approval struct {
	Actor   string    `json:"actor"`
	At      time.Time `json:"at"`
	Rewrite Rewrite   `json:"rewrite"`
}

// Validate reports why a cannot be recorded, nil when it can: it names an
// actor, and a known rewrite or none.
func (a Approval) Validate() error {
	if a.Actor == "" {
		return errors.New("store: approval without an actor")
	}
	if a.Rewrite != "" && !a.Rewrite.Valid() {
		return fmt.Errorf("store: approval with an unknown rewrite %q", a.Rewrite)
	}
	return nil
}

// Resolution is how a hold ended.
type Resolution struct {
	Actor string    `json:"actor"`
	At    time.Time `json:"at"`
	// Action is "release-explode", "release-bcc", "release-as-is",
	// "delete" or "expire-delete", "expire-release".
	Action string `json:"action"`
	// Recipients released to, when a subset was chosen.
	Recipients []string `json:"recipients,omitempty"`
	Note       string   `json:"note,omitempty"`
}

// Hold is a quarantined message (Message.Quarantine says why) with its
// review state.
type Hold struct {
	Message    Message     `json:"message"`
	State      HoldState   `json:"state"`
	Approvals  []Approval  `json:"approvals,omitempty"`
	Resolution *Resolution `json:"resolution,omitempty"`
}

// HoldFilter selects holds. Zero values select all.
type HoldFilter struct {
	States   []HoldState
	Rule     string
	Sender   string // exact envelope sender, case-insensitive
	ClientIP string
	User     string
	// HeldBefore and HeldAfter bound Message.ReceivedAt.
	HeldBefore time.Time
	HeldAfter  time.Time
	// Offset and Limit page through the results, newest first (0 Limit:
	// backend default).
	Offset int
	Limit  int
}

// AuditEntry is one review action, durable in the store.
type AuditEntry struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"` // e.g. release-explode, delete, approve, bulk-release, expire-delete
	Target string    `json:"target"` // message ID, or a filter description for bulk actions
	// Outcome is "ok" or the reason it failed (e.g. "not held").
	Outcome string `json:"outcome"`
	Detail  string `json:"detail,omitempty"`
}

// AuditFilter selects audit entries, newest first.
type AuditFilter struct {
	Actor  string
	Target string
	Since  time.Time
	Offset int
	Limit  int
}

// QuarantineStore is the review side of the store. Every backend that
// implements Store implements it too, with the same conformance suite.
type QuarantineStore interface {
	// Holds lists holds matching f, newest first, and the total count of
	// matches (for pagination).
	Holds(ctx context.Context, f HoldFilter) ([]Hold, int, error)
	// Hold returns one hold.
	Hold(ctx context.Context, messageID string) (Hold, error)
	// Approve records an approval on a held message and returns the hold.
	//
	// Approve, Release and Discard queue their notices (see
	// NotificationStore) in the transaction of the state change, and only
	// when it is made: none when the hold is no longer held.
	Approve(ctx context.Context, messageID string, a Approval, notices ...NewNotification) (Hold, error)
	// Release atomically moves a held message to released and queues the
	// deliveries; ErrNotHeld if it is no longer held. Like Commit it
	// refuses a plan that does not Validate (ErrInvalidPlan), and an empty
	// one.
	Release(ctx context.Context, messageID string, deliveries Plan, r Resolution, notices ...NewNotification) error
	// Discard moves a held message to deleted (or expired, per the
	// resolution's action) and removes its body; ErrNotHeld if not held.
	Discard(ctx context.Context, messageID string, state HoldState, r Resolution, notices ...NewNotification) error
	// AddAudit appends an entry (ID and At are filled in when zero).
	AddAudit(ctx context.Context, e AuditEntry) error
	// Audit lists entries matching f, newest first.
	Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
	// HoldStats counts held messages by rule and gives the oldest.
	HoldStats(ctx context.Context) (map[string]int, time.Time, error)
}
