package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bccguard/bccguard/relay/store"
)

// The review side (store.QuarantineStore).
//
// A message committed with a Quarantine gets, in its commit transaction, a
// row in holds beside its ordinary message row and body. The hold keeps its
// own copy of the message record, so it stays complete when the message is
// gone:
//
//   - Release queues the deliveries exactly as Commit would have, in the
//     transaction that moves the hold from held to released. From then on
//     the message is an ordinary queued message, collected when its last
//     delivery is final. The hold stays.
//   - Discard deletes the message row (its body chunks go with it) in the
//     transaction that moves the hold to deleted or expired. The hold
//     stays.
//
// Every state change is an UPDATE ... WHERE state = 'held': of two
// reviewers (on any replicas) acting on one hold, the second waits for the
// first's row lock, then finds the hold no longer held and changes
// nothing: exactly one wins. Approvals take a share lock on the hold, so
// they never land on a hold released at the same time.

// Paging of Holds and Audit, as in the embedded store.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

// page returns a filter's offset and limit, defaulted and capped.
func page(offset, limit int) (int, int) {
	if limit <= 0 {
		limit = DefaultPageLimit
	}
	return max(offset, 0), min(limit, MaxPageLimit)
}

func lower(s string) string { return strings.ToLower(s) }

// holdColumns are the columns scanHold reads, in its order; approvals come
// as three arrays in approval order.
const holdColumns = `h.id, h.state, h.message, h.resolution,
	array(SELECT a.actor FROM hold_approvals a WHERE a.hold_id = h.id ORDER BY a.seq),
	array(SELECT a.at FROM hold_approvals a WHERE a.hold_id = h.id ORDER BY a.seq),
	array(SELECT a.rewrite FROM hold_approvals a WHERE a.hold_id = h.id ORDER BY a.seq)`

func scanHold(row pgx.Row) (store.Hold, error) {
	var (
		h        store.Hold
		id       string
		msg, res []byte
		actors   []string
		ats      []time.Time
		rewrites []string
	)
	if err := row.Scan(&id, &h.State, &msg, &res, &actors, &ats, &rewrites); err != nil {
		return h, err
	}
	if err := json.Unmarshal(msg, &h.Message); err != nil {
		return h, fmt.Errorf("hold %s: corrupt record: %w", id, err)
	}
	h.Message.ID = id
	if res != nil {
		h.Resolution = new(store.Resolution)
		if err := json.Unmarshal(res, h.Resolution); err != nil {
			return h, fmt.Errorf("hold %s: corrupt resolution: %w", id, err)
		}
	}
	for i := range actors {
		h.Approvals = append(h.Approvals, store.Approval{Actor: actors[i], At: ats[i].UTC(), Rewrite: store.Rewrite(rewrites[i])})
	}
	return h, nil
}

// Hold returns one hold.
func (s *Store) Hold(ctx context.Context, messageID string) (store.Hold, error) {
	if err := s.enter(ctx); err != nil {
		return store.Hold{}, err
	}
	defer s.leave()
	return s.hold(ctx, messageID)
}

func (s *Store) hold(ctx context.Context, messageID string) (store.Hold, error) {
	h, err := scanHold(s.pool.QueryRow(ctx, `SELECT `+holdColumns+` FROM holds h WHERE h.id = $1`, messageID))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Hold{}, fmt.Errorf("postgres: hold %s: %w", messageID, store.ErrNotFound)
	}
	if err != nil {
		return store.Hold{}, pgErr("hold", err)
	}
	return h, nil
}

// notHeld explains why an action that needed a held hold changed nothing:
// store.ErrNotFound or store.ErrNotHeld.
func (s *Store) notHeld(ctx context.Context, q querier, op, messageID string) error {
	var state string
	err := q.QueryRow(ctx, `SELECT state FROM holds WHERE id = $1`, messageID).Scan(&state)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("postgres: %s: hold %s: %w", op, messageID, store.ErrNotFound)
	case err != nil:
		return pgErr(op, err)
	}
	return fmt.Errorf("postgres: %s: hold %s is %s: %w", op, messageID, state, store.ErrNotHeld)
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Holds lists holds matching f, newest first (by ReceivedAt, then ID), one
// page of them, with the number of all matches.
func (s *Store) Holds(ctx context.Context, f store.HoldFilter) ([]store.Hold, int, error) {
	if err := s.enter(ctx); err != nil {
		return nil, 0, err
	}
	defer s.leave()
	offset, limit := page(f.Offset, f.Limit)
	var c conds
	add := c.add
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, st := range f.States {
			states[i] = string(st)
		}
		add("h.state = ANY($%d)", states)
	}
	if f.Rule != "" {
		add("h.rule = $%d", text(f.Rule))
	}
	if f.Sender != "" {
		add("h.sender = $%d", text(lower(f.Sender)))
	}
	if f.ClientIP != "" {
		add("h.client_ip = $%d", text(f.ClientIP))
	}
	if f.User != "" {
		add("h.client_user = $%d", text(f.User))
	}
	if !f.HeldBefore.IsZero() {
		add("h.received_at < $%d", dbTime(f.HeldBefore))
	}
	if !f.HeldAfter.IsZero() {
		add("h.received_at > $%d", dbTime(f.HeldAfter))
	}
	where, args := c.where(), c.args
	// The count and the page in one round trip.
	b := &pgx.Batch{}
	var total int
	b.Queue(`SELECT count(*) FROM holds h`+where, args...).QueryRow(func(row pgx.Row) error { return row.Scan(&total) })
	out := []store.Hold{}
	pageArgs := append(args[:len(args):len(args)], offset, limit)
	b.Queue(`SELECT `+holdColumns+` FROM holds h`+where+
		fmt.Sprintf(` ORDER BY h.received_at DESC, h.id DESC OFFSET $%d LIMIT $%d`, len(args)+1, len(args)+2), pageArgs...).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				h, err := scanHold(rows)
				if err != nil {
					return err
				}
				out = append(out, h)
			}
			return rows.Err()
		})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, 0, pgErr("holds", err)
	}
	return out, total, nil
}

// Approve records a's approval on a held message, replacing an earlier
// approval by the same actor, and returns the hold.
func (s *Store) Approve(ctx context.Context, messageID string, a store.Approval, notices ...store.NewNotification) (store.Hold, error) {
	if err := s.enter(ctx); err != nil {
		return store.Hold{}, err
	}
	defer s.leave()
	if err := a.Validate(); err != nil {
		return store.Hold{}, fmt.Errorf("postgres: approve %s: %w", messageID, err)
	}
	if a.At.IsZero() {
		a.At = time.Now()
	}
	enc, err := encodeNotices("approve "+messageID, notices)
	if err != nil {
		return store.Hold{}, err
	}
	var tag pgconn.CommandTag
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		tag, err = tx.Exec(ctx, `
		WITH h AS (SELECT id FROM holds WHERE id = $1 AND state = 'held' FOR SHARE)
		INSERT INTO hold_approvals (hold_id, actor, at, rewrite)
		SELECT id, $2, $3, $4 FROM h
		ON CONFLICT (hold_id, actor) DO UPDATE SET at = excluded.at, rewrite = excluded.rewrite`,
			messageID, text(a.Actor), dbTime(a.At), string(a.Rewrite))
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		return queueNotices(ctx, tx, enc, dbTime(time.Now()))
	})
	if err != nil {
		return store.Hold{}, pgErr("approve "+messageID, err)
	}
	if tag.RowsAffected() == 0 {
		return store.Hold{}, s.notHeld(ctx, s.pool, "approve", messageID)
	}
	return s.hold(ctx, messageID)
}

// resolutionJSON fills in a resolution's time and encodes it.
func resolutionJSON(r store.Resolution) ([]byte, error) {
	if r.At.IsZero() {
		r.At = time.Now()
	}
	r.At = dbTime(r.At)
	return json.Marshal(&r)
}

// Release moves a held message to released and queues deliveries for it,
// in one transaction, as Commit would have queued them. It needs at least
// one delivery, and a plan that Validates.
func (s *Store) Release(ctx context.Context, messageID string, deliveries store.Plan, r store.Resolution, notices ...store.NewNotification) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	if len(deliveries) == 0 {
		return fmt.Errorf("postgres: release %s: no deliveries", messageID)
	}
	if err := deliveries.Validate(); err != nil {
		return fmt.Errorf("postgres: release %s: %w", messageID, err)
	}
	res, err := resolutionJSON(r)
	if err != nil {
		return fmt.Errorf("postgres: release %s: %w", messageID, err)
	}
	ds, err := json.Marshal(deliveries)
	if err != nil {
		return fmt.Errorf("postgres: release %s: %w", messageID, err)
	}
	enc, err := encodeNotices("release "+messageID, notices)
	if err != nil {
		return err
	}
	now := dbTime(time.Now())
	var outcome error
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE holds SET state = 'released', resolution = $2 WHERE id = $1 AND state = 'held'`, messageID, res)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			outcome = s.notHeld(ctx, tx, "release", messageID)
			return nil // nothing changed: committing is rolling back
		}
		tag, err = tx.Exec(ctx, `UPDATE messages SET deliveries = $2 WHERE id = $1 AND deliveries = 0`, messageID, len(deliveries))
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("held message %s has lost its record or already has deliveries", messageID)
		}
		if _, err = tx.Exec(ctx, sqlInsertDeliveries, messageID, now, ds); err != nil {
			return err
		}
		return queueNotices(ctx, tx, enc, now)
	})
	if err != nil {
		return pgErr("release "+messageID, err)
	}
	return outcome
}

// Discard moves a held message to state (deleted or expired) and deletes
// its message row and body; the hold stays, so Hold and Holds still show
// it, while Open and Message report store.ErrNotFound.
func (s *Store) Discard(ctx context.Context, messageID string, state store.HoldState, r store.Resolution, notices ...store.NewNotification) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	if state != store.HoldDeleted && state != store.HoldExpired {
		return fmt.Errorf("postgres: discard %s: state must be %s or %s, not %q", messageID, store.HoldDeleted, store.HoldExpired, state)
	}
	res, err := resolutionJSON(r)
	if err != nil {
		return fmt.Errorf("postgres: discard %s: %w", messageID, err)
	}
	enc, err := encodeNotices("discard "+messageID, notices)
	if err != nil {
		return err
	}
	var outcome error
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE holds SET state = $2, resolution = $3 WHERE id = $1 AND state = 'held'`, messageID, string(state), res)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			outcome = s.notHeld(ctx, tx, "discard", messageID)
			return nil
		}
		if _, err = tx.Exec(ctx, `DELETE FROM messages WHERE id = $1`, messageID); err != nil {
			return err
		}
		return queueNotices(ctx, tx, enc, dbTime(time.Now()))
	})
	if err != nil {
		return pgErr("discard "+messageID, err)
	}
	return outcome
}

// HoldStats counts held messages by rule and returns the ReceivedAt of the
// oldest (zero if none).
func (s *Store) HoldStats(ctx context.Context) (map[string]int, time.Time, error) {
	if err := s.enter(ctx); err != nil {
		return nil, time.Time{}, err
	}
	defer s.leave()
	rows, err := s.pool.Query(ctx, `SELECT rule, count(*), min(received_at) FROM holds WHERE state = 'held' GROUP BY rule`)
	if err != nil {
		return nil, time.Time{}, pgErr("hold stats", err)
	}
	defer rows.Close()
	counts := map[string]int{}
	var oldest time.Time
	for rows.Next() {
		var (
			rule string
			n    int
			at   time.Time
		)
		if err := rows.Scan(&rule, &n, &at); err != nil {
			return nil, time.Time{}, pgErr("hold stats", err)
		}
		counts[rule] = n
		if oldest.IsZero() || at.Before(oldest) {
			oldest = at.UTC()
		}
	}
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, pgErr("hold stats", err)
	}
	return counts, oldest, nil
}

// sqlAuditLock serialises appends to the audit log until their commit, so
// IDs, taken from the sequence under the lock, increase in commit order: a
// reader never sees an entry appear below one it has already seen.
const sqlAuditLock = `SELECT pg_advisory_xact_lock($1, ` + schemaKey + `)`

const sqlInsertAudit = `INSERT INTO audit_log (id, at, actor, action, target, outcome, detail)
	VALUES (%s, $1, $2, $3, $4, $5, $6)`

// AddAudit appends e to the audit log, durably. A zero ID is the next one;
// an ID given must be above every ID stored. A zero At is now.
func (s *Store) AddAudit(ctx context.Context, e store.AuditEntry) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	if e.ID < 0 {
		return fmt.Errorf("postgres: add audit: negative ID %d", e.ID)
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	args := []any{dbTime(e.At), text(e.Actor), text(e.Action), text(e.Target), text(e.Outcome), text(e.Detail)}
	if e.ID == 0 {
		// One round trip: the lock and the insert in one implicit
		// transaction, which releases the lock when it commits.
		b := &pgx.Batch{}
		b.Queue(sqlAuditLock, lockAudit)
		b.Queue(fmt.Sprintf(sqlInsertAudit, `nextval('audit_log_id_seq')`), args...)
		return pgErr("add audit", s.pool.SendBatch(ctx, b).Close())
	}
	var outcome error
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlAuditLock, lockAudit); err != nil {
			return err
		}
		var last int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM audit_log`).Scan(&last); err != nil {
			return err
		}
		if e.ID <= last {
			outcome = fmt.Errorf("postgres: add audit: ID %d is not above the last one, %d", e.ID, last)
			return nil
		}
		if _, err := tx.Exec(ctx, `SELECT setval('audit_log_id_seq', $1)`, e.ID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, fmt.Sprintf(sqlInsertAudit, `$7`), append(args, e.ID)...)
		return err
	})
	if err != nil {
		return pgErr("add audit", err)
	}
	return outcome
}

// Audit lists audit entries matching f, newest (highest ID) first.
func (s *Store) Audit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	offset, limit := page(f.Offset, f.Limit)
	var c conds
	add := c.add
	if f.Actor != "" {
		add("actor = $%d", text(f.Actor))
	}
	if f.Target != "" {
		add("target = $%d", text(f.Target))
	}
	if !f.Since.IsZero() {
		add("at >= $%d", dbTime(f.Since))
	}
	where, args := c.where(), c.args
	args = append(args, offset, limit)
	rows, err := s.pool.Query(ctx, `SELECT id, at, actor, action, target, outcome, detail FROM audit_log`+where+
		fmt.Sprintf(` ORDER BY id DESC OFFSET $%d LIMIT $%d`, len(args)-1, len(args)), args...)
	if err != nil {
		return nil, pgErr("audit", err)
	}
	defer rows.Close()
	out := []store.AuditEntry{}
	for rows.Next() {
		var e store.AuditEntry
		if err := rows.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Target, &e.Outcome, &e.Detail); err != nil {
			return nil, pgErr("audit", err)
		}
		e.At = e.At.UTC()
		out = append(out, e)
	}
	return out, pgErr("audit", rows.Err())
}
