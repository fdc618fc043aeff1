package embedded

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bccguard/bccguard/relay/store"
	"github.com/bccguard/bccguard/relay/store/spill"
)

type spoolState int

const (
	spoolOpen spoolState = iota
	spoolCommitted
	spoolDone // aborted, or failed and cleaned up
)

// spool is a store.Spool, used by one session at a time. Small bodies stay
// in memory and are written into the commit transaction (sharing its fsync
// with other sessions); once a body reaches the inline limit it moves to
// the file spool/<ID> and streams there. The file is named for its message from the start: until the
// record commits, it is an orphan that Abort, or the next Open, removes.
type spool struct {
	s    *Store
	id   string
	body *spill.Body
	// spilled: the body is in spool/<ID> (set when the file is created, and
	// kept after it is closed, so discard knows to remove it).
	spilled bool
	err     error // first write error; the spool can then only be aborted
	state   spoolState
}

// NewSpool starts a message. Its ID is known up front for the Received:
// header; nothing is stored until Commit.
func (s *Store) NewSpool(ctx context.Context) (store.Spool, string, error) {
	if err := s.enter(); err != nil {
		return nil, "", err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if err := s.checkSpace(); err != nil {
		return nil, "", err
	}
	id := s.ids.next()
	sp := &spool{s: s, id: id}
	sp.body = spill.New(s.inlineLimit, sp.createFile)
	return sp, id, nil
}

func (sp *spool) path() string { return filepath.Join(sp.s.spoolDir, sp.id) }

// Write appends p to the message.
func (sp *spool) Write(p []byte) (int, error) {
	switch {
	case sp.state != spoolOpen:
		return 0, errors.New("embedded: write to a finished spool")
	case sp.err != nil:
		return 0, sp.err
	}
	n, err := sp.body.Write(p)
	if err != nil {
		sp.err = ioErr("write spool file", err)
		return n, sp.err
	}
	return n, nil
}

// createFile opens spool/<ID> when the body outgrows the inline limit.
func (sp *spool) createFile() (*os.File, error) {
	f, err := os.OpenFile(sp.path(), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err == nil {
		sp.spilled = true
	}
	return f, err
}

// Abort discards an uncommitted spool; after Commit it does nothing.
func (sp *spool) Abort() error {
	if sp.state != spoolOpen {
		return nil
	}
	sp.state = spoolDone
	return sp.discard()
}

// discard drops the buffer and removes the file, if any.
func (sp *spool) discard() error {
	sp.body.Drop()
	if !sp.spilled {
		return nil
	}
	sp.spilled = false
	if err := os.Remove(sp.path()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("embedded: remove spool file: %w", err)
	}
	return nil
}

// Commit makes the body, the message record and its deliveries durable.
// It is done once: whether it succeeds or fails, the spool is finished (a
// failed one discarded).
//
// A spilled body is flushed, fdatasync'd and its directory fsync'd first,
// then the records (and an inline body) go into the group commit. If that
// fails the body file is removed, except after an I/O error other than a
// full disk: bbolt may then have written the record even though the commit
// reported failure, and a committed record must always have its body, so
// the file stays and the next Open removes it if the record is not there.
func (sp *spool) Commit(ctx context.Context, msg store.Message, deliveries store.Plan, notices ...store.NewNotification) (string, error) {
	switch {
	case sp.state == spoolCommitted:
		return "", errors.New("embedded: spool already committed")
	case sp.state != spoolOpen:
		return "", errors.New("embedded: spool is finished (aborted or failed)")
	case sp.err != nil:
		sp.fail()
		return "", sp.err
	}
	id, err := sp.commit(ctx, msg, deliveries, notices)
	if err != nil && sp.state == spoolOpen {
		sp.fail()
	}
	return id, err
}

func (sp *spool) commit(ctx context.Context, msg store.Message, deliveries store.Plan, notices []store.NewNotification) (string, error) {
	s := sp.s
	if err := s.enter(); err != nil {
		return "", err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if msg.ID != "" && msg.ID != sp.id {
		return "", fmt.Errorf("embedded: commit: message ID %q is not the spool's %q", msg.ID, sp.id)
	}
	if err := deliveries.Validate(); err != nil {
		return "", fmt.Errorf("embedded: commit: %w", err)
	}
	if err := checkNotices("commit", notices); err != nil {
		return "", err
	}
	if msg.Quarantine != nil && len(deliveries) > 0 {
		return "", errors.New("embedded: commit: a quarantined message cannot have deliveries (they are created by Release)")
	}

	now := time.Now().UTC()
	msg.ID = sp.id
	msg.Size = sp.body.Size() // always the truth: it is what Open will return
	if msg.ReceivedAt.IsZero() {
		msg.ReceivedAt = now
	}
	msg.ReceivedAt = msg.ReceivedAt.Round(0)
	rec := msgRecord{Msg: msg, Spilled: sp.spilled, Deliveries: len(deliveries)}

	if sp.spilled {
		if err := sp.syncFile(); err != nil {
			return "", err
		}
	}
	// Checked again now that the body is written: a large one may have
	// taken the reserve, and is refused (its file removed by Abort).
	if err := s.checkSpace(); err != nil {
		return "", err
	}

	// Encode outside the transaction: the committer runs it for many
	// sessions at once and may run it twice.
	msgVal, err := json.Marshal(&rec)
	if err != nil {
		return "", fmt.Errorf("embedded: encode message: %w", err)
	}
	rows, err := deliveryRows(sp.id, deliveries, now)
	if err != nil {
		return "", err
	}
	var hold *encodedHold
	if msg.Quarantine != nil {
		if hold, err = encodeHold(&store.Hold{Message: msg, State: store.HoldHeld}); err != nil {
			return "", err
		}
	}
	id := []byte(sp.id)
	body := sp.body.Inline()

	err = s.batch.do(func(tx *bolt.Tx) error {
		msgs := appendBucket(tx, bucketMessages)
		// A hold outlives its message record: its ID stays taken.
		if msgs.Get(id) != nil || tx.Bucket(bucketHolds).Get(id) != nil {
			return fmt.Errorf("message ID %s already stored", id)
		}
		if err := msgs.Put(id, msgVal); err != nil {
			return err
		}
		if rec.Spilled {
			if err := tx.Bucket(bucketFiles).Put(id, nil); err != nil {
				return err
			}
		} else if err := appendBucket(tx, bucketBodies).Put(id, nonNil(body)); err != nil {
			return err
		}
		if hold != nil {
			if err := hold.put(tx); err != nil {
				return err
			}
		}
		if _, err := putNotices(tx, notices, now); err != nil {
			return err
		}
		return s.putDeliveries(tx, id, rows)
	})
	if err != nil {
		var ce *commitError
		if errors.As(err, &ce) && !isNoSpace(err) && rec.Spilled {
			s.log.Error("commit failed; keeping the body file until the next start checks it", "id", sp.id, "err", err)
			sp.state, sp.spilled = spoolDone, false
			sp.body.Drop()
		}
		return "", ioErr("commit "+sp.id, err)
	}
	sp.state = spoolCommitted
	sp.body.Drop()
	return sp.id, nil
}

// syncFile makes a spilled body durable: data, then the directory entry.
func (sp *spool) syncFile() error {
	f, err := sp.body.File()
	if err != nil {
		return ioErr("write spool file", err)
	}
	if err := datasync(f); err != nil {
		return ioErr("sync spool file", err)
	}
	err = f.Close()
	sp.body.Drop() // the file is closed; Drop's second Close is harmless
	if err != nil {
		return ioErr("close spool file", err)
	}
	if err := sp.s.spoolDirF.Sync(); err != nil {
		return ioErr("sync spool dir", err)
	}
	return nil
}

// fail ends a spool whose commit failed, removing what it wrote.
func (sp *spool) fail() {
	sp.state = spoolDone
	if err := sp.discard(); err != nil {
		sp.s.log.Warn("removing spool file", "id", sp.id, "err", err)
	}
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// deliveryRow is a new delivery, encoded outside the transaction. One key
// serves both the due and the age index: a new delivery is due on creation.
type deliveryRow struct{ id, key, val []byte }

// deliveryRows encodes the deliveries of message msgID, numbered from 1,
// queued and due at now.
func deliveryRows(msgID string, deliveries store.Plan, now time.Time) ([]deliveryRow, error) {
	rows := make([]deliveryRow, len(deliveries))
	for i, nd := range deliveries {
		d := store.Delivery{
			ID:          deliveryID(msgID, i+1),
			MessageID:   msgID,
			Recipients:  nd.Recipients,
			Rewrite:     nd.Rewrite,
			State:       store.StateQueued,
			CreatedAt:   now,
			NextAttempt: now,
		}
		val, err := json.Marshal(&d)
		if err != nil {
			return nil, fmt.Errorf("embedded: encode delivery: %w", err)
		}
		rows[i] = deliveryRow{[]byte(d.ID), timeKey(now, d.ID), val}
	}
	return rows, nil
}

// appendFill is how full bbolt leaves a page it splits in the buckets that
// Commit appends to. Their keys grow with time (message IDs and index keys
// start with it), so new entries land at the end of the tree; at bbolt's
// default of 50% every page left behind by a split would stay half empty,
// doubling the pages every commit writes and the file bccguard maps.
const appendFill = 0.9

// appendBucket is tx's bucket name set up for inserts in key order.
func appendBucket(tx *bolt.Tx, name []byte) *bolt.Bucket {
	b := tx.Bucket(name)
	b.FillPercent = appendFill
	return b
}

// putDeliveries stores the new deliveries of message id, their open count
// and index entries, and counts them as pending once the transaction
// commits. With no rows it does nothing: the message is kept, not queued.
func (s *Store) putDeliveries(tx *bolt.Tx, id []byte, rows []deliveryRow) error {
	if len(rows) == 0 {
		return nil
	}
	if err := appendBucket(tx, bucketOpen).Put(id, binary.BigEndian.AppendUint32(nil, uint32(len(rows)))); err != nil {
		return err
	}
	dl, due, age := appendBucket(tx, bucketDeliveries), appendBucket(tx, bucketDue), appendBucket(tx, bucketAge)
	for _, r := range rows {
		if err := dl.Put(r.id, r.val); err != nil {
			return err
		}
		if err := due.Put(r.key, nil); err != nil {
			return err
		}
		if err := age.Put(r.key, []byte{ageQueued}); err != nil {
			return err
		}
	}
	n := int64(len(rows))
	tx.OnCommit(func() { s.pending.Add(n) })
	return nil
}
