package notify

import (
	"encoding/json"
	"net/url"
	"slices"
	"time"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/policy"
	"github.com/bccguard/bccguard/relay/store"
)

// Change is an event about one message, as the code that makes it happen
// describes it.
type Change struct {
	// Event is one of the Event* constants (not digest or test).
	Event string
	At    time.Time
	// Msg is the message record; Quarantine why it was held (for a
	// monitor-mode event, why it would have been).
	Msg        store.Message
	Quarantine *store.Quarantine
	Header     HeaderInfo
	// Monitor: the policy is on trial and would have held it.
	Monitor bool
	// Actor and Action: who did what, for review events; Approvals for
	// needs_second_reviewer.
	Actor     string
	Action    string
	Approvals int
	// TellSender asks for a sender notice whatever the rule says (a
	// reviewer deleting with "notify the sender").
	TellSender bool
}

// HeaderInfo is what a notification may quote from the message's header,
// RFC 2047-decoded; the Notifier makes it safe.
type HeaderInfo struct {
	Subject   string
	Date      string
	MessageID string
}

// Notifier turns changes into the notifications to commit with them. It is
// built from the configuration and safe for concurrent use.
type Notifier struct {
	host         string
	publicURL    string
	deleteNotice string
	channels     []config.NotifyChannel
}

// NewNotifier returns the Notifier of cfg's notify section.
func NewNotifier(cfg *config.Config) *Notifier {
	return &Notifier{
		host:         cfg.Hostname,
		publicURL:    cfg.Admin.PublicURL,
		deleteNotice: cfg.Quarantine.DeleteNotice,
		channels:     cfg.Notify.Channels,
	}
}

// ReviewLink is the review page of message id, "" without a public URL.
func (n *Notifier) ReviewLink(id string) string {
	if n.publicURL == "" || id == "" {
		return ""
	}
	return n.publicURL + "/quarantine/m/" + url.PathEscape(id)
}

func (n *Notifier) listLink() string {
	if n.publicURL == "" {
		return ""
	}
	return n.publicURL + "/quarantine"
}

// Notices returns the notifications of c: one per channel that takes its
// event, and one to the sender when the rule (or c.TellSender) asks and
// the sender is not the null sender. Each has a key of the message, the
// event and the channel, so no message gets two for one event.
func (n *Notifier) Notices(c Change) []store.NewNotification {
	if n == nil {
		return nil
	}
	ev := n.event(c)
	var out []store.NewNotification
	key := c.Msg.ID + "/" + c.Event
	if c.Monitor {
		key = c.Msg.ID + "/would-hold"
	}
	if c.Event == EventNeedsSecondReviewer {
		key += "/" + c.Actor + "/" + c.Action
	}
	if len(n.channels) > 0 {
		payload, err := json.Marshal(ev)
		if err == nil {
			for _, ch := range n.channels {
				if slices.Contains(ch.Events, c.Event) {
					out = append(out, store.NewNotification{Key: key + "/" + ch.Name, Channel: ch.Name, Event: c.Event, MessageID: c.Msg.ID, Payload: payload})
				}
			}
		}
	}
	if s := n.senderNotice(c); s != nil {
		out = append(out, *s)
	}
	return out
}

// event is the Event c makes (its ID is the notification's, set when it
// is sent).
func (n *Notifier) event(c Change) Event {
	at := c.At
	if at.IsZero() {
		at = time.Now()
	}
	m := c.Msg
	ev := Event{
		Event: c.Event, Monitor: c.Monitor, At: at.UTC(), Host: n.host,
		Message: &Message{
			QueueID: m.ID, ReceivedAt: m.ReceivedAt.UTC(), Sender: m.Envelope.Sender, AuthUser: m.Client.User,
			Subject: SafeText(c.Header.Subject, MaxSubject), Recipients: len(m.Envelope.Recipients), Figures: map[string]int{},
		},
	}
	if q := c.Quarantine; q != nil {
		ev.Message.Rule, ev.Message.Reason = q.Rule, maskAddresses(q.Reason)
		for k, v := range q.Figures {
			ev.Message.Figures[k] = v
		}
		if !c.Monitor {
			ev.Message.ExpiresAt = q.ExpiresAt.UTC()
		}
	}
	if c.Actor != "" {
		ev.Review = &Review{Actor: c.Actor, Action: c.Action, Approvals: c.Approvals}
	}
	if !c.Monitor {
		ev.Link = n.ReviewLink(m.ID)
	}
	ev.Text = summary(&ev)
	return ev
}

// SenderPayload is the payload of a notice to a sender.
type SenderPayload struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
	Text    string `json:"text"`
	// Orig names the message the notice is about.
	Orig    HeaderInfo `json:"orig"`
	QueueID string     `json:"queue_id"`
}

// senderNotice is the notice to the sender of c, or nil. The rule's
// template (kept with the hold) tells of holds, releases and expiries; a
// deletion is told with quarantine.delete_notice. Nothing is sent in
// monitor mode (the sender's mail went out) or to the null sender.
func (n *Notifier) senderNotice(c Change) *store.NewNotification {
	m := c.Msg
	q := c.Quarantine
	if c.Monitor || m.Envelope.Sender == "" || q == nil {
		return nil
	}
	tell := q.NotifySender || c.TellSender
	if !tell {
		return nil
	}
	p := SenderPayload{To: m.Envelope.Sender, QueueID: m.ID, Orig: HeaderInfo{
		Subject:   SafeText(c.Header.Subject, MaxSubject),
		Date:      SafeText(c.Header.Date, 100),
		MessageID: SafeText(c.Header.MessageID, 250),
	}}
	d := policy.NoticeData{
		Subject: p.Orig.Subject, Recipients: len(m.Envelope.Recipients), Visible: len(q.Visible),
		Rule: q.Rule, Reason: maskAddresses(q.Reason), QueueID: m.ID, ReceivedAt: m.ReceivedAt,
	}
	switch {
	case c.Event == EventHeld && q.NotifySender:
		d.Event, p.Subject = "held", "Your message is held for review"
	case (c.Event == EventReleased || c.Event == EventExpired && c.Action == "expire-release") && q.NotifySender:
		d.Event, p.Subject = "released", "Your message was released"
	case c.Event == EventExpired && q.NotifySender:
		d.Event, p.Subject = "expired", "Message not delivered: not released in time"
	case c.Event == EventDeleted:
		p.Subject, p.Text = "Message not delivered: deleted by a reviewer", n.deleteNotice
	default:
		return nil
	}
	if p.Text == "" {
		text, err := policy.RenderSenderNotice(q.SenderNotice, d)
		if err != nil {
			// Checked when the policy loaded: only a template kept with
			// an old hold can fail here. The default says the same.
			text, _ = policy.RenderSenderNotice("", d)
		}
		p.Text = text
	}
	payload, err := json.Marshal(p)
	if err != nil {
		return nil
	}
	return &store.NewNotification{
		Key: m.ID + "/" + c.Event + "/" + config.SenderChannel, Channel: config.SenderChannel,
		Event: c.Event, MessageID: m.ID, Payload: payload,
	}
}
