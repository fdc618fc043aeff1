package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bccguard/bccguard/relay/store"
)

// The queue administration of store.QueueAdmin. Held deliveries are in
// state held, outside the partial indexes that Claim, NextDue and Stats
// read, so nothing picks them up until they are released.

var _ store.QueueAdmin = (*Store)(nil)

// sqlQueueChange runs the UPDATE in %s on the deliveries of message $1
// that still has deliveries, and says whether the message exists (its
// deliveries count, NULL if not) and how many rows changed.
const sqlQueueChange = `
WITH m AS (SELECT deliveries FROM messages WHERE id = $1),
u AS (%s AND EXISTS (SELECT 1 FROM m WHERE m.deliveries > 0) RETURNING 1)
SELECT (SELECT deliveries FROM m), (SELECT count(*) FROM u)`

// heldForNow is the SQL of held_for_us after a hold that ends at $2.
const heldForNow = `held_for_us + CASE WHEN held_since IS NULL OR held_since > $2 THEN 0
	ELSE (extract(epoch FROM $2 - held_since) * 1000000)::bigint END`

// The changes of HoldQueued, ReleaseQueued and Requeue.
var (
	sqlHold = fmt.Sprintf(sqlQueueChange, `
		UPDATE deliveries SET state = 'held', held_since = $2
		WHERE message_id = $1 AND state IN ('queued', 'deferred')`)
	sqlRelease = fmt.Sprintf(sqlQueueChange, `
		UPDATE deliveries SET state = 'queued', next_attempt = $2, held_for_us = `+heldForNow+`, held_since = NULL
		WHERE message_id = $1 AND state = 'held'`)
	sqlRequeue = fmt.Sprintf(sqlQueueChange, `
		UPDATE deliveries SET state = 'queued', next_attempt = $2, attempts = 0,
			held_for_us = CASE WHEN state = 'held' THEN `+heldForNow+` ELSE held_for_us END, held_since = NULL
		WHERE message_id = $1 AND state IN ('queued', 'deferred', 'held')`)
)

func (s *Store) queueChange(ctx context.Context, op, sql, id string, now time.Time) (int, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.leave()
	if now.IsZero() {
		now = time.Now()
	}
	var (
		deliveries *int
		changed    int
	)
	if err := s.pool.QueryRow(ctx, sql, text(id), dbTime(now)).Scan(&deliveries, &changed); err != nil {
		return 0, pgErr(op, err)
	}
	switch {
	case deliveries == nil:
		return 0, fmt.Errorf("postgres: %s: message %s: %w", op, id, store.ErrNotFound)
	case *deliveries == 0:
		return 0, fmt.Errorf("postgres: %s: message %s: %w", op, id, store.ErrNotQueued)
	}
	return changed, nil
}

// HoldQueued puts the message's queued and deferred deliveries on hold.
func (s *Store) HoldQueued(ctx context.Context, id string, now time.Time) (int, error) {
	return s.queueChange(ctx, "hold", sqlHold, id, now)
}

// ReleaseQueued makes the message's held deliveries due at now.
func (s *Store) ReleaseQueued(ctx context.Context, id string, now time.Time) (int, error) {
	return s.queueChange(ctx, "release", sqlRelease, id, now)
}

// Requeue starts every unfinished delivery of the message over, due now.
func (s *Store) Requeue(ctx context.Context, id string, now time.Time) (int, error) {
	return s.queueChange(ctx, "requeue", sqlRequeue, id, now)
}

// DeleteQueued removes the message with its deliveries and body, and
// returns the deliveries that were not final.
//
// It locks the delivery rows first, then the message row: the order in
// which Complete takes them (its UPDATE, then sqlLockMessage), so the two
// never deadlock; a final outcome committed first is seen as final here,
// and one that comes after finds its delivery gone (ErrNotFound).
func (s *Store) DeleteQueued(ctx context.Context, id string) ([]store.Delivery, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	var out []store.Delivery
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		out = out[:0]
		rows, err := tx.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE message_id = $1
			ORDER BY created_at, seq FOR UPDATE`, text(id))
		if err != nil {
			return err
		}
		for rows.Next() {
			d, err := scanDelivery(rows)
			if err != nil {
				rows.Close()
				return err
			}
			if d.State.Unfinished() {
				out = append(out, d)
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		var deliveries int
		err = tx.QueryRow(ctx, `SELECT deliveries FROM messages WHERE id = $1 FOR UPDATE`, text(id)).Scan(&deliveries)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("message %s: %w", id, store.ErrNotFound)
		case err != nil:
			return err
		case deliveries == 0:
			return fmt.Errorf("message %s: %w", id, store.ErrNotQueued)
		}
		// The deliveries and body rows go with it (ON DELETE CASCADE).
		_, err = tx.Exec(ctx, `DELETE FROM messages WHERE id = $1`, text(id))
		return err
	})
	if err != nil {
		return nil, pgErr("delete", err)
	}
	return out, nil
}

// QueuedMessages returns the IDs of messages with an unfinished delivery
// matching f, oldest first.
func (s *Store) QueuedMessages(ctx context.Context, f store.QueueFilter) ([]string, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	limit := f.Limit
	if limit <= 0 {
		limit = store.DefaultQueueMatchLimit
	}
	states := []string{string(store.StateQueued), string(store.StateDeferred), string(store.StateHeld)}
	if len(f.States) > 0 {
		states = states[:0]
		for _, st := range f.States {
			states = append(states, string(st))
		}
	}
	var c conds
	c.literal(`m.deliveries > 0`)
	c.add(`EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.state = ANY($%d))`, states)
	switch {
	case f.NullSender:
		c.literal(`(m.record->'envelope'->>'sender') = ''`)
	case f.Sender != "":
		c.add(`lower(m.record->'envelope'->>'sender') = $%d`, strings.ToLower(text(f.Sender)))
	}
	c.args = append(c.args, limit)
	rows, err := s.pool.Query(ctx, `SELECT m.id FROM messages m`+c.where()+
		fmt.Sprintf(` ORDER BY m.received_at, m.id LIMIT $%d`, len(c.args)), c.args...)
	if err != nil {
		return nil, pgErr("queued messages", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids, pgErr("queued messages", err)
}
