package relay

import (
	"strings"

	"github.com/bccguard/bccguard/internal/mailhdr"
	"github.com/bccguard/bccguard/policy"
	"github.com/bccguard/bccguard/relay/notify"
	"github.com/bccguard/bccguard/relay/store"
)

// Notifier makes the notifications about held mail (relay/notify) that a
// commit carries, and is told when some were committed.
type Notifier interface {
	Notices(c notify.Change) []store.NewNotification
	Wake()
}

// notices are the notifications to commit with msg: of its hold, or, when
// the policy is on trial, of the hold a monitor-mode rule would have made.
// The message is not held then, so there is no review link and the sender
// is not told.
func (srv *Server) notices(pol Evaluator, in *policy.Input, dec policy.Decision, fig policy.Figures, msg store.Message, hdr *mailhdr.Reading) []store.NewNotification {
	if srv.notify == nil {
		return nil
	}
	c := notify.Change{Event: notify.EventHeld, At: msg.ReceivedAt, Msg: msg, Quarantine: msg.Quarantine}
	if c.Quarantine == nil {
		would := dec
		if !(dec.Monitor && dec.Action == policy.Quarantine) {
			i := -1
			for j, m := range dec.Monitored {
				if m.Action == policy.Quarantine {
					i = j
					break
				}
			}
			if i < 0 {
				return nil
			}
			would = dec.Monitored[i]
		}
		c.Monitor = true
		c.Quarantine = srv.quarantineRecord(pol, in, would, fig, msg.ReceivedAt)
	}
	c.Header = headerInfo(hdr)
	return srv.notify.Notices(c)
}

// headerInfo is what a notification may quote of a header: Subject (RFC
// 2047-decoded, as the header reader decodes it), Date and Message-ID. The
// notify package makes it safe.
func headerInfo(hdr *mailhdr.Reading) notify.HeaderInfo {
	var h notify.HeaderInfo
	for _, e := range hdr.Entries {
		switch {
		case e.Is("Subject") && h.Subject == "":
			h.Subject = strings.TrimSpace(e.Text)
		case e.Is("Date") && h.Date == "":
			h.Date = strings.TrimSpace(e.Body())
		case e.Is("Message-ID") && h.MessageID == "":
			h.MessageID = strings.TrimSpace(e.Body())
		}
	}
	return h
}

// senderNoticeOf sets whether the rule that held the message tells its
// sender, and with which template, from the policy that decided.
func senderNoticeOf(pol Evaluator, q *store.Quarantine) {
	if pol != nil {
		q.SenderNotice, q.NotifySender = pol.SenderNotice(q.Rule)
	}
}
