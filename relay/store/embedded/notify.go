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
