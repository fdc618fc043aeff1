package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bccguard/bccguard/relay/store"
)

// DefaultListLimit is how many deliveries List returns when Filter.Limit is
// 0, as in the embedded store.
const DefaultListLimit = 1000

// deliveryColumns are the columns scanDelivery reads, in its order.
const deliveryColumns = `message_id, seq, recipients, rewrite, state, attempts, created_at, next_attempt, last_error, held_since, held_for_us`

func scanDelivery(row pgx.Row, extra ...any) (store.Delivery, error) {
	var (
		d         store.Delivery
		seq       int
		recips    []byte
		heldSince *time.Time
		heldFor   int64
	)
	dest := append([]any{&d.MessageID, &seq, &recips, &d.Rewrite, &d.State, &d.Attempts, &d.CreatedAt, &d.NextAttempt, &d.LastError,
		&heldSince, &heldFor}, extra...)
	if err := row.Scan(dest...); err != nil {
		return d, err
	}
	d.ID = deliveryID(d.MessageID, seq)
	d.CreatedAt, d.NextAttempt = d.CreatedAt.UTC(), d.NextAttempt.UTC()
	if heldSince != nil {
		d.HeldSince = heldSince.UTC()
	}
	d.HeldFor = time.Duration(heldFor) * time.Microsecond
	if err := json.Unmarshal(recips, &d.Recipients); err != nil {
		return d, fmt.Errorf("delivery %s: corrupt recipients: %w", d.ID, err)
	}
	return d, nil
}

func decodeMessage(id string, record []byte, size int64) (store.Message, error) {
	var m store.Message
	if err := json.Unmarshal(record, &m); err != nil {
		return m, fmt.Errorf("postgres: message %s: corrupt record: %w", id, err)
	}
	m.ID, m.Size = id, size
	return m, nil
}

// sqlClaim leases up to $2 due deliveries to $3 until $4, oldest-due
// first. SKIP LOCKED passes over rows another replica is claiming or
// completing right now; a row whose Complete committed after this
// statement's snapshot is re-read under the lock and dropped if it is no
// longer due, so a claim never acts on a state older than a released
// lease. The message record comes once per message, not once per delivery
// (an envelope can have a thousand recipients).
const sqlClaim = `
WITH due AS (
	SELECT message_id, seq FROM deliveries
	WHERE state IN ('queued', 'deferred') AND next_attempt <= $1
		AND (leased_until IS NULL OR leased_until <= $1)
	ORDER BY next_attempt, message_id, seq
	LIMIT $2
	FOR UPDATE SKIP LOCKED
), claimed AS (
	UPDATE deliveries d SET lease_owner = $3, leased_until = $4, lease_session = $5
	FROM due WHERE d.message_id = due.message_id AND d.seq = due.seq
	RETURNING d.message_id, d.seq, d.recipients, d.rewrite, d.state, d.attempts, d.created_at, d.next_attempt, d.last_error,
		d.held_since, d.held_for_us
)
SELECT c.*, m.size,
	CASE WHEN row_number() OVER (PARTITION BY c.message_id ORDER BY c.seq) = 1 THEN m.record END
FROM claimed c JOIN messages m ON m.id = c.message_id
ORDER BY c.next_attempt, c.message_id, c.seq`

// Claim leases up to limit deliveries due at now to owner for lease.
func (s *Store) Claim(ctx context.Context, owner string, now time.Time, limit int, lease time.Duration) ([]store.Claimed, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	if limit <= 0 {
		return nil, nil
	}
	if lease <= 0 {
		return nil, fmt.Errorf("postgres: claim: lease must be positive, got %v", lease)
	}
	if now.IsZero() {
		now = time.Now()
	}
	now = dbTime(now)
	until := dbTime(now.Add(lease))
	rows, err := s.pool.Query(ctx, sqlClaim, now, limit, text(owner), until, s.session)
	if err != nil {
		return nil, pgErr("claim", err)
	}
	defer rows.Close()
	var (
		out  []store.Claimed
		msgs = map[string]store.Message{}
	)
	for rows.Next() {
		var (
			size   int64
			record []byte
		)
		d, err := scanDelivery(rows, &size, &record)
		if err != nil {
			return nil, pgErr("claim", err)
		}
		if record != nil {
			m, err := decodeMessage(d.MessageID, record, size)
			if err != nil {
				return nil, err
			}
			msgs[d.MessageID] = m
		}
		out = append(out, store.Claimed{Delivery: d, LeaseUntil: until})
	}
	if err := rows.Err(); err != nil {
		return nil, pgErr("claim", err)
	}
	for i := range out {
		m, ok := msgs[out[i].Delivery.MessageID]
		if !ok {
			return nil, fmt.Errorf("postgres: claim: no record of message %s", out[i].Delivery.MessageID)
		}
		out[i].Message = m
	}
	return out, nil
}

// Complete records an attempt's outcome and releases the lease.
//
// It succeeds only while owner holds the delivery's lease: one that was
// taken over after it expired (by another replica, or after a restart) is
// refused with store.ErrLeaseLost. A lease that expired but was not taken
// over is still honoured: the attempt happened, and recording it avoids a
// needless repeat.
//
// A final outcome on the last pending delivery of a message deletes the
// message (record, body, deliveries) in the same transaction; no tombstone
// is kept, so a DSN must be built from the Claimed message before
// Complete. See sqlCollect for how two last deliveries completing at once
// are kept from both thinking the other is still pending.
func (s *Store) Complete(ctx context.Context, owner, deliveryID string, out store.Outcome) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	switch out.State {
	case store.StateDelivered, store.StateDeferred, store.StateBounced, store.StateExpired:
	default:
		return fmt.Errorf("postgres: complete %s: %q is not an outcome", deliveryID, out.State)
	}
	msgID, seq, err := splitDeliveryID(deliveryID)
	if err != nil {
		return fmt.Errorf("postgres: complete: %w", err)
	}
	var recips []byte // nil: keep them
	next := dbTime(out.NextAttempt)
	if out.State == store.StateDeferred {
		if out.Recipients != nil {
			if len(out.Recipients) == 0 {
				return fmt.Errorf("postgres: complete %s: a deferral must keep at least one recipient", deliveryID)
			}
			if recips, err = json.Marshal(out.Recipients); err != nil {
				return fmt.Errorf("postgres: complete %s: %w", deliveryID, err)
			}
		}
		if out.NextAttempt.IsZero() {
			next = dbTime(time.Now())
		}
	}
	// One round trip, one implicit transaction, one commit.
	b := &pgx.Batch{}
	var updated int64
	b.Queue(sqlComplete, msgID, seq, text(owner), string(out.State), text(out.Error), next, recips).
		Exec(func(tag pgconn.CommandTag) error { updated = tag.RowsAffected(); return nil })
	if out.State.Final() {
		b.Queue(sqlLockMessage, msgID)
		b.Queue(sqlCollect, msgID)
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return pgErr("complete "+deliveryID, err)
	}
	if updated == 1 {
		return nil
	}
	// Not ours (and nothing was changed): tell a missing delivery from a
	// lost lease.
	var exists bool
	err = s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM deliveries WHERE message_id = $1 AND seq = $2)`, msgID, seq).Scan(&exists)
	switch {
	case err != nil:
		return pgErr("complete "+deliveryID, err)
	case !exists:
		return fmt.Errorf("postgres: complete: delivery %s: %w", deliveryID, store.ErrNotFound)
	}
	return fmt.Errorf("postgres: complete: delivery %s: %w", deliveryID, store.ErrLeaseLost)
}

// The statements of Complete.
const (
	// A delivery an operator held while the attempt was in flight stays
	// held if the attempt deferred it (admin.go).
	sqlComplete = `
		UPDATE deliveries SET state = CASE WHEN state = 'held' AND $4 = 'deferred' THEN 'held' ELSE $4 END,
			attempts = attempts + 1, last_error = $5,
			next_attempt = CASE WHEN $4 = 'deferred' THEN $6 ELSE next_attempt END,
			recipients = coalesce($7::json, recipients),
			lease_owner = NULL, leased_until = NULL, lease_session = NULL
		WHERE message_id = $1 AND seq = $2 AND lease_owner = $3 AND state IN ('queued', 'deferred', 'held')`
	// sqlLockMessage: final outcomes of one message take its row lock in
	// turn (until their commit), and sqlCollect, a statement of its own,
	// takes its snapshot after the lock is granted. So of two last
	// deliveries completing at once, the second sees the first's commit
	// and deletes the message; without the lock each could see the other
	// still pending and neither would. The lock does not conflict with
	// claims or with the key-share locks of inserts.
	sqlLockMessage = `SELECT 1 FROM messages WHERE id = $1 FOR NO KEY UPDATE`
	sqlCollect     = `
		DELETE FROM messages m WHERE m.id = $1 AND m.deliveries > 0 AND NOT EXISTS (
			SELECT 1 FROM deliveries d WHERE d.message_id = $1 AND d.state IN ('queued', 'deferred', 'held'))`
)

// sqlNextDue: the earliest time Claim can return something. A delivery
// under a live lease counts at the lease's end. Live leases sit at the
// front of the due index (they were due when claimed) and there are at most
// as many as workers, so both scans stop early: the inner one at the first
// unleased delivery, the outer one at that delivery's time.
const sqlNextDue = `
SELECT min(CASE WHEN leased_until > $1 THEN greatest(leased_until, next_attempt) ELSE next_attempt END)
FROM deliveries
WHERE state IN ('queued', 'deferred') AND next_attempt <= coalesce((
	SELECT next_attempt FROM deliveries
	WHERE state IN ('queued', 'deferred') AND (leased_until IS NULL OR leased_until <= $1)
	ORDER BY next_attempt LIMIT 1), 'infinity')`

// NextDue returns the earliest time at which Claim can return something;
// leases are judged by the wall clock.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	if err := s.enter(ctx); err != nil {
		return time.Time{}, false, err
	}
	defer s.leave()
	var at *time.Time
	if err := s.pool.QueryRow(ctx, sqlNextDue, dbTime(time.Now())).Scan(&at); err != nil {
		return time.Time{}, false, pgErr("next due", err)
	}
	if at == nil {
		return time.Time{}, false, nil
	}
	return at.UTC(), true, nil
}

// deliveryWhere turns a filter into a WHERE clause and its arguments.
func deliveryWhere(f store.Filter) (string, []any) {
	var c conds
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		pendingOnly := true
		for i, st := range f.States {
			states[i] = string(st)
			pendingOnly = pendingOnly && (st == store.StateQueued || st == store.StateDeferred)
		}
		if pendingOnly { // lets the planner use the partial indexes
			c.literal(`state IN ('queued', 'deferred')`)
		}
		c.add("state = ANY($%d)", states)
	}
	if f.MessageID != "" {
		c.add("message_id = $%d", f.MessageID)
	}
	return c.where(), c.args
}

// List returns deliveries matching f, oldest first (by creation, then
// message, then number). Deliveries of collected messages are gone.
func (s *Store) List(ctx context.Context, f store.Filter) ([]store.Delivery, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	where, args := deliveryWhere(f)
	args = append(args, limit)
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries`+where+
		fmt.Sprintf(` ORDER BY created_at, message_id, seq LIMIT $%d`, len(args)), args...)
	if err != nil {
		return nil, pgErr("list", err)
	}
	defer rows.Close()
	var out []store.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, pgErr("list", err)
		}
		out = append(out, d)
	}
	return out, pgErr("list", rows.Err())
}

// Flush makes every deferred delivery matching f that is not yet due, due
// at now, and returns how many it changed. f.Limit does not apply.
func (s *Store) Flush(ctx context.Context, f store.Filter, now time.Time) (int, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.leave()
	if len(f.States) > 0 && !slices.Contains(f.States, store.StateDeferred) {
		return 0, nil
	}
	if now.IsZero() {
		now = time.Now()
	}
	args := []any{dbTime(now)}
	sql := `UPDATE deliveries SET next_attempt = $1 WHERE state = 'deferred' AND next_attempt > $1`
	if f.MessageID != "" {
		args = append(args, f.MessageID)
		sql += ` AND message_id = $2`
	}
	tag, err := s.pool.Exec(ctx, sql, args...)
	if err != nil {
		return 0, pgErr("flush", err)
	}
	return int(tag.RowsAffected()), nil
}
