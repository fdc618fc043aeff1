package embedded

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bccguard/bccguard/relay/store"
)

// The queue administration of store.QueueAdmin. A delivery's index entries
// follow its state: queued and deferred ones are in the due and age
// indexes (as Claim, NextDue, Stats and Flush expect), held ones only in
// the held index, so nothing that reads the queue's front ever sees them.

var _ store.QueueAdmin = (*Store)(nil)

// counts are changes to the Stats counters, applied when a transaction
// commits.
type counts struct{ pending, deferred, held int64 }

func (s *Store) addCounts(c counts) {
	s.pending.Add(c.pending)
	s.deferred.Add(c.deferred)
	s.held.Add(c.held)
}

// unindex removes d's index entries for its current state.
func unindex(tx *bolt.Tx, d *store.Delivery, c *counts) error {
	switch d.State {
	case store.StateQueued, store.StateDeferred:
		if err := tx.Bucket(bucketDue).Delete(timeKey(d.NextAttempt, d.ID)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketAge).Delete(timeKey(d.CreatedAt, d.ID)); err != nil {
			return err
		}
		c.pending--
		if d.State == store.StateDeferred {
			c.deferred--
		}
	case store.StateHeld:
		if err := tx.Bucket(bucketHeld).Delete(timeKey(d.CreatedAt, d.ID)); err != nil {
			return err
		}
		c.held--
	}
	return nil
}

// reindex adds d's index entries for its (new) state and stores it.
func reindex(tx *bolt.Tx, d *store.Delivery, c *counts) error {
	switch d.State {
	case store.StateQueued, store.StateDeferred:
		if err := tx.Bucket(bucketDue).Put(timeKey(d.NextAttempt, d.ID), nil); err != nil {
			return err
		}
		v := byte(ageQueued)
		if d.State == store.StateDeferred {
			v = ageDeferred
			c.deferred++
		}
		if err := tx.Bucket(bucketAge).Put(timeKey(d.CreatedAt, d.ID), []byte{v}); err != nil {
			return err
		}
		c.pending++
	case store.StateHeld:
		if err := tx.Bucket(bucketHeld).Put(timeKey(d.CreatedAt, d.ID), nil); err != nil {
			return err
		}
		c.held++
	}
	return putJSON(tx.Bucket(bucketDeliveries), d.ID, d)
}

// queuedMsg reads the record of a message queue actions may act on.
func queuedMsg(tx *bolt.Tx, id string) (*msgRecord, error) {
	m, err := getMsg(tx, id)
	if err != nil {
		return nil, err
	}
	if m.Deliveries == 0 {
		return nil, fmt.Errorf("message %s: %w", id, store.ErrNotQueued)
	}
	return m, nil
}

// changeDeliveries runs change on every delivery of a message in one
// transaction; change edits a delivery and reports whether it did.
func (s *Store) changeDeliveries(ctx context.Context, op, id string, change func(d *store.Delivery) bool) (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n int
	err := s.batch.do(func(tx *bolt.Tx) error {
		n = 0 // the committer may run this more than once
		if _, err := queuedMsg(tx, id); err != nil {
			return err
		}
		var c counts
		dl := tx.Bucket(bucketDeliveries)
		for _, k := range prefixKeys(dl, deliveryPrefix(id)) {
			d, err := decodeDelivery(string(k), dl.Get(k))
			if err != nil {
				return err
			}
			before := *d
			if !change(d) {
				continue
			}
			if err := unindex(tx, &before, &c); err != nil {
				return err
			}
			if err := reindex(tx, d, &c); err != nil {
				return err
			}
			n++
		}
		tx.OnCommit(func() { s.addCounts(c) })
		return nil
	})
	if err != nil {
		return 0, ioErr(op, err)
	}
	return n, nil
}

// HoldQueued puts the message's queued and deferred deliveries on hold.
func (s *Store) HoldQueued(ctx context.Context, id string, now time.Time) (int, error) {
	now = utcNow(now)
	return s.changeDeliveries(ctx, "hold", id, func(d *store.Delivery) bool {
		if d.State != store.StateQueued && d.State != store.StateDeferred {
			return false
		}
		d.State, d.HeldSince = store.StateHeld, now
		return true
	})
}

// ReleaseQueued makes the message's held deliveries due at now.
func (s *Store) ReleaseQueued(ctx context.Context, id string, now time.Time) (int, error) {
	now = utcNow(now)
	return s.changeDeliveries(ctx, "release", id, func(d *store.Delivery) bool {
		if d.State != store.StateHeld {
			return false
		}
		release(d, now)
		return true
	})
}

// Requeue starts every unfinished delivery of the message over, due now.
func (s *Store) Requeue(ctx context.Context, id string, now time.Time) (int, error) {
	now = utcNow(now)
	return s.changeDeliveries(ctx, "requeue", id, func(d *store.Delivery) bool {
		if !d.State.Unfinished() {
			return false
		}
		if d.State == store.StateHeld {
			release(d, now)
		}
		d.State, d.NextAttempt, d.Attempts = store.StateQueued, now, 0
		return true
	})
}

// release ends d's hold at now.
func release(d *store.Delivery, now time.Time) {
	if !d.HeldSince.IsZero() && now.After(d.HeldSince) {
		d.HeldFor += now.Sub(d.HeldSince)
	}
	d.State, d.NextAttempt, d.HeldSince = store.StateQueued, now, time.Time{}
}

func utcNow(now time.Time) time.Time {
	if now.IsZero() {
		now = time.Now()
	}
	return now.UTC().Round(0)
}

// DeleteQueued removes the message with its deliveries and body, and
// returns the deliveries that were not final. Their leases go too: an
// attempt in flight then cannot record its outcome (ErrNotFound).
func (s *Store) DeleteQueued(ctx context.Context, id string) ([]store.Delivery, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var unfinished []store.Delivery
	err := s.batch.do(func(tx *bolt.Tx) error {
		unfinished = unfinished[:0]
		m, err := queuedMsg(tx, id)
		if err != nil {
			return err
		}
		var c counts
		var all []string
		dl := tx.Bucket(bucketDeliveries)
		for _, k := range prefixKeys(dl, deliveryPrefix(id)) {
			d, err := decodeDelivery(string(k), dl.Get(k))
			if err != nil {
				return err
			}
			all = append(all, d.ID)
			if !d.State.Unfinished() {
				continue
			}
			if err := unindex(tx, d, &c); err != nil {
				return err
			}
			unfinished = append(unfinished, *d)
		}
		if err := deleteMessage(tx, id); err != nil {
			return err
		}
		bodyFile := ""
		if m.Spilled {
			bodyFile = filepath.Join(s.spoolDir, id)
		}
		tx.OnCommit(func() {
			s.mu.Lock()
			for _, d := range all {
				delete(s.leases, d)
			}
			delete(s.claimMsgs, id)
			s.mu.Unlock()
			s.addCounts(c)
			if bodyFile != "" {
				s.removeBody(bodyFile)
			}
		})
		return nil
	})
	if err != nil {
		return nil, ioErr("delete", err)
	}
	slices.SortFunc(unfinished, func(a, b store.Delivery) int { return lessDelivery(&a, &b) })
	return unfinished, nil
}

// QueuedMessages returns the IDs of messages with an unfinished delivery
// matching f, oldest first. It reads the age and held indexes, then the
// records of the candidates when f names a sender.
func (s *Store) QueuedMessages(ctx context.Context, f store.QueueFilter) ([]string, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := f.Limit
	if limit <= 0 {
		limit = store.DefaultQueueMatchLimit
	}
	want := map[store.State]bool{}
	for _, st := range f.States {
		want[st] = true
	}
	match := func(st store.State) bool { return len(want) == 0 || want[st] }
	type cand struct {
		at int64
		id string
	}
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		first := map[string]int64{} // message ID -> its oldest matching delivery
		note := func(k []byte, st store.State) {
			if !match(st) {
				return
			}
			did := string(k[8:])
			mid := did[:max(strings.LastIndexByte(did, '.'), 0)]
			if at, ok := first[mid]; !ok || keyNanos(k) < at {
				first[mid] = keyNanos(k)
			}
		}
		err := tx.Bucket(bucketAge).ForEach(func(k, v []byte) error {
			st := store.StateQueued
			if len(v) == 1 && v[0] == ageDeferred {
				st = store.StateDeferred
			}
			note(k, st)
			return nil
		})
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketHeld).ForEach(func(k, _ []byte) error { note(k, store.StateHeld); return nil }); err != nil {
			return err
		}
		cands := make([]cand, 0, len(first))
		for id, at := range first {
			cands = append(cands, cand{at, id})
		}
		slices.SortFunc(cands, func(a, b cand) int {
			return cmp.Or(cmp.Compare(a.at, b.at), strings.Compare(a.id, b.id))
		})
		for _, c := range cands {
			if len(out) >= limit {
				break
			}
			if f.Sender != "" || f.NullSender {
				m, err := getMsg(tx, c.id)
				if err != nil {
					return err
				}
				if snd := m.Msg.Envelope.Sender; f.NullSender && snd != "" || !f.NullSender && !strings.EqualFold(snd, f.Sender) {
					continue
				}
			}
			out = append(out, c.id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: queued messages: %w", err)
	}
	return out, nil
}

// listHeld adds the held deliveries matching ff to out, oldest first, up
// to limit (and the rest of the last creation time), for List.
func listHeld(tx *bolt.Tx, ff filter, limit int, out []store.Delivery) ([]store.Delivery, error) {
	dl := tx.Bucket(bucketDeliveries)
	c := tx.Bucket(bucketHeld).Cursor()
	n, lastN := 0, int64(0)
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if n >= limit && keyNanos(k) != lastN {
			break
		}
		id := k[8:]
		d, err := decodeDelivery(string(id), dl.Get(id))
		if err != nil {
			return out, err
		}
		if ff.match(d) {
			out = append(out, *d)
			n++
		}
		lastN = keyNanos(k)
	}
	return out, nil
}
