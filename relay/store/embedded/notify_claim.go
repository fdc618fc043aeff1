package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bccguard/bccguard/relay/store"
)

// Claims and outcomes of the notification outbox (notify.go), with leases
// in memory as for deliveries (claim.go).

// ClaimNotifications leases up to limit due notifications to owner.
func (s *Store) ClaimNotifications(ctx context.Context, owner string, now time.Time, limit int, lease time.Duration) ([]store.ClaimedNotification, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	if lease <= 0 {
		return nil, fmt.Errorf("embedded: claim notifications: lease must be positive, got %v", lease)
	}
	if now.IsZero() {
		now = time.Now()
	}
	until := now.Add(lease)
	ns := &s.notices
	ns.mu.Lock()
	defer ns.mu.Unlock()
	var out []store.ClaimedNotification
	var raws [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		recs := tx.Bucket(bucketNotices)
		c := tx.Bucket(bucketNoticeDue).Cursor()
		for k, _ := c.First(); k != nil && len(out) < limit; k, _ = c.Next() {
			if keyNanos(k) > now.UnixNano() {
				break
			}
			_, id := splitTimeKey(k)
			if ns.leases[id].live(now) {
				continue
			}
			rk, err := noticeIDKey(id)
			if err != nil {
				return err
			}
			v := recs.Get(rk)
			if v == nil {
				return fmt.Errorf("notification %s: due but not stored", id)
			}
			n, err := decodeNotice(rk, v)
			if err != nil {
				return err
			}
			raws = append(raws, bytes.Clone(v))
			out = append(out, store.ClaimedNotification{Notification: *n, LeaseUntil: until})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: claim notifications: %w", err)
	}
	if ns.leases == nil {
		ns.leases = map[string]*heldLease{}
	}
	for i, c := range out {
		ns.leases[c.ID] = &heldLease{owner: owner, until: until, raw: raws[i]}
	}
	return out, nil
}

// CompleteNotification records an attempt's outcome. It succeeds only
// while owner holds the lease it took (a lease that ended but was not
// taken over still counts: the attempt happened).
func (s *Store) CompleteNotification(ctx context.Context, owner, id string, out store.NotificationOutcome) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	switch out.State {
	case store.NotificationPending, store.NotificationSent, store.NotificationFailed:
	default:
		return fmt.Errorf("embedded: complete notification %s: %q is not an outcome", id, out.State)
	}
	rk, err := noticeIDKey(id)
	if err != nil {
		return fmt.Errorf("embedded: complete: %w", err)
	}
	ns := &s.notices
	ns.mu.Lock()
	l := ns.leases[id]
	if l == nil || l.owner != owner || l.completing {
		ns.mu.Unlock()
		return s.noticeNotOurs(id, rk)
	}
	l.completing = true
	ns.mu.Unlock()
	defer func() {
		ns.mu.Lock()
		if ns.leases[id] == l {
			delete(ns.leases, id)
		}
		ns.mu.Unlock()
	}()

	now := time.Now().UTC().Round(0)
	next := out.NextAttempt.UTC().Round(0)
	if out.State == store.NotificationPending && out.NextAttempt.IsZero() {
		next = now
	}
	var outcome error
	err = s.batch.do(func(tx *bolt.Tx) error {
		outcome = nil
		recs := tx.Bucket(bucketNotices)
		v := recs.Get(rk)
		if v == nil {
			outcome = fmt.Errorf("notification %s: %w", id, store.ErrNotFound)
			return nil
		}
		n, err := decodeNotice(rk, v)
		if err != nil {
			return err
		}
		if n.State != store.NotificationPending {
			outcome = fmt.Errorf("notification %s is %s: %w", id, n.State, store.ErrLeaseLost)
			return nil
		}
		due := tx.Bucket(bucketNoticeDue)
		if err := due.Delete(timeKey(n.NextAttempt, n.ID)); err != nil {
			return err
		}
		n.Attempts++
		n.State, n.LastError = out.State, out.Error
		if out.State == store.NotificationPending {
			n.NextAttempt = next
			if err := due.Put(timeKey(next, n.ID), []byte(n.Channel)); err != nil {
				return err
			}
		} else {
			n.DoneAt = now
		}
		val, err := json.Marshal(n)
		if err != nil {
			return err
		}
		return recs.Put(rk, val)
	})
	if err != nil {
		return ioErr("complete notification "+id, err)
	}
	if outcome != nil {
		return fmt.Errorf("embedded: complete: %w", outcome)
	}
	return nil
}

// noticeNotOurs tells a missing notification from a lost lease.
func (s *Store) noticeNotOurs(id string, rk []byte) error {
	var exists bool
	_ = s.db.View(func(tx *bolt.Tx) error {
		exists = tx.Bucket(bucketNotices).Get(rk) != nil
		return nil
	})
	if !exists {
		return fmt.Errorf("embedded: complete: notification %s: %w", id, store.ErrNotFound)
	}
	return fmt.Errorf("embedded: complete: notification %s: %w", id, store.ErrLeaseLost)
}

// NextNotificationDue returns the earliest time ClaimNotifications can
// return something.
func (s *Store) NextNotificationDue(ctx context.Context) (time.Time, bool, error) {
	if err := s.enter(); err != nil {
		return time.Time{}, false, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return time.Time{}, false, err
	}
	now := time.Now()
	ns := &s.notices
	ns.mu.Lock()
	defer ns.mu.Unlock()
	var (
		at    time.Time
		found bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketNoticeDue).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			t, id := splitTimeKey(k)
			if found && !t.Before(at) {
				break // every later key is due later still
			}
			l := ns.leases[id]
			if l.live(now) {
				t = maxTime(t, l.until) // leased: due again when its lease ends
			}
			if !found || t.Before(at) {
				at, found = t, true
			}
			if !l.live(now) {
				break // unleased: nothing after it is due earlier
			}
		}
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("embedded: next notification due: %w", err)
	}
	return at, found, nil
}
