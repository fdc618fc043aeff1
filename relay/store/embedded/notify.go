package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bccguard/bccguard/relay/store"
)

// The notification outbox (store.NotificationStore).
//
// Notifications are numbered from the bucket's sequence (their ID is the
// number in decimal) and stored as JSON under the number, big-endian, so
// the bucket is in the order they were queued. Two indexes go with them:
// noticekeys maps each key to its notification (a key already there is
// not queued again), and noticedue holds the pending ones by (NextAttempt,
// ID) with their channel as value, for claims and the pending counts.
// Leases are in memory, as for deliveries: one process owns the folder.
var (
	bucketNotices    = []byte("notices")
	bucketNoticeKeys = []byte("noticekeys")
	bucketNoticeDue  = []byte("noticedue")
)

// noticeState is the in-memory side of the outbox: its leases.
type noticeState struct {
	// mu guards leases; ClaimNotifications holds it from before its read
	// transaction until the leases are recorded, and CompleteNotification
	// releases a lease under it only after its commit (as Claim and
	// Complete do for deliveries).
	mu     sync.Mutex
	leases map[string]*heldLease
}

var _ store.NotificationStore = (*Store)(nil)

func noticeKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func noticeIDKey(id string) ([]byte, error) {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil || n == 0 {
		return nil, fmt.Errorf("notification %q: %w", id, store.ErrNotFound)
	}
	return noticeKey(n), nil
}

// checkNotices validates notifications before a transaction takes them.
func checkNotices(op string, ns []store.NewNotification) error {
	for i, n := range ns {
		if n.Key == "" || n.Channel == "" || n.Event == "" {
			return fmt.Errorf("embedded: %s: notification %d needs a key, a channel and an event", op, i+1)
		}
		if !json.Valid(n.Payload) {
			return fmt.Errorf("embedded: %s: notification %d: payload is not JSON", op, i+1)
		}
	}
	return nil
}

// putNotices stores new notifications, due now, skipping those whose key
// is taken, and returns how many it stored. It runs inside the
// transaction of the change they announce.
func putNotices(tx *bolt.Tx, ns []store.NewNotification, now time.Time) (int, error) {
	if len(ns) == 0 {
		return 0, nil
	}
	recs, keys, due := appendBucket(tx, bucketNotices), tx.Bucket(bucketNoticeKeys), appendBucket(tx, bucketNoticeDue)
	added := 0
	for _, nn := range ns {
		if keys.Get([]byte(nn.Key)) != nil {
			continue
		}
		seq, err := recs.NextSequence()
		if err != nil {
			return 0, err
		}
		n := store.Notification{
			ID: strconv.FormatUint(seq, 10), Key: nn.Key, Channel: nn.Channel, Event: nn.Event, MessageID: nn.MessageID,
			Payload: nn.Payload, State: store.NotificationPending, CreatedAt: now, NextAttempt: now,
		}
		val, err := json.Marshal(&n)
		if err != nil {
			return 0, err
		}
		k := noticeKey(seq)
		if err := recs.Put(k, val); err != nil {
			return 0, err
		}
		if err := keys.Put([]byte(nn.Key), k); err != nil {
			return 0, err
		}
		if err := due.Put(timeKey(now, n.ID), []byte(n.Channel)); err != nil {
			return 0, err
		}
		added++
	}
	return added, nil
}

func decodeNotice(k, v []byte) (*store.Notification, error) {
	var n store.Notification
	if err := json.Unmarshal(v, &n); err != nil {
		return nil, fmt.Errorf("notification %x: corrupt record: %w", k, err)
	}
	return &n, nil
}

// QueueNotifications queues notifications on their own, in one
// transaction.
func (s *Store) QueueNotifications(ctx context.Context, ns []store.NewNotification) (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := checkNotices("queue notifications", ns); err != nil {
		return 0, err
	}
	now := time.Now().UTC().Round(0)
	var added int
	err := s.batch.do(func(tx *bolt.Tx) (err error) {
		added, err = putNotices(tx, ns, now)
		return err
	})
	if err != nil {
		return 0, ioErr("queue notifications", err)
	}
	return added, nil
}

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

// Notifications lists notifications matching f, in the order they were
// queued.
func (s *Store) Notifications(ctx context.Context, f store.NotificationFilter) ([]store.Notification, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	var out []store.Notification
	err := s.db.View(func(tx *bolt.Tx) error {
		return forEachNotice(tx, func(k []byte, n *store.Notification) (bool, error) {
			if (len(f.States) == 0 || slices.Contains(f.States, n.State)) &&
				(f.Channel == "" || n.Channel == f.Channel) && (f.MessageID == "" || n.MessageID == f.MessageID) {
				out = append(out, *n)
			}
			return len(out) < limit, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: notifications: %w", err)
	}
	return out, nil
}

var errStopWalk = errors.New("stop")

// forEachNotice decodes every notification in order until fn returns false.
func forEachNotice(tx *bolt.Tx, fn func(k []byte, n *store.Notification) (bool, error)) error {
	err := tx.Bucket(bucketNotices).ForEach(func(k, v []byte) error {
		n, err := decodeNotice(k, v)
		if err != nil {
			return err
		}
		more, err := fn(k, n)
		if err == nil && !more {
			err = errStopWalk
		}
		return err
	})
	if errors.Is(err, errStopWalk) {
		return nil
	}
	return err
}

// PendingNotifications counts pending notifications by channel, from the
// due index alone.
func (s *Store) PendingNotifications(ctx context.Context) (map[string]int, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	counts := map[string]int{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNoticeDue).ForEach(func(_, v []byte) error {
			counts[string(v)]++
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: pending notifications: %w", err)
	}
	return counts, nil
}

// PurgeNotifications deletes final notifications done before before.
func (s *Store) PurgeNotifications(ctx context.Context, before time.Time) (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var purged int
	err := s.batch.do(func(tx *bolt.Tx) error {
		purged = 0
		type victim struct{ k, key []byte }
		var vs []victim
		err := forEachNotice(tx, func(k []byte, n *store.Notification) (bool, error) {
			if n.State.Final() && n.DoneAt.Before(before) {
				vs = append(vs, victim{bytes.Clone(k), []byte(n.Key)})
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		recs, keys := tx.Bucket(bucketNotices), tx.Bucket(bucketNoticeKeys)
		for _, v := range vs {
			if err := recs.Delete(v.k); err != nil {
				return err
			}
			if err := keys.Delete(v.key); err != nil {
				return err
			}
		}
		purged = len(vs)
		return nil
	})
	if err != nil {
		return 0, ioErr("purge notifications", err)
	}
	return purged, nil
}
