package review

import (
	"context"

	"github.com/bccguard/bccguard/relay/notify"
	"github.com/bccguard/bccguard/relay/store"
)

// Notifier makes the notifications a review action commits with its state
// change (relay/notify), and is told when some were committed.
type Notifier interface {
	Notices(c notify.Change) []store.NewNotification
	Wake()
}

// DigestActor is the actor name the digests read the quarantine as.
const DigestActor = "system:notify"

// change describes a review action on hold h for the Notifier, with what
// its header says (read now: a deletion removes the body).
func (s *Service) change(ctx context.Context, h store.Hold, event string, a Actor, action string) notify.Change {
	c := notify.Change{
		Event: event, At: s.now(), Msg: h.Message, Quarantine: h.Message.Quarantine,
		Actor: a.Name, Action: action,
	}
	if s.notify == nil {
		return c
	}
	if fs, _, err := s.readHeader(ctx, h.Message, listHeaderRead); err == nil {
		c.Header = notify.HeaderInfo{Subject: first(fs, "Subject"), Date: first(fs, "Date"), MessageID: first(fs, "Message-Id")}
	}
	return c
}

// notices returns the notifications of c, none without a Notifier.
func (s *Service) notices(c notify.Change) []store.NewNotification {
	if s.notify == nil {
		return nil
	}
	return s.notify.Notices(c)
}

// notified wakes the Notifier's sender after notices were committed.
func (s *Service) notified(ns []store.NewNotification) {
	if len(ns) > 0 && s.notify != nil {
		s.notify.Wake()
	}
}

// Digest summarises what is held, for the notification digests: the
// count by rule, the oldest, and the newest holds (read as DigestActor,
// so unaudited, as the metrics read the quarantine).
func (s *Service) Digest(ctx context.Context) (*notify.Digest, error) {
	byRule, oldest, err := s.st.HoldStats(ctx)
	if err != nil {
		return nil, storeErr(err, "", "reading the quarantine")
	}
	d := &notify.Digest{ByRule: byRule, Oldest: oldest.UTC(), Items: []notify.DigestItem{}}
	for _, n := range byRule {
		d.Held += n
	}
	if d.Held == 0 {
		return d, nil
	}
	p, err := s.List(ctx, Actor{Name: DigestActor, Role: RoleViewer, Via: ViaSystem}, Filter{Limit: notify.MaxDigestItems})
	if err != nil {
		return nil, err
	}
	for _, it := range p.Items {
		d.Items = append(d.Items, notify.DigestItem{
			QueueID: it.ID, ReceivedAt: it.ReceivedAt.UTC(), Rule: it.Rule, Sender: it.Sender,
			AuthUser: it.Client.User, Subject: it.Subject, Recipients: it.Recipients,
		})
	}
	return d, nil
}
