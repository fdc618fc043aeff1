package embedded

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bccguard/bccguard/relay/store"
)

// The review side (store.QuarantineStore).
//
// A message committed with a Quarantine and no deliveries gets, in the same
// transaction, a hold record (bucketHolds) and an index entry
// (bucketHoldIndex) beside its ordinary message record and body. While it
// is held, Open and Message work as for any message kept without
// deliveries. The hold record carries its own copy of the message record,
// so it stays complete whatever happens to the queue's records:
//
//   - Release queues the deliveries exactly as Commit would have (IDs
//     "<msgID>.<n>", due now, counted as pending) in the transaction that
//     moves the hold from held to released. From then on the message is an
//     ordinary queued message: its body and record are collected when its
//     last delivery is final. The hold record stays.
//   - Discard removes the message record and body (inline, or the file
//     after the commit) in the transaction that moves the hold to deleted
//     or expired. The hold record stays.
//
// Every state change checks, inside its transaction, that the hold is still
// held. The group committer runs transactions one after another, so of two
// reviewers acting on one hold exactly one sees it held. An action that
// finds the hold missing or no longer held writes nothing and returns nil
// to the committer, so it does not roll back the commits it was batched
// with; its caller gets store.ErrNotFound or store.ErrNotHeld.

// Paging of Holds and Audit.
const (
	// DefaultPageLimit is how many holds or audit entries a list returns
	// when its filter's Limit is 0.
	DefaultPageLimit = 100
	// MaxPageLimit caps a filter's Limit.
	MaxPageLimit = 1000
)

var _ store.QuarantineStore = (*Store)(nil)

// page returns a filter's offset and limit, defaulted and capped.
func page(offset, limit int) (int, int) {
	if limit <= 0 {
		limit = DefaultPageLimit
	}
	return max(offset, 0), min(limit, MaxPageLimit)
}

// holdEntry is the value of a hold's index entry: what the list filters
// and HoldStats test, so they need not decode hold records.
type holdEntry struct {
	state  store.HoldState
	rule   string
	sender string // lower case
	ip     string
	user   string
}

func (e *holdEntry) encode() []byte {
	var b []byte
	for _, f := range []string{string(e.state), e.rule, e.sender, e.ip, e.user} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

func decodeHoldEntry(v []byte) (holdEntry, error) {
	var f [5]string
	for i := range f {
		n, w := binary.Uvarint(v)
		if w <= 0 || uint64(len(v)-w) < n {
			return holdEntry{}, errors.New("corrupt hold index entry")
		}
		f[i] = string(v[w : w+int(n)])
		v = v[w+int(n):]
	}
	return holdEntry{state: store.HoldState(f[0]), rule: f[1], sender: f[2], ip: f[3], user: f[4]}, nil
}

func newHoldEntry(h *store.Hold) holdEntry {
	e := holdEntry{
		state:  h.State,
		sender: strings.ToLower(h.Message.Envelope.Sender),
		ip:     h.Message.Client.IP,
		user:   h.Message.Client.User,
	}
	if q := h.Message.Quarantine; q != nil {
		e.rule = q.Rule
	}
	return e
}

// encodedHold is a hold ready to be written: its record and index entry.
type encodedHold struct {
	id, val, key, entry []byte
}

func encodeHold(h *store.Hold) (*encodedHold, error) {
	val, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("embedded: encode hold %s: %w", h.Message.ID, err)
	}
	e := newHoldEntry(h)
	return &encodedHold{
		id:    []byte(h.Message.ID),
		val:   val,
		key:   timeKey(h.Message.ReceivedAt, h.Message.ID),
		entry: e.encode(),
	}, nil
}

// put writes the hold record and its index entry. The index key never
// changes (ReceivedAt and ID are fixed at commit), so a put overwrites it.
func (e *encodedHold) put(tx *bolt.Tx) error {
	if err := tx.Bucket(bucketHolds).Put(e.id, e.val); err != nil {
		return err
	}
	return tx.Bucket(bucketHoldIndex).Put(e.key, e.entry)
}

func putHold(tx *bolt.Tx, h *store.Hold) error {
	e, err := encodeHold(h)
	if err != nil {
		return err
	}
	return e.put(tx)
}

func getHold(tx *bolt.Tx, id string) (*store.Hold, error) {
	v := tx.Bucket(bucketHolds).Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("hold %s: %w", id, store.ErrNotFound)
	}
	return decodeHold(id, v)
}

func decodeHold(id string, v []byte) (*store.Hold, error) {
	var h store.Hold
	if err := json.Unmarshal(v, &h); err != nil {
		return nil, fmt.Errorf("hold %s: corrupt record: %w", id, err)
	}
	return &h, nil
}

// heldHold returns the hold id if it is still held. A missing or resolved
// hold is an outcome for the caller, not a failure of the transaction:
// it comes back as outcome with a nil error.
func heldHold(tx *bolt.Tx, id string) (h *store.Hold, outcome, err error) {
	h, err = getHold(tx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, err, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if h.State != store.HoldHeld {
		return nil, fmt.Errorf("hold %s is %s: %w", id, h.State, store.ErrNotHeld), nil
	}
	return h, nil, nil
}

// Hold returns one hold.
func (s *Store) Hold(ctx context.Context, messageID string) (store.Hold, error) {
	if err := s.enter(); err != nil {
		return store.Hold{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return store.Hold{}, err
	}
	var h *store.Hold
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		h, err = getHold(tx, messageID)
		return err
	})
	if err != nil {
		return store.Hold{}, fmt.Errorf("embedded: %w", err)
	}
	return *h, nil
}

// holdFilter is a store.HoldFilter made quick to test against index
// entries.
type holdFilter struct {
	states               map[store.HoldState]bool // nil: all
	rule, sender, ip, us string
}

func newHoldFilter(f store.HoldFilter) holdFilter {
	hf := holdFilter{rule: f.Rule, sender: strings.ToLower(f.Sender), ip: f.ClientIP, us: f.User}
	if len(f.States) > 0 {
		hf.states = map[store.HoldState]bool{}
		for _, st := range f.States {
			hf.states[st] = true
		}
	}
	return hf
}

func (f *holdFilter) match(e *holdEntry) bool {
	return (f.states == nil || f.states[e.state]) &&
		(f.rule == "" || e.rule == f.rule) &&
		(f.sender == "" || e.sender == f.sender) &&
		(f.ip == "" || e.ip == f.ip) &&
		(f.us == "" || e.user == f.us)
}

// Holds lists holds matching f, newest first (by ReceivedAt, then ID), one
// page of them, with the number of all matches. It walks the index
// backwards within the time bounds and decodes only the holds of the page.
func (s *Store) Holds(ctx context.Context, f store.HoldFilter) ([]store.Hold, int, error) {
	if err := s.enter(); err != nil {
		return nil, 0, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	offset, limit := page(f.Offset, f.Limit)
	hf := newHoldFilter(f)
	out := []store.Hold{}
	total := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		holds := tx.Bucket(bucketHolds)
		c := tx.Bucket(bucketHoldIndex).Cursor()
		var k, v []byte
		if f.HeldBefore.IsZero() {
			k, v = c.Last()
		} else if k, _ = c.Seek(timeKey(f.HeldBefore, "")); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev() // the last key before HeldBefore
		}
		for ; k != nil; k, v = c.Prev() {
			if !f.HeldAfter.IsZero() && keyNanos(k) <= f.HeldAfter.UnixNano() {
				break
			}
			e, err := decodeHoldEntry(v)
			if err != nil {
				return fmt.Errorf("hold %s: %w", k[8:], err)
			}
			if !hf.match(&e) {
				continue
			}
			total++
			if total <= offset || len(out) >= limit {
				continue
			}
			id := string(k[8:])
			rec := holds.Get(k[8:])
			if rec == nil {
				return fmt.Errorf("hold %s: indexed but not stored", id)
			}
			h, err := decodeHold(id, rec)
			if err != nil {
				return err
			}
			out = append(out, *h)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("embedded: holds: %w", err)
	}
	return out, total, nil
}

// Approve records a's approval on a held message, replacing an earlier
// approval by the same actor, and returns the hold.
func (s *Store) Approve(ctx context.Context, messageID string, a store.Approval, notices ...store.NewNotification) (store.Hold, error) {
	if err := s.enter(); err != nil {
		return store.Hold{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return store.Hold{}, err
	}
	if err := a.Validate(); err != nil {
		return store.Hold{}, fmt.Errorf("embedded: approve %s: %w", messageID, err)
	}
	if err := checkNotices("approve "+messageID, notices); err != nil {
		return store.Hold{}, err
	}
	if a.At.IsZero() {
		a.At = time.Now().UTC()
	}
	a.At = a.At.Round(0)
	var (
		out     store.Hold
		outcome error
	)
	err := s.batch.do(func(tx *bolt.Tx) error {
		h, oc, err := heldHold(tx, messageID)
		if outcome = oc; h == nil {
			return err
		}
		replaced := false
		for i := range h.Approvals {
			if h.Approvals[i].Actor == a.Actor {
				h.Approvals[i], replaced = a, true
			}
		}
		if !replaced {
			h.Approvals = append(h.Approvals, a)
		}
		if err := putHold(tx, h); err != nil {
			return err
		}
		if _, err := putNotices(tx, notices, time.Now().UTC().Round(0)); err != nil {
			return err
		}
		out = *h
		return nil
	})
	if err != nil {
		return store.Hold{}, ioErr("approve "+messageID, err)
	}
	if outcome != nil {
		return store.Hold{}, fmt.Errorf("embedded: approve: %w", outcome)
	}
	return out, nil
}

// resolution fills in a resolution's time.
func resolution(r store.Resolution) *store.Resolution {
	if r.At.IsZero() {
		r.At = time.Now().UTC()
	}
	r.At = r.At.Round(0)
	return &r
}

// Release moves a held message to released and queues deliveries for it,
// in one transaction, as Commit would have queued them. It needs at least
// one delivery, and a plan that Validates.
func (s *Store) Release(ctx context.Context, messageID string, deliveries store.Plan, r store.Resolution, notices ...store.NewNotification) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(deliveries) == 0 {
		return fmt.Errorf("embedded: release %s: no deliveries", messageID)
	}
	if err := deliveries.Validate(); err != nil {
		return fmt.Errorf("embedded: release %s: %w", messageID, err)
	}
	if err := checkNotices("release "+messageID, notices); err != nil {
		return err
	}
	now := time.Now().UTC()
	rows, err := deliveryRows(messageID, deliveries, now)
	if err != nil {
		return err
	}
	res := resolution(r)
	id := []byte(messageID)
	var outcome error
	err = s.batch.do(func(tx *bolt.Tx) error {
		h, oc, err := heldHold(tx, messageID)
		if outcome = oc; h == nil {
			return err
		}
		m, err := getMsg(tx, messageID)
		if err != nil {
			return fmt.Errorf("held message lost its record: %w", err)
		}
		if m.Deliveries != 0 || tx.Bucket(bucketOpen).Get(id) != nil {
			return fmt.Errorf("held message %s already has deliveries", messageID)
		}
		m.Deliveries = len(rows)
		if err := putJSON(tx.Bucket(bucketMessages), messageID, m); err != nil {
			return err
		}
		if err := s.putDeliveries(tx, id, rows); err != nil {
			return err
		}
		if _, err := putNotices(tx, notices, now); err != nil {
			return err
		}
		h.State, h.Resolution = store.HoldReleased, res
		return putHold(tx, h)
	})
	if err != nil {
		return ioErr("release "+messageID, err)
	}
	if outcome != nil {
		return fmt.Errorf("embedded: release: %w", outcome)
	}
	return nil
}

// Discard moves a held message to state (deleted or expired) and removes
// its message record and body; the hold record stays, so Hold and Holds
// still show it, while Open and Message report store.ErrNotFound.
func (s *Store) Discard(ctx context.Context, messageID string, state store.HoldState, r store.Resolution, notices ...store.NewNotification) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	if state != store.HoldDeleted && state != store.HoldExpired {
		return fmt.Errorf("embedded: discard %s: state must be %s or %s, not %q", messageID, store.HoldDeleted, store.HoldExpired, state)
	}
	if err := checkNotices("discard "+messageID, notices); err != nil {
		return err
	}
	res := resolution(r)
	var outcome error
	err := s.batch.do(func(tx *bolt.Tx) error {
		h, oc, err := heldHold(tx, messageID)
		if outcome = oc; h == nil {
			return err
		}
		if _, err := putNotices(tx, notices, time.Now().UTC().Round(0)); err != nil {
			return err
		}
		bodyFile := ""
		if tx.Bucket(bucketFiles).Get([]byte(messageID)) != nil {
			bodyFile = filepath.Join(s.spoolDir, messageID)
		}
		if err := deleteMessage(tx, messageID); err != nil {
			return err
		}
		h.State, h.Resolution = state, res
		if err := putHold(tx, h); err != nil {
			return err
		}
		if bodyFile != "" {
			// As in collection: the record is gone, then the file. A
			// crash in between leaves an orphan that Open removes.
			tx.OnCommit(func() { s.removeBody(bodyFile) })
		}
		return nil
	})
	if err != nil {
		return ioErr("discard "+messageID, err)
	}
	if outcome != nil {
		return fmt.Errorf("embedded: discard: %w", outcome)
	}
	return nil
}

// HoldStats counts held messages by rule and returns the ReceivedAt of the
// oldest (zero if none), from the index alone.
func (s *Store) HoldStats(ctx context.Context) (map[string]int, time.Time, error) {
	if err := s.enter(); err != nil {
		return nil, time.Time{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, time.Time{}, err
	}
	counts := map[string]int{}
	var oldest time.Time
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHoldIndex).ForEach(func(k, v []byte) error {
			e, err := decodeHoldEntry(v)
			if err != nil {
				return fmt.Errorf("hold %s: %w", k[8:], err)
			}
			if e.state != store.HoldHeld {
				return nil
			}
			if oldest.IsZero() { // keys are in time order
				oldest, _ = splitTimeKey(k)
			}
			counts[e.rule]++
			return nil
		})
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("embedded: hold stats: %w", err)
	}
	return counts, oldest, nil
}

func auditKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// AddAudit appends e to the audit log, durably. A zero ID is the next
// one; an ID given must be above every ID stored, so IDs keep increasing
// in the order entries are appended. A zero At is now.
func (s *Store) AddAudit(ctx context.Context, e store.AuditEntry) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	if e.ID < 0 {
		return fmt.Errorf("embedded: add audit: negative ID %d", e.ID)
	}
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	e.At = e.At.Round(0)
	var outcome error
	err := s.batch.do(func(tx *bolt.Tx) error {
		outcome = nil
		b := tx.Bucket(bucketAudit)
		ent := e
		if ent.ID == 0 {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			ent.ID = int64(seq)
		} else {
			if uint64(ent.ID) <= b.Sequence() {
				outcome = fmt.Errorf("ID %d is not above the last one, %d", ent.ID, b.Sequence())
				return nil
			}
			if err := b.SetSequence(uint64(ent.ID)); err != nil {
				return err
			}
		}
		val, err := json.Marshal(&ent)
		if err != nil {
			return err
		}
		return b.Put(auditKey(uint64(ent.ID)), val)
	})
	if err != nil {
		return ioErr("add audit", err)
	}
	if outcome != nil {
		return fmt.Errorf("embedded: add audit: %w", outcome)
	}
	return nil
}

// Audit lists audit entries matching f, newest (highest ID) first. It
// walks the log backwards and stops once the page is full.
func (s *Store) Audit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	offset, limit := page(f.Offset, f.Limit)
	out := []store.AuditEntry{}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		skipped := 0
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var e store.AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("audit entry %x: corrupt record: %w", k, err)
			}
			if f.Actor != "" && e.Actor != f.Actor || f.Target != "" && e.Target != f.Target ||
				!f.Since.IsZero() && e.At.Before(f.Since) {
				continue
			}
			if skipped < offset {
				skipped++
				continue
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: audit: %w", err)
	}
	return out, nil
}
