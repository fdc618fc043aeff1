package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bccguard/bccguard/relay/store"
)

// heldLease is an in-memory claim on a delivery. The pointer is its identity:
// a Complete succeeds only if the lease it found at the start is still the
// one in the map, so an owner whose lease was taken over cannot record an
// outcome, even if it reuses the owner name.
type heldLease struct {
	owner string
	until time.Time
	// completing is set while the holder's Complete is being committed;
	// the lease then cannot expire, so no one claims a delivery whose
	// outcome is about to be recorded.
	completing bool
	// raw and d are the delivery record as claimed: Complete reuses d when
	// the stored bytes are still raw (a memcmp instead of a JSON decode,
	// which was the larger part of a Complete).
	raw []byte
	d   store.Delivery
}

// live reports whether the lease still excludes other claimants at now.
func (l *heldLease) live(now time.Time) bool {
	return l != nil && (l.completing || l.until.After(now))
}

// Claim leases up to limit due deliveries to owner, oldest-due first.
//
// Claim only reads the database: leases are in memory, since one process
// owns the folder and a restart is meant to drop them. It holds s.mu from
// before its read transaction starts until the leases are recorded. A
// Complete releases its lease (under s.mu) only after its transaction
// committed, so any lease Claim finds released belongs to a commit its
// snapshot already shows: it never hands out a delivery by an outdated
// state.
func (s *Store) Claim(ctx context.Context, owner string, now time.Time, limit int, lease time.Duration) ([]store.Claimed, error) {
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
		return nil, fmt.Errorf("embedded: claim: lease must be positive, got %v", lease)
	}
	if now.IsZero() {
		now = time.Now()
	}
	nowN := now.UnixNano()
	until := now.Add(lease)

	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Claimed
	var raws [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		msgs := map[string]*msgRecord{}
		dls := tx.Bucket(bucketDeliveries)
		c := tx.Bucket(bucketDue).Cursor()
		for k, _ := c.First(); k != nil && len(out) < limit; k, _ = c.Next() {
			if keyNanos(k) > nowN {
				break
			}
			id := string(k[8:])
			if s.leases[id].live(now) {
				continue
			}
			v := dls.Get(k[8:])
			if v == nil {
				return fmt.Errorf("delivery %s: %w", id, store.ErrNotFound)
			}
			d, err := decodeDelivery(id, v)
			if err != nil {
				return err
			}
			raws = append(raws, bytes.Clone(v))
			m := msgs[d.MessageID]
			if m == nil {
				if m, err = s.claimMsg(tx, d.MessageID); err != nil {
					return err
				}
				msgs[d.MessageID] = m
			}
			out = append(out, store.Claimed{Delivery: *d, Message: m.Msg, LeaseUntil: until})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: claim: %w", err)
	}
	for i, c := range out {
		s.leases[c.Delivery.ID] = &heldLease{owner: owner, until: until, raw: raws[i], d: c.Delivery}
	}
	return out, nil
}

// maxClaimMsgs bounds claimMsgs: enough for the messages the workers are
// on, small enough to keep memory flat (a record with 500 recipients
// decodes to some tens of KiB).
const maxClaimMsgs = 64

// cachedMsg is a decoded message record and the exact bytes it was decoded
// from. A hit requires the stored bytes to be identical, so a record
// rewritten since (a quarantine release) is decoded afresh: the cache can
// never return anything but what getMsg would.
type cachedMsg struct {
	raw []byte
	rec *msgRecord
}

// claimMsg is getMsg through claimMsgs; the caller holds s.mu. Comparing
// the record's bytes (a memcmp on the mmap) costs a small fraction of
// decoding its JSON. The returned record is shared between claims, as it
// already was between the deliveries of one Claim: callers treat the
// Claimed message as read-only.
func (s *Store) claimMsg(tx *bolt.Tx, id string) (*msgRecord, error) {
	v := tx.Bucket(bucketMessages).Get([]byte(id))
	if c := s.claimMsgs[id]; c != nil && v != nil && bytes.Equal(c.raw, v) {
		return c.rec, nil
	}
	m, err := getMsg(tx, id)
	if err != nil {
		delete(s.claimMsgs, id)
		return nil, err
	}
	if len(s.claimMsgs) >= maxClaimMsgs {
		for k := range s.claimMsgs { // evict one, arbitrary
			delete(s.claimMsgs, k)
			break
		}
	}
	// v is only valid during tx: keep a copy.
	s.claimMsgs[id] = &cachedMsg{raw: bytes.Clone(v), rec: m}
	return m, nil
}

// Complete records an attempt's outcome and releases the lease.
//
// The lease must still be the caller's: taken over by another Claim (after
// it expired), or gone with a restart, the outcome is refused with
// store.ErrLeaseLost. A lease that expired but was not taken over is still
// honoured: the attempt happened, and recording it avoids a needless
// repeat.
//
// A final outcome on the last pending delivery of a message deletes the
// message: its record, deliveries and body (no tombstone is kept; a DSN
// must be built from the Claimed message before Complete). A released
// hold's review record is separate (bucketHolds) and stays.
func (s *Store) Complete(ctx context.Context, owner, deliveryID string, out store.Outcome) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	switch out.State {
	case store.StateDelivered, store.StateDeferred, store.StateBounced, store.StateExpired:
	default:
		return fmt.Errorf("embedded: complete %s: %q is not an outcome", deliveryID, out.State)
	}

	s.mu.Lock()
	l := s.leases[deliveryID]
	s.mu.Unlock()
	if l == nil || l.owner != owner {
		// Not ours: tell a missing delivery from a lost lease.
		err := s.db.View(func(tx *bolt.Tx) error {
			_, err := getDelivery(tx, deliveryID)
			return err
		})
		if err == nil {
			err = fmt.Errorf("delivery %s: %w", deliveryID, store.ErrLeaseLost)
		}
		return fmt.Errorf("embedded: complete: %w", err)
	}

	now := time.Now().UTC()
	err := s.batch.do(func(tx *bolt.Tx) error {
		d, err := l.delivery(tx, deliveryID)
		if err != nil {
			return err
		}
		s.mu.Lock()
		held := s.leases[deliveryID] == l && !d.State.Final()
		if held {
			l.completing = true
		}
		s.mu.Unlock()
		if !held {
			return fmt.Errorf("delivery %s: %w", deliveryID, store.ErrLeaseLost)
		}
		return s.applyOutcome(tx, d, l, out, now)
	})
	if err != nil {
		s.mu.Lock()
		l.completing = false
		s.mu.Unlock()
		return ioErr("complete", err)
	}
	return nil
}

// delivery is the stored delivery record: the lease's copy when the stored
// bytes are those it was claimed with, else decoded afresh. The copy is
// returned by value each time: a batch may run its function more than once.
func (l *heldLease) delivery(tx *bolt.Tx, id string) (*store.Delivery, error) {
	v := tx.Bucket(bucketDeliveries).Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("delivery %s: %w", id, store.ErrNotFound)
	}
	if l.raw != nil && bytes.Equal(v, l.raw) {
		d := l.d
		return &d, nil
	}
	return decodeDelivery(id, v)
}

// applyOutcome writes the new state of d, moves its index entries and
// collects the message when d was its last pending delivery.
func (s *Store) applyOutcome(tx *bolt.Tx, d *store.Delivery, l *heldLease, out store.Outcome, now time.Time) error {
	// The delivery leaves its index entries and gets those of its new
	// state. One put on hold while the attempt was in flight stays held
	// if the attempt deferred it (admin.go).
	var c counts
	if err := unindex(tx, d, &c); err != nil {
		return err
	}
	held := d.State == store.StateHeld && out.State == store.StateDeferred
	d.State = out.State
	if held {
		d.State = store.StateHeld
	}
	d.Attempts++
	d.LastError = out.Error
	if out.State == store.StateDeferred {
		if out.Recipients != nil {
			if len(out.Recipients) == 0 {
				return fmt.Errorf("delivery %s: a deferral must keep at least one recipient", d.ID)
			}
			d.Recipients = out.Recipients
		}
		d.NextAttempt = out.NextAttempt.UTC().Round(0)
		if out.NextAttempt.IsZero() {
			d.NextAttempt = now
		}
	}
	if err := reindex(tx, d, &c); err != nil {
		return err
	}
	var bodyFile string
	msgGone := false
	if out.State.Final() {
		open := tx.Bucket(bucketOpen)
		mid := []byte(d.MessageID)
		v := open.Get(mid)
		if len(v) != 4 {
			return fmt.Errorf("message %s: corrupt open count %x", d.MessageID, v)
		}
		if n := binary.BigEndian.Uint32(v); n > 1 {
			if err := open.Put(mid, binary.BigEndian.AppendUint32(nil, n-1)); err != nil {
				return err
			}
		} else {
			if tx.Bucket(bucketFiles).Get(mid) != nil {
				bodyFile = filepath.Join(s.spoolDir, d.MessageID)
			}
			if err := deleteMessage(tx, d.MessageID); err != nil {
				return err
			}
			msgGone = true
		}
	}
	id, msgID := d.ID, d.MessageID
	tx.OnCommit(func() {
		s.mu.Lock()
		if s.leases[id] == l {
			delete(s.leases, id)
		}
		if msgGone {
			delete(s.claimMsgs, msgID)
		}
		s.mu.Unlock()
		s.addCounts(c)
		// The record is gone for good; the file goes after it. A crash in
		// between leaves an orphan that the next Open removes.
		if bodyFile != "" {
			s.removeBody(bodyFile)
		}
	})
	return nil
}

// removeBody removes the body file of a message whose record is gone.
func (s *Store) removeBody(file string) {
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("removing message body", "file", file, "err", err)
	}
}

// deleteMessage removes a message whose deliveries are all final (or a
// held message that has none, when it is discarded): its deliveries (no
// longer in any index), count, body and record. A hold record is not
// touched. The caller removes a spilled body's file after the commit.
func deleteMessage(tx *bolt.Tx, msgID string) error {
	dl := tx.Bucket(bucketDeliveries)
	for _, k := range prefixKeys(dl, deliveryPrefix(msgID)) {
		if err := dl.Delete(k); err != nil {
			return err
		}
	}
	id := []byte(msgID)
	for _, b := range [][]byte{bucketOpen, bucketBodies, bucketFiles, bucketMessages} {
		if err := tx.Bucket(b).Delete(id); err != nil {
			return err
		}
	}
	return nil
}

// NextDue returns the earliest time at which Claim can return something:
// for a delivery under a live lease that is when the lease ends, not its
// NextAttempt, which has passed (otherwise a worker would wake at once
// and claim nothing, in a loop). Leases are judged by the wall clock.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	if err := s.enter(); err != nil {
		return time.Time{}, false, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return time.Time{}, false, err
	}
	now := time.Now()
	var best time.Time
	found := false
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDue).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			t, id := splitTimeKey(k)
			if found && !t.Before(best) {
				break // keys are in time order: nothing later can be earlier
			}
			at := t
			if l := s.leases[id]; l.live(now) {
				at = l.until
				if l.completing || at.Before(t) {
					at = maxTime(t, now)
				}
			}
			if !found || at.Before(best) {
				best, found = at, true
			}
		}
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("embedded: next due: %w", err)
	}
	return best, found, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
