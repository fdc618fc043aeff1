package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bccguard/bccguard/relay/store"
)

// DefaultListLimit is how many deliveries List returns when Filter.Limit is 0.
const DefaultListLimit = 1000

// Open returns the stored raw message: its file for a spilled body, or a
// copy of the inline body (at most the inline limit).
func (s *Store) Open(ctx context.Context, messageID string) (io.ReadCloser, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var body []byte
	spilled := false
	err := s.db.View(func(tx *bolt.Tx) error {
		// An inline body is found without decoding the message record
		// (an exploded copy opens its message once per recipient).
		if b := tx.Bucket(bucketBodies).Get([]byte(messageID)); b != nil {
			body = bytes.Clone(b)
			return nil
		}
		m, err := getMsg(tx, messageID)
		if err != nil {
			return err
		}
		if spilled = m.Spilled; !spilled {
			body = bytes.Clone(tx.Bucket(bucketBodies).Get([]byte(messageID)))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: open: %w", err)
	}
	if !spilled {
		return io.NopCloser(bytes.NewReader(body)), nil
	}
	// The message may be collected between the lookup and here; once the
	// file is open, collection no longer affects the reader.
	f, err := os.Open(filepath.Join(s.spoolDir, messageID))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("embedded: open: message %s: %w", messageID, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("embedded: open: %w", err)
	}
	return f, nil
}

// Message returns a message record.
func (s *Store) Message(ctx context.Context, messageID string) (store.Message, error) {
	if err := s.enter(); err != nil {
		return store.Message{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return store.Message{}, err
	}
	var m *msgRecord
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		m, err = getMsg(tx, messageID)
		return err
	})
	if err != nil {
		return store.Message{}, fmt.Errorf("embedded: %w", err)
	}
	return m.Msg, nil
}

// filter is a store.Filter made quick to test.
type filter struct {
	states    map[store.State]bool // nil: all
	messageID string
}

func newFilter(f store.Filter) filter {
	ff := filter{messageID: f.MessageID}
	if len(f.States) > 0 {
		ff.states = map[store.State]bool{}
		for _, st := range f.States {
			ff.states[st] = true
		}
	}
	return ff
}

func (f filter) match(d *store.Delivery) bool {
	return (f.states == nil || f.states[d.State]) && (f.messageID == "" || d.MessageID == f.messageID)
}

// pendingOnly reports whether only unfinished deliveries can match, so
// the age index (which holds the queued and deferred ones) and the held
// index are enough.
func (f filter) pendingOnly() bool {
	if f.states == nil {
		return false
	}
	for st := range f.states {
		if st.Final() {
			return false
		}
	}
	return true
}

// List returns deliveries matching f, oldest first (by creation, then
// message, then delivery number). Deliveries of collected messages are gone
// and not listed. For pending states it walks the age index and stops
// after the limit; otherwise it scans the deliveries (of one message, with
// a MessageID).
func (s *Store) List(ctx context.Context, f store.Filter) ([]store.Delivery, error) {
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
	ff := newFilter(f)
	var out []store.Delivery
	err := s.db.View(func(tx *bolt.Tx) error {
		dl := tx.Bucket(bucketDeliveries)
		add := func(k, v []byte) error {
			d, err := decodeDelivery(string(k), v)
			if err != nil {
				return err
			}
			if ff.match(d) {
				out = append(out, *d)
			}
			return nil
		}
		switch {
		case ff.messageID != "":
			p := deliveryPrefix(ff.messageID)
			c := dl.Cursor()
			for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
				if err := add(k, v); err != nil {
					return err
				}
			}
		case ff.pendingOnly():
			if ff.states[store.StateHeld] {
				var err error
				if out, err = listHeld(tx, ff, limit, out); err != nil {
					return err
				}
			}
			if !ff.states[store.StateQueued] && !ff.states[store.StateDeferred] {
				break
			}
			// The age index is in creation order; within one creation
			// time its ID order is not ours, so read that whole group
			// before cutting at the limit.
			c := tx.Bucket(bucketAge).Cursor()
			var lastN int64
			n0 := len(out)
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				n := keyNanos(k)
				if len(out)-n0 >= limit && n != lastN {
					break
				}
				id := k[8:]
				if err := add(id, dl.Get(id)); err != nil {
					return err
				}
				lastN = n
			}
		default:
			return dl.ForEach(add)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: list: %w", err)
	}
	slices.SortFunc(out, func(a, b store.Delivery) int { return lessDelivery(&a, &b) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Flush makes every deferred delivery matching f due at now and returns
// how many it moved (those not due yet). f.Limit does not apply.
func (s *Store) Flush(ctx context.Context, f store.Filter, now time.Time) (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	ff := newFilter(f)
	if ff.states != nil && !ff.states[store.StateDeferred] {
		return 0, nil
	}
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC().Round(0)
	var n int
	err := s.batch.do(func(tx *bolt.Tx) error {
		n = 0 // the committer may run this more than once
		dl, due := tx.Bucket(bucketDeliveries), tx.Bucket(bucketDue)
		var ids [][]byte
		if ff.messageID != "" {
			ids = prefixKeys(dl, deliveryPrefix(ff.messageID))
		} else {
			c := tx.Bucket(bucketAge).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if len(v) == 1 && v[0] == ageDeferred {
					ids = append(ids, bytes.Clone(k[8:]))
				}
			}
		}
		for _, id := range ids {
			d, err := decodeDelivery(string(id), dl.Get(id))
			if err != nil {
				return err
			}
			if d.State != store.StateDeferred || !d.NextAttempt.After(now) {
				continue
			}
			if err := due.Delete(timeKey(d.NextAttempt, d.ID)); err != nil {
				return err
			}
			d.NextAttempt = now
			if err := due.Put(timeKey(now, d.ID), nil); err != nil {
				return err
			}
			if err := putJSON(dl, d.ID, d); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, ioErr("flush", err)
	}
	return n, nil
}
