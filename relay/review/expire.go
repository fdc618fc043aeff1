package review

import (
	"context"
	"errors"
	"time"

	"github.com/bccguard/bccguard/relay/notify"
	"github.com/bccguard/bccguard/relay/store"

	"github.com/bccguard/bccguard/config"
)

// ExpireResult tallies one expiry run.
type ExpireResult struct {
	Deleted  int `json:"deleted"`
	Released int `json:"released"`
	Failed   int `json:"failed"`
}

// Expire applies the configured expiry action to every held message whose
// ExpiresAt is not after now: delete (state expired, body removed) or
// release as explode. Each one is counted, logged and audited as done by
// ExpiryActor.
//
// A hold under the four-eyes rule is deleted even when the expiry action
// is release: the rule says no release without two reviewers, and expiry
// is none.
func (s *Service) Expire(ctx context.Context, now time.Time) (ExpireResult, error) {
	var res ExpireResult
	due, err := s.dueHolds(ctx, now)
	if err != nil {
		return res, err
	}
	sys := Actor{Name: ExpiryActor, Role: RoleReviewer, Via: ViaSystem}
	for _, h := range due {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		m := h.Message
		action, note := s.cfg.ExpiryAction, ""
		if action == config.ExpiryRelease && s.fourEyes[ruleOf(m)] {
			action, note = config.ExpiryDelete, "four-eyes rule: expired by deletion, not released"
		}
		if action == config.ExpiryRelease {
			// No one decided to send copies that would still show the
			// other recipients.
			if why, err := s.unsafeCopies(ctx, m, store.RewriteExplode, m.Envelope.Recipients); err != nil || why != "" {
				action, note = config.ExpiryDelete, "the copies would still show other recipients: expired by deletion, not released"
			}
		}
		r := store.Resolution{Actor: ExpiryActor, At: now, Action: "expire-" + string(action), Note: note}
		var deliveries store.Plan
		ns := s.notices(s.change(ctx, h, notify.EventExpired, sys, r.Action))
		if action == config.ExpiryRelease {
			deliveries = store.PlanCopies(store.RewriteExplode, m.Envelope.Recipients)
			err = s.st.Release(ctx, m.ID, deliveries, r, ns...)
		} else {
			err = s.st.Discard(ctx, m.ID, store.HoldExpired, r, ns...)
		}
		if err == nil {
			s.notified(ns)
		}
		if errors.Is(err, store.ErrNotHeld) {
			// A reviewer acted on it since it was listed: theirs is the
			// audited action.
			s.log.Debug("expiry: message no longer held", "queue_id", m.ID)
			continue
		}
		err = storeErr(err, m.ID, "expiring")
		s.record(ctx, sys, r.Action, m.ID, err, "rule "+ruleOf(m), "held since "+m.ReceivedAt.UTC().Format(time.RFC3339), note)
		if err != nil {
			res.Failed++
			continue
		}
		s.metrics.expired.WithLabelValues(string(action)).Inc()
		s.log.Info("quarantined message expired", "queue_id", m.ID, "rule", ruleOf(m), "action", action,
			"received_at", m.ReceivedAt, "expires_at", s.expiresAt(m), "deliveries", len(deliveries))
		if action == config.ExpiryRelease {
			res.Released++
		} else {
			res.Deleted++
		}
	}
	if res.Released > 0 {
		s.wake()
	}
	if res.Failed > 0 {
		return res, errors.New("review: some holds could not be expired (see the log)")
	}
	return res, nil
}

// dueHolds lists the held messages due to expire. The store cannot filter
// on ExpiresAt (each hold keeps the retention of its day), so every held
// message is looked at; the list is collected before any is acted on.
func (s *Service) dueHolds(ctx context.Context, now time.Time) ([]store.Hold, error) {
	f := store.HoldFilter{States: []store.HoldState{store.HoldHeld}, Limit: MaxLimit}
	var due []store.Hold
	for {
		hs, total, err := s.st.Holds(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, h := range hs {
			if !s.expiresAt(h.Message).After(now) {
				due = append(due, h)
			}
		}
		f.Offset += len(hs)
		if len(hs) == 0 || f.Offset >= total {
			return due, nil
		}
	}
}
