package relay

import (
	"mime"

	"github.com/emersion/go-message/charset"

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
func (srv *Server) notices(pol Evaluator, in *policy.Input, dec policy.Decision, msg store.Message, fields []rawField) []store.NewNotification {
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
		c.Quarantine = srv.quarantineRecord(pol, in, would, msg.ReceivedAt)
	}
	c.Header = headerInfo(fields)
	return srv.notify.Notices(c)
}

// headerInfo is what a notification may quote of a header: Subject (RFC
// 2047-decoded), Date and Message-ID. The notify package makes it safe.
func headerInfo(fields []rawField) notify.HeaderInfo {
	var h notify.HeaderInfo
	dec := mime.WordDecoder{CharsetReader: charset.Reader}
	for _, f := range fields {
		switch {
		case f.is("Subject") && h.Subject == "":
			h.Subject = f.value()
			if d, err := dec.DecodeHeader(h.Subject); err == nil {
				h.Subject = d
			}
		case f.is("Date") && h.Date == "":
			h.Date = f.value()
		case f.is("Message-ID") && h.MessageID == "":
			h.MessageID = f.value()
		}
	}
	return h
}

// senderNoticeOf sets whether the rule that held the message tells its
// sender, and with which template, from the policy that decided.
func senderNoticeOf(pol Evaluator, q *store.Quarantine) {
	if p, ok := pol.(interface {
		SenderNotice(rule string) (string, bool)
	}); ok {
		q.SenderNotice, q.NotifySender = p.SenderNotice(q.Rule)
	}
}
