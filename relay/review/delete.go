package review

import (
	"context"
	"fmt"
	"io"
	"strings"

	gomail "github.com/emersion/go-message/mail"

	"github.com/bccguard/bccguard/relay/store"
)

// DeleteOptions say how to delete.
type DeleteOptions struct {
	// NotifySender queues a short notice (the configured delete_notice) to
	// the envelope sender. A message from the null sender gets none.
	NotifySender bool `json:"notify_sender,omitempty"`
}

// DeleteResult is what Delete did.
type DeleteResult struct {
	ID     string `json:"id"`
	Status string `json:"status"` // StatusDeleted
	// NoticeQueued: a notice to the sender was queued.
	NoticeQueued bool `json:"notice_queued"`
	// Note says why no notice was sent although one was asked for.
	Note string `json:"note,omitempty"`
}

// Delete deletes a held message: its body is removed and its record stays,
// in state deleted, for the audit trail.
func (s *Service) Delete(ctx context.Context, a Actor, id string, o DeleteOptions) (DeleteResult, error) {
	res, detail, err := s.delete(ctx, a, id, o)
	s.record(ctx, a, "delete", id, err, detail...)
	if err == nil {
		s.log.Info("quarantined message deleted", "queue_id", id, "actor", a.Name, "via", a.Via, "notice", res.NoticeQueued)
	}
	return res, err
}

func (s *Service) delete(ctx context.Context, a Actor, id string, o DeleteOptions) (DeleteResult, []string, error) {
	res := DeleteResult{ID: id}
	if err := authorize(a, true); err != nil {
		return res, nil, err
	}
	h, err := s.getHold(ctx, id)
	if err != nil {
		return res, nil, err
	}
	if h.State != store.HoldHeld {
		return res, nil, notHeld(h)
	}
	// The notice quotes the original's Subject, Date and Message-ID, so
	// they are read before Discard removes the body.
	var orig []HeaderField
	notify := o.NotifySender && h.Message.Envelope.Sender != ""
	if notify {
		if orig, _, err = s.readHeader(ctx, h.Message, maxHeaderRead); err != nil {
			s.log.Warn("delete notice: could not read the original header", "queue_id", id, "err", err)
		}
	}
	r := store.Resolution{Actor: a.Name, At: s.now(), Action: "delete"}
	if notify {
		r.Note = "sender notified"
	}
	if err := s.st.Discard(ctx, id, store.HoldDeleted, r); err != nil {
		return res, nil, storeErr(err, id, "deleting")
	}
	res.Status = StatusDeleted
	switch {
	case !o.NotifySender:
		return res, nil, nil
	case !notify:
		res.Note = "the message has the null sender: no notice"
		return res, []string{"no notice: null sender"}, nil
	}
	nid, err := s.queueNotice(ctx, h.Message, orig)
	if err != nil {
		// The deletion stands; the reviewer is told the notice failed.
		s.log.Error("could not queue the delete notice", "queue_id", id, "err", err)
		res.Note = "the notice to the sender could not be queued"
		return res, []string{"notice failed: " + err.Error()}, nil
	}
	res.NoticeQueued = true
	s.wake()
	return res, []string{"notice queued as " + nid}, nil
}

// queueNotice queues the delete notice to the original's envelope sender,
// from the null sender (as a DSN is, so it cannot loop) and marked
// Auto-Submitted. It names the original by Subject, Date and Message-ID
// only: never its recipients.
func (s *Service) queueNotice(ctx context.Context, m store.Message, orig []HeaderField) (string, error) {
	sp, _, err := s.st.NewSpool(ctx)
	if err != nil {
		return "", err
	}
	defer sp.Abort()
	if err := s.writeNotice(sp, m.Envelope.Sender, orig); err != nil {
		return "", err
	}
	to := []store.Recipient{{Addr: m.Envelope.Sender}}
	// HeaderLen 0 and RewritePass: the notice is relayed exactly as
	// written; it has no Bcc: and no recipient list to hide.
	return sp.Commit(ctx, store.Message{
		Envelope: store.Envelope{Recipients: to},
		Client:   store.Client{Listener: "bccguard-notice"},
	}, []store.NewDelivery{{Recipients: to, Rewrite: store.RewritePass}})
}

func (s *Service) writeNotice(w io.Writer, sender string, orig []HeaderField) error {
	var h gomail.Header
	h.SetAddressList("From", []*gomail.Address{{Name: "Mail Delivery System", Address: "MAILER-DAEMON@" + s.hostname}})
	h.SetAddressList("To", []*gomail.Address{{Address: sender}})
	h.SetSubject("Message not delivered: deleted by a reviewer")
	h.SetDate(s.now())
	if err := h.GenerateMessageIDWithHostname(s.hostname); err != nil {
		return err
	}
	h.Set("Auto-Submitted", "auto-replied")
	h.Set("MIME-Version", "1.0")
	h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	h.Set("Content-Transfer-Encoding", "quoted-printable")

	var b strings.Builder
	b.WriteString(strings.TrimSpace(s.cfg.DeleteNotice))
	b.WriteString("\n\nThe message:\n")
	for _, k := range []string{"Subject", "Date", "Message-ID"} {
		v := first(orig, k)
		if v == "" {
			v = "(none)"
		}
		fmt.Fprintf(&b, "  %s: %s\n", k, v)
	}
	bw, err := gomail.CreateSingleInlineWriter(w, h)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(bw, strings.ReplaceAll(b.String(), "\n", "\r\n")); err != nil {
		return err
	}
	return bw.Close()
}
