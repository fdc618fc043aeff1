// Package notify tells the right people about held mail: security, through
// channels (signed JSON webhooks, Slack/Teams-style text webhooks, email),
// and the sender of a held message when its rule asks for it.
//
// It has two halves. The Notifier, used where an event happens (the relay
// holding a message, the review service releasing, deleting, approving or
// expiring one), turns the event into store.NewNotification rows that the
// caller commits in the transaction of the event. The Service claims those
// rows from the store's outbox, sends them with its own bounded workers
// (so a receiver that is down never holds up mail), retries with backoff
// and counts the outcomes; it also queues the digests. Email, to a channel
// or to a sender, is not sent by a client of its own: it is queued in the
// store as a message with one delivery, as DSNs are, and the delivery
// workers take it to the upstream without the policy ever seeing it.
//
// No notification carries a recipient's address or any of the message's
// content: only the sender, the AUTH user, the subject (made safe and
// short), the rule, its reason and its figures.
package notify

import (
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bccguard/bccguard/config"
)

// Events, as channels choose them (config.NotifyEvents) and as the
// webhook body's "event" names them.
const (
	EventHeld                = config.EventHeld
	EventNeedsSecondReviewer = config.EventNeedsSecondReviewer
	EventReleased            = config.EventReleased
	EventDeleted             = config.EventDeleted
	EventExpired             = config.EventExpired
	EventDigest              = "digest"
	EventTest                = "test"
)

// Event is the body of a JSON webhook (docs/notification.schema.json) and
// what every other channel's text is made from.
type Event struct {
	// ID is the notification's ID, the same on every retry: a receiver
	// that sees one twice has seen it already.
	ID    string `json:"id"`
	Event string `json:"event"`
	// Monitor: the policy is on trial (monitor mode) and would have held
	// the message; it was relayed, nothing is waiting for review.
	Monitor bool      `json:"monitor"`
	At      time.Time `json:"at"`
	// Host is the bccguard that saw it (its hostname).
	Host    string   `json:"host"`
	Message *Message `json:"message,omitempty"`
	Review  *Review  `json:"review,omitempty"`
	Digest  *Digest  `json:"digest,omitempty"`
	// Link is the message's review page (the quarantine list for a
	// digest), "" without admin.public_url.
	Link string `json:"link,omitempty"`
	// Text says it all in one line, for people.
	Text string `json:"text"`
}

// Message is what a notification says about the message: never its
// recipients or its content.
type Message struct {
	QueueID    string    `json:"queue_id"`
	ReceivedAt time.Time `json:"received_at"`
	// Sender is the envelope sender ("" for the null sender); AuthUser the
	// SMTP AUTH identity ("" without AUTH).
	Sender   string `json:"sender"`
	AuthUser string `json:"auth_user"`
	Subject  string `json:"subject"`
	// Recipients is the number of envelope recipients.
	Recipients int            `json:"recipients"`
	Rule       string         `json:"rule"`
	Reason     string         `json:"reason"`
	Figures    map[string]int `json:"figures"`
	// ExpiresAt is when a hold expires if no one acts on it.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Review says who did what, for events of review actions.
type Review struct {
	// Actor is the reviewer's name, or system:expiry.
	Actor string `json:"actor"`
	// Action is release-explode, release-bcc, release-as-is, approve,
	// delete, expire-delete or expire-release.
	Action string `json:"action"`
	// Approvals is how many reviewers have approved (four-eyes).
	Approvals int `json:"approvals,omitempty"`
}

// Digest summarises what is still held.
type Digest struct {
	// Period is hourly or daily.
	Period string         `json:"period"`
	Held   int            `json:"held"`
	ByRule map[string]int `json:"by_rule"`
	Oldest time.Time      `json:"oldest,omitzero"`
	// Items are the newest holds, at most MaxDigestItems.
	Items []DigestItem `json:"items"`
}

// DigestItem is one held message in a digest.
type DigestItem struct {
	QueueID    string    `json:"queue_id"`
	ReceivedAt time.Time `json:"received_at"`
	Rule       string    `json:"rule"`
	Sender     string    `json:"sender"`
	AuthUser   string    `json:"auth_user"`
	Subject    string    `json:"subject"`
	Recipients int       `json:"recipients"`
	Link       string    `json:"link,omitempty"`
}

// MaxDigestItems bounds the holds a digest lists.
const MaxDigestItems = 20

// MaxSubject is how many characters of a subject a notification carries.
const MaxSubject = 200

// SafeText makes a header value (already RFC 2047-decoded) fit for a
// notification: valid UTF-8, one line, no control, bidirectional or other
// invisible format characters (which can make a chat message or mail
// client show other text than the bytes say), at most max characters.
func SafeText(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return ' '
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r), r == '\u2028', r == '\u2029':
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = strings.TrimSpace(string(r[:max-1])) + "…"
	}
	return s
}

// addrLike finds what looks like an address in text bound for a
// notification.
var addrLike = regexp.MustCompile(`[^\s<>()"',;:\[\]]+@[^\s<>()"',;:\[\]]+`)

// maskAddresses hides addresses in a policy reason. Reasons carry only the
// condition an admin wrote and numbers, but a failing-closed reason quotes
// the parse error of a To: field, and a condition may name an address.
func maskAddresses(s string) string { return addrLike.ReplaceAllString(s, "[address]") }
