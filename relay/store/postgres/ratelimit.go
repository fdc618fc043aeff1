package postgres

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bccguard/bccguard/relay/store"
)

// Rate limit counts are rows of rate_counts, shared by every replica: a
// check and its additions are one call of bccguard_rate_take (migration
// 0002), one round trip that serialises each scope under an advisory lock,
// so N messages per window are N across all replicas. Counts commit with
// synchronous_commit off: a database crash may lose the counts of its
// last moment (never a message), and a check does not wait for a flush.

var _ store.RateCounter = (*Store)(nil)

// rateSweepEvery is how often a replica deletes the slots that have left
// their windows (in the round trip of a TakeRate).
const rateSweepEvery = time.Minute

// lastRateSweep is the Unix nanoseconds of this process's last sweep.
var lastRateSweep atomic.Int64

// scopeName tells scopes of different windows apart in one column.
func scopeName(q store.RateRequest) string {
	return q.Window.String() + "/" + text(q.Scope)
}

// rateArgs are bccguard_rate_take's arrays for reqs at now.
func rateArgs(now time.Time, reqs []store.RateRequest) []any {
	n := len(reqs)
	var (
		scopes          = make([]string, n)
		slots, firsts   = make([]int64, n), make([]int64, n)
		expires         = make([]time.Time, n)
		msgs, rcpts     = make([]int64, n), make([]int64, n)
		maxMsg, maxRcpt = make([]int64, n), make([]int64, n)
	)
	for i, q := range reqs {
		scopes[i] = scopeName(q)
		slots[i] = store.RateSlot(now, q.Window)
		firsts[i] = slots[i] - store.RateSlots
		slotLen := max(q.Window/store.RateSlots, 1)
		expires[i] = dbTime(time.Unix(0, 0).Add(time.Duration(slots[i]+1)*slotLen + q.Window))
		msgs[i], rcpts[i] = q.Messages, q.Recipients
		maxMsg[i], maxRcpt[i] = q.MaxMessages, q.MaxRecipients
	}
	return []any{scopes, slots, firsts, expires, msgs, rcpts, maxMsg, maxRcpt}
}

// TakeRate checks and adds reqs at now, all or nothing, for every replica.
func (s *Store) TakeRate(ctx context.Context, now time.Time, reqs []store.RateRequest) (store.RateResult, error) {
	if err := s.enter(ctx); err != nil {
		return store.RateResult{}, err
	}
	defer s.leave()
	res := store.RateResult{Taken: true, Counts: make([]store.RateCount, 0, len(reqs)), Over: make([]bool, 0, len(reqs))}
	if len(reqs) == 0 {
		return res, nil
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT messages, recipients, over, taken FROM bccguard_rate_take($1, $2, $3, $4, $5, $6, $7, $8)`,
		rateArgs(now, reqs)...).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var c store.RateCount
			var over, taken bool
			if err := rows.Scan(&c.Messages, &c.Recipients, &over, &taken); err != nil {
				return err
			}
			res.Counts = append(res.Counts, c)
			res.Over = append(res.Over, over)
			res.Taken = res.Taken && taken
		}
		return rows.Err()
	})
	if last := lastRateSweep.Load(); now.UnixNano()-last > int64(rateSweepEvery) && lastRateSweep.CompareAndSwap(last, now.UnixNano()) {
		b.Queue(`DELETE FROM rate_counts WHERE expires_at < $1`, dbTime(now))
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return store.RateResult{}, pgErr("take rate", err)
	}
	return res, nil
}

// GiveRate takes back what a TakeRate at at added.
func (s *Store) GiveRate(ctx context.Context, at time.Time, reqs []store.RateRequest) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	if len(reqs) == 0 {
		return nil
	}
	a := rateArgs(at, reqs)
	// One implicit transaction, committed without waiting for the WAL
	// flush, as bccguard_rate_take does.
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('synchronous_commit', 'off', true)`)
	b.Queue(`
		UPDATE rate_counts c SET messages = greatest(c.messages - g.m, 0), recipients = greatest(c.recipients - g.r, 0)
		FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS g(scope, slot, m, r)
		WHERE c.scope = g.scope AND c.slot = g.slot`, a[0], a[1], a[4], a[5])
	return pgErr("give rate", s.pool.SendBatch(ctx, b).Close())
}
