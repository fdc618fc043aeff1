package review

import (
	"context"
	"slices"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay/notify"
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
	// The notices quote the original's Subject, Date and Message-ID, so
	// change reads them before Discard removes the body; the notice to
	// the sender (asked for here, or by the rule) is committed with the
	// deletion.
	c := s.change(ctx, h, notify.EventDeleted, a, "delete")
	c.TellSender = o.NotifySender
	ns := s.notices(c)
	notice := slices.ContainsFunc(ns, func(n store.NewNotification) bool { return n.Channel == config.SenderChannel })
	r := store.Resolution{Actor: a.Name, At: s.now(), Action: "delete"}
	if notice {
		r.Note = "sender notified"
	}
	if err := s.st.Discard(ctx, id, store.HoldDeleted, r, ns...); err != nil {
		return res, nil, storeErr(err, id, "deleting")
	}
	s.notified(ns)
	res.Status, res.NoticeQueued = StatusDeleted, notice
	switch {
	case notice:
		return res, []string{"sender notice queued"}, nil
	case !o.NotifySender:
		return res, nil, nil
	case h.Message.Envelope.Sender == "":
		res.Note = "the message has the null sender: no notice"
		return res, []string{"no notice: null sender"}, nil
	}
	res.Note = "no notice could be made for the sender"
	return res, []string{"no notice"}, nil
}
