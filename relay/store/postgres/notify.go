package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bccguard/bccguard/relay/store"
)

// The notification outbox (store.NotificationStore), in the notifications
// table (migrations/0003_notifications.sql). Work is shared between
// replicas as for deliveries: a claim takes due rows with FOR UPDATE SKIP
// LOCKED and writes its lease; a row whose lease has passed is claimable
// again; Close frees this instance's leases.

var _ store.NotificationStore = (*Store)(nil)

// sqlInsertNotices queues the notifications of a JSON array of
// store.NewNotification, due at $1, in their order; a taken key is
// skipped. One statement whatever their number.
const sqlInsertNotices = `INSERT INTO notifications (key, channel, event, message_id, payload, state, created_at, next_attempt)
	SELECT n.value ->> 'key', n.value ->> 'channel', n.value ->> 'event', coalesce(n.value ->> 'message_id', ''),
		n.value -> 'payload', 'pending', $1, $1
	FROM json_array_elements($2::json) WITH ORDINALITY AS n (value, ord)
	ORDER BY n.ord
	ON CONFLICT (key) DO NOTHING`

// encodeNotices checks notifications and encodes them for
// sqlInsertNotices; nil when there are none.
func encodeNotices(op string, ns []store.NewNotification) ([]byte, error) {
	if len(ns) == 0 {
		return nil, nil
	}
	for i, n := range ns {
		if n.Key == "" || n.Channel == "" || n.Event == "" {
			return nil, fmt.Errorf("postgres: %s: notification %d needs a key, a channel and an event", op, i+1)
		}
		if !json.Valid(n.Payload) {
			return nil, fmt.Errorf("postgres: %s: notification %d: payload is not JSON", op, i+1)
		}
	}
	b, err := json.Marshal(ns)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: encode notifications: %w", op, err)
	}
	return b, nil
}

// QueueNotifications queues notifications on their own, in one statement.
func (s *Store) QueueNotifications(ctx context.Context, ns []store.NewNotification) (int, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.leave()
	b, err := encodeNotices("queue notifications", ns)
	if err != nil || b == nil {
		return 0, err
	}
	tag, err := s.pool.Exec(ctx, sqlInsertNotices, dbTime(time.Now()), b)
	if err != nil {
		return 0, pgErr("queue notifications", err)
	}
	return int(tag.RowsAffected()), nil
}

const noticeColumns = `id, key, channel, event, message_id, payload, state, attempts, created_at, next_attempt, done_at, last_error`

func scanNotice(row pgx.Row) (store.Notification, error) {
	var (
		n       store.Notification
		id      int64
		payload []byte
		done    *time.Time
	)
	if err := row.Scan(&id, &n.Key, &n.Channel, &n.Event, &n.MessageID, &payload, &n.State, &n.Attempts,
		&n.CreatedAt, &n.NextAttempt, &done, &n.LastError); err != nil {
		return n, err
	}
	n.ID = strconv.FormatInt(id, 10)
	n.Payload = json.RawMessage(payload)
	n.CreatedAt, n.NextAttempt = n.CreatedAt.UTC(), n.NextAttempt.UTC()
	if done != nil {
		n.DoneAt = done.UTC()
	}
	return n, nil
}

// noticeID parses a notification ID; anything else is not found.
func noticeID(id string) (int64, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("notification %q: %w", id, store.ErrNotFound)
	}
	return n, nil
}

// sqlClaimNotices leases up to $2 due notifications to $3 until $4.
const sqlClaimNotices = `
WITH due AS (
	SELECT id FROM notifications
	WHERE state = 'pending' AND next_attempt <= $1 AND (leased_until IS NULL OR leased_until <= $1)
	ORDER BY next_attempt, id
	LIMIT $2
	FOR UPDATE SKIP LOCKED
)
UPDATE notifications n SET lease_owner = $3, leased_until = $4, lease_session = $5
FROM due WHERE n.id = due.id
RETURNING n.id, n.key, n.channel, n.event, n.message_id, n.payload, n.state, n.attempts, n.created_at, n.next_attempt, n.done_at, n.last_error`

// ClaimNotifications leases up to limit due notifications to owner.
func (s *Store) ClaimNotifications(ctx context.Context, owner string, now time.Time, limit int, lease time.Duration) ([]store.ClaimedNotification, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	if limit <= 0 {
		return nil, nil
	}
	if lease <= 0 {
		return nil, fmt.Errorf("postgres: claim notifications: lease must be positive, got %v", lease)
	}
	if now.IsZero() {
		now = time.Now()
	}
	now = dbTime(now)
	until := dbTime(now.Add(lease))
	rows, err := s.pool.Query(ctx, sqlClaimNotices, now, limit, text(owner), until, s.session)
	if err != nil {
		return nil, pgErr("claim notifications", err)
	}
	defer rows.Close()
	var out []store.ClaimedNotification
	for rows.Next() {
		n, err := scanNotice(rows)
		if err != nil {
			return nil, pgErr("claim notifications", err)
		}
		out = append(out, store.ClaimedNotification{Notification: n, LeaseUntil: until})
	}
	if err := rows.Err(); err != nil {
		return nil, pgErr("claim notifications", err)
	}
	// RETURNING has no order: oldest due first, as the claim chose them.
	sortClaimed(out)
	return out, nil
}

func sortClaimed(cs []store.ClaimedNotification) {
	slices.SortFunc(cs, func(a, b store.ClaimedNotification) int {
		ai, _ := strconv.ParseInt(a.ID, 10, 64)
		bi, _ := strconv.ParseInt(b.ID, 10, 64)
		return cmp.Or(a.NextAttempt.Compare(b.NextAttempt), cmp.Compare(ai, bi))
	})
}

const sqlCompleteNotice = `
	UPDATE notifications SET state = $3::text, attempts = attempts + 1, last_error = $4,
		next_attempt = CASE WHEN $3 = 'pending' THEN $5::timestamptz ELSE next_attempt END,
		done_at = CASE WHEN $3 = 'pending' THEN NULL ELSE $6::timestamptz END,
		lease_owner = NULL, leased_until = NULL, lease_session = NULL
	WHERE id = $1 AND lease_owner = $2 AND state = 'pending'`

// CompleteNotification records an attempt's outcome; it succeeds only for
// the row's current lease owner.
func (s *Store) CompleteNotification(ctx context.Context, owner, id string, out store.NotificationOutcome) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	switch out.State {
	case store.NotificationPending, store.NotificationSent, store.NotificationFailed:
	default:
		return fmt.Errorf("postgres: complete notification %s: %q is not an outcome", id, out.State)
	}
	n, err := noticeID(id)
	if err != nil {
		return fmt.Errorf("postgres: complete: %w", err)
	}
	now := dbTime(time.Now())
	next := dbTime(out.NextAttempt)
	if out.NextAttempt.IsZero() {
		next = now
	}
	tag, err := s.pool.Exec(ctx, sqlCompleteNotice, n, text(owner), string(out.State), text(out.Error), next, now)
	if err != nil {
		return pgErr("complete notification "+id, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM notifications WHERE id = $1)`, n).Scan(&exists); err != nil {
		return pgErr("complete notification "+id, err)
	}
	if !exists {
		return fmt.Errorf("postgres: complete: notification %s: %w", id, store.ErrNotFound)
	}
	return fmt.Errorf("postgres: complete: notification %s: %w", id, store.ErrLeaseLost)
}

// sqlNextNoticeDue is sqlNextDue for the outbox.
const sqlNextNoticeDue = `
SELECT min(CASE WHEN leased_until > $1 THEN greatest(leased_until, next_attempt) ELSE next_attempt END)
FROM notifications
WHERE state = 'pending' AND next_attempt <= coalesce((
	SELECT next_attempt FROM notifications
	WHERE state = 'pending' AND (leased_until IS NULL OR leased_until <= $1)
	ORDER BY next_attempt LIMIT 1), 'infinity')`

// NextNotificationDue returns the earliest time ClaimNotifications can
// return something.
func (s *Store) NextNotificationDue(ctx context.Context) (time.Time, bool, error) {
	if err := s.enter(ctx); err != nil {
		return time.Time{}, false, err
	}
	defer s.leave()
	var at *time.Time
	if err := s.pool.QueryRow(ctx, sqlNextNoticeDue, dbTime(time.Now())).Scan(&at); err != nil {
		return time.Time{}, false, pgErr("next notification due", err)
	}
	if at == nil {
		return time.Time{}, false, nil
	}
	return at.UTC(), true, nil
}

// Notifications lists notifications matching f, in the order they were
// queued.
func (s *Store) Notifications(ctx context.Context, f store.NotificationFilter) ([]store.Notification, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	var c conds
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, st := range f.States {
			states[i] = string(st)
		}
		c.add("state = ANY($%d)", states)
	}
	if f.Channel != "" {
		c.add("channel = $%d", text(f.Channel))
	}
	if f.MessageID != "" {
		c.add("message_id = $%d", text(f.MessageID))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	args := append(c.args, limit)
	rows, err := s.pool.Query(ctx, `SELECT `+noticeColumns+` FROM notifications`+c.where()+
		fmt.Sprintf(` ORDER BY id LIMIT $%d`, len(args)), args...)
	if err != nil {
		return nil, pgErr("notifications", err)
	}
	defer rows.Close()
	var out []store.Notification
	for rows.Next() {
		n, err := scanNotice(rows)
		if err != nil {
			return nil, pgErr("notifications", err)
		}
		out = append(out, n)
	}
	return out, pgErr("notifications", rows.Err())
}

// PendingNotifications counts pending notifications by channel.
func (s *Store) PendingNotifications(ctx context.Context) (map[string]int, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	rows, err := s.pool.Query(ctx, `SELECT channel, count(*) FROM notifications WHERE state = 'pending' GROUP BY channel`)
	if err != nil {
		return nil, pgErr("pending notifications", err)
	}
	counts := map[string]int{}
	var (
		ch string
		n  int
	)
	_, err = pgx.ForEachRow(rows, []any{&ch, &n}, func() error { counts[ch] = n; return nil })
	if err != nil {
		return nil, pgErr("pending notifications", err)
	}
	return counts, nil
}

// PurgeNotifications deletes final notifications done before before.
func (s *Store) PurgeNotifications(ctx context.Context, before time.Time) (int, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.leave()
	tag, err := s.pool.Exec(ctx, `DELETE FROM notifications WHERE state <> 'pending' AND done_at < $1`, dbTime(before))
	if err != nil {
		return 0, pgErr("purge notifications", err)
	}
	return int(tag.RowsAffected()), nil
}

// freeNoticeLeases hands back the outbox leases of this instance (Close).
func (s *Store) freeNoticeLeases(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE notifications SET lease_owner = NULL, leased_until = NULL, lease_session = NULL
		WHERE state = 'pending' AND lease_session = $1`, s.session)
	return err
}

// queueNotices queues encoded notifications inside tx (see
// encodeNotices); it does nothing for none.
func queueNotices(ctx context.Context, tx pgx.Tx, encoded []byte, now time.Time) error {
	if encoded == nil {
		return nil
	}
	_, err := tx.Exec(ctx, sqlInsertNotices, now, encoded)
	return err
}
