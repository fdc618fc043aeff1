package deliver

import (
	"context"
	"time"

	"github.com/bccguard/bccguard/relay/store"
)

// leaseFor is how long a claimed delivery is reserved for its worker. It is
// longer than any single attempt can take (connect + command timeouts), so
// a live worker never loses it; a dead one's work is taken over after it.
const leaseFor = 15 * time.Minute

// pollEvery bounds how long the dispatcher sleeps without a wake-up, so work
// queued by another process sharing the store is picked up.
const pollEvery = 5 * time.Second

// perWorker is how many due deliveries a worker is handed at once. They
// go out one after the other on its connection; taking several per claim
// keeps the dispatcher's claims (each a read transaction and a walk past
// the leased deliveries at the head of the queue) to a few per batch of
// copies instead of one per copy, while one worker never sits on more
// than a few copies the others could send.
const perWorker = 8

// dispatch claims due deliveries for the free workers, a share each, and
// sleeps until more are due.
func (d *Deliverer) dispatch(ctx context.Context) {
	defer d.wg.Done()
	for {
		// Wait for one free worker, then take every other free one.
		select {
		case <-ctx.Done():
			return
		case <-d.tokens:
		}
		free := 1
	more:
		for {
			select {
			case <-d.tokens:
				free++
			default:
				break more
			}
		}
		at := time.Now()
		claimed, err := d.store.Claim(ctx, d.owner, at, free*perWorker, leaseFor)
		if err != nil && ctx.Err() == nil {
			d.log.Error("claim failed", "err", err)
		}
		// Contiguous shares, so a message's copies mostly go together.
		parts := share(claimed, free)
		for i, job := range parts {
			select {
			case d.jobs <- workShare{jobs: job, claimedAt: at}:
				free--
			case <-ctx.Done():
				for _, rest := range parts[i:] {
					d.release(rest)
				}
				return
			}
		}
		for range free {
			d.tokens <- struct{}{}
		}
		if len(claimed) > 0 && err == nil {
			continue
		}
		d.sleep(ctx)
	}
}

// workShare is what one worker is handed: deliveries claimed at claimedAt.
type workShare struct {
	jobs      []store.Claimed
	claimedAt time.Time
}

// stale reports whether job has used up half of its lease waiting in its
// share (a slow upstream): attempting it could outlast the lease, after
// which another worker may take it and send it twice.
func (w workShare) stale(job store.Claimed, now time.Time) bool {
	return now.Sub(w.claimedAt) > job.LeaseUntil.Sub(w.claimedAt)/2
}

// share cuts claimed into at most n contiguous parts of nearly equal size.
func share(claimed []store.Claimed, n int) [][]store.Claimed {
	n = min(n, len(claimed))
	parts := make([][]store.Claimed, 0, n)
	for i := range n {
		lo, hi := i*len(claimed)/n, (i+1)*len(claimed)/n
		parts = append(parts, claimed[lo:hi])
	}
	return parts
}

// release gives back deliveries that were claimed but not attempted (at
// shutdown, or from a share that took half their lease): they are recorded
// as due now, so another worker, another instance sharing the store, or
// this one after a restart takes them at once instead of after their
// lease (the attempt counter still goes up by one).
func (d *Deliverer) release(jobs []store.Claimed) {
	for _, j := range jobs {
		out := store.Outcome{State: store.StateDeferred, NextAttempt: time.Now(), Error: j.Delivery.LastError}
		if err := d.store.Complete(context.Background(), d.owner, j.Delivery.ID, out); err != nil {
			d.log.Warn("could not release a delivery at shutdown; it is retried when its lease ends",
				"delivery_id", j.Delivery.ID, "err", err)
		}
	}
}

// sleep waits until the next delivery is due, a wake-up, or pollEvery.
func (d *Deliverer) sleep(ctx context.Context) {
	wait := pollEvery
	if next, ok, err := d.store.NextDue(ctx); err == nil && ok {
		if w := time.Until(next); w < wait {
			wait = max(w, 10*time.Millisecond)
		}
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-d.wake:
	case <-t.C:
	}
}
