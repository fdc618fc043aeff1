package relay

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/bccguard/bccguard/relay/rewrite"
	"github.com/bccguard/bccguard/relay/store"
	"github.com/bccguard/bccguard/relay/upstream"
)

// leaseFor is how long a claimed delivery is reserved for its worker. It is
// longer than any single attempt can take (connect + command timeouts), so
// a live worker never loses it; a dead one's work is taken over after it.
const leaseFor = 15 * time.Minute

// pollEvery bounds how long the dispatcher sleeps without a wake-up, so work
// queued by another process sharing the store is picked up.
const pollEvery = 5 * time.Second

// deliverer claims due deliveries from the store and hands them to a fixed
// pool of workers, each holding one reusable upstream connection.
type deliverer struct {
	srv    *Server
	up     *mta
	owner  string
	log    *slog.Logger
	wake   chan struct{}
	tokens chan struct{}
	jobs   chan workShare
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// sources caches the messages being delivered, read once for all
	// their copies.
	sources *rewrite.Cache
	// recording bounds the outcomes being committed (see record).
	recording chan struct{}
}

// maxRecording bounds the outcomes whose commit the workers do not wait for.
const maxRecording = 256

// perWorker is how many due deliveries a worker is handed at once. They
// go out one after the other on its connection; taking several per claim
// keeps the dispatcher's claims (each a read transaction and a walk past
// the leased deliveries at the head of the queue) to a few per batch of
// copies instead of one per copy, while one worker never sits on more
// than a few copies the others could send.
const perWorker = 8

// sourceCacheBytes bounds the memory the source cache holds.
const sourceCacheBytes = 4 << 20

func newDeliverer(s *Server) (*deliverer, error) {
	up, err := newMTA(s.cfg.Upstream, s.hostname)
	if err != nil {
		return nil, err
	}
	n := s.cfg.Upstream.Connections
	b := make([]byte, 4)
	_, _ = crand.Read(b)
	d := &deliverer{
		srv:    s,
		up:     up,
		owner:  fmt.Sprintf("%s/%d/%s", s.hostname, os.Getpid(), hex.EncodeToString(b)),
		log:    s.log.With("component", "delivery"),
		wake:   make(chan struct{}, 1),
		tokens: make(chan struct{}, n),
		jobs:   make(chan workShare),
		// Enough for every worker's message and a few more.
		sources:   rewrite.NewCache(2*n+16, sourceCacheBytes),
		recording: make(chan struct{}, maxRecording),
	}
	for range n {
		d.tokens <- struct{}{}
	}
	return d, nil
}

// Wake tells the delivery dispatcher that work may be due now (after a
// queue flush).
func (s *Server) Wake() { s.wakeDelivery() }

// wakeDelivery tells the dispatcher that work may be due now.
func (s *Server) wakeDelivery() {
	select {
	case s.delivery.wake <- struct{}{}:
	default:
	}
}

func (d *deliverer) start(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	d.cancel = cancel
	n := cap(d.tokens)
	d.wg.Add(n + 1)
	for range n {
		go d.worker(ctx)
	}
	go d.dispatch(ctx)
}

// stop ends the workers; a delivery in flight is finished or, when ctx
// runs out, abandoned to its lease (it is attempted again after restart).
func (d *deliverer) stop(ctx context.Context) {
	if d.cancel == nil {
		return
	}
	d.cancel()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (d *deliverer) dispatch(ctx context.Context) {
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
		claimed, err := d.srv.store.Claim(ctx, d.owner, at, free*perWorker, leaseFor)
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
func (d *deliverer) release(jobs []store.Claimed) {
	for _, j := range jobs {
		out := store.Outcome{State: store.StateDeferred, NextAttempt: time.Now(), Error: j.Delivery.LastError}
		if err := d.srv.store.Complete(context.Background(), d.owner, j.Delivery.ID, out); err != nil {
			d.log.Warn("could not release a delivery at shutdown; it is retried when its lease ends",
				"delivery_id", j.Delivery.ID, "err", err)
		}
	}
}

// sleep waits until the next delivery is due, a wake-up, or pollEvery.
func (d *deliverer) sleep(ctx context.Context) {
	wait := pollEvery
	if next, ok, err := d.srv.store.NextDue(ctx); err == nil && ok {
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

func (d *deliverer) worker(ctx context.Context) {
	defer d.wg.Done()
	var conn *upstream.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	idle := d.srv.cfg.Upstream.IdleTimeout.D()
	t := time.NewTimer(idle)
	defer t.Stop()
	for {
		// An idle connection is closed after IdleTimeout.
		var timeout <-chan time.Time
		if conn != nil {
			t.Reset(idle)
			timeout = t.C
		}
		select {
		case <-ctx.Done():
			return
		case <-timeout:
			conn.Close()
			conn = nil
		case w := <-d.jobs:
			for i, job := range w.jobs {
				if ctx.Err() != nil || w.stale(job, time.Now()) {
					// Shutting down, or the share took long: what is
					// left goes back to the queue, due now.
					d.release(w.jobs[i:])
					break
				}
				conn = d.attempt(ctx, conn, job)
			}
			d.tokens <- struct{}{}
		}
	}
}

// attempt delivers one claimed delivery and records the outcome. It returns
// the connection to keep for the next job (nil after any connection trouble).
func (d *deliverer) attempt(ctx context.Context, conn *upstream.Conn, job store.Claimed) *upstream.Conn {
	start := time.Now()
	dl, msg := job.Delivery, job.Message
	log := d.log.With("queue_id", msg.ID, "delivery_id", dl.ID, "attempt", dl.Attempts+1, "rewrite", string(dl.Rewrite))

	res, conn, err := d.transact(ctx, conn, msg, dl)
	d.srv.metrics.deliverySecs.Observe(time.Since(start).Seconds())
	if err != nil && errors.Is(err, context.Canceled) {
		return conn // shutting down: the lease lapses and the work is retried
	}
	out := d.classify(ctx, msg, dl, res, err)
	d.record(ctx, log, dl, out, start)
	return conn
}

// record commits an attempt's outcome without holding up the worker: the
// commit waits for a group commit (an fsync), and a worker that waited for
// each one would spend most of its time there instead of on the upstream
// connection. The delivery stays leased to this owner until Complete has
// committed, so no one claims it meanwhile; a crash before that commit
// repeats the attempt after restart, which is the at-least-once delivery
// any crash after the upstream's 250 already implies. At most maxRecording
// outcomes are in flight; stop waits for them (through d.wg).
func (d *deliverer) record(ctx context.Context, log *slog.Logger, dl store.Delivery, out store.Outcome, start time.Time) {
	select {
	case d.recording <- struct{}{}:
	case <-ctx.Done():
		return // shutting down: the lease lapses and the work is retried
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer func() { <-d.recording }()
		// Not cancelled by shutdown: stop waits for it, so an attempt that
		// happened is recorded when it can be. A full disk is retried
		// (the store's reserve is meant for exactly this) until shutdown;
		// what is not recorded is attempted again after its lease.
		wait := time.Second
		for {
			cerr := d.srv.store.Complete(context.WithoutCancel(ctx), d.owner, dl.ID, out)
			if cerr == nil {
				break
			}
			if !errors.Is(cerr, store.ErrNoSpace) || ctx.Err() != nil {
				log.Error("could not record delivery outcome", "err", cerr)
				return
			}
			log.Warn("could not record delivery outcome yet: no space; retrying", "err", cerr, "retry_in", wait.String())
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			wait = min(2*wait, 30*time.Second)
		}
		log.Info("delivery attempt", "result", string(out.State), "reply", d.srv.redactText(out.Error),
			"recipients", len(dl.Recipients), "duration_ms", time.Since(start).Milliseconds())
	}()
}

// transact runs the SMTP transaction, reusing conn when it can. A reused
// connection that fails before any of the message went out (the upstream
// closed it while idle) is replaced once.
func (d *deliverer) transact(ctx context.Context, conn *upstream.Conn, msg store.Message, dl store.Delivery) ([]error, *upstream.Conn, error) {
	src, err := d.sources.Get(ctx, d.srv.store, msg)
	if err != nil {
		return nil, conn, err
	}
	// Signing reads the copy once before the transaction starts, so that
	// a copy that cannot be signed never opens a DATA it cannot finish.
	opts, err := d.srv.dkim.prepare(ctx, src, dl)
	if err != nil {
		return nil, conn, err
	}
	tx := &upstream.Transaction{
		From:  msg.Envelope.Sender,
		Size:  msg.Size,
		Ret:   msg.Envelope.Ret,
		EnvID: msg.Envelope.EnvID,
		UTF8:  msg.Envelope.SMTPUTF8,
		Rcpts: make([]upstream.Recipient, len(dl.Recipients)),
		Body: func(w io.Writer) error {
			rc, err := src.OpenBody(ctx)
			if err != nil {
				return err
			}
			defer rc.Close()
			return rewrite.WriteCopy(w, src, rc, dl, opts)
		},
	}
	for i, r := range dl.Recipients {
		tx.Rcpts[i] = upstream.Recipient{Addr: r.Addr, Notify: r.Notify, ORcpt: r.ORcpt}
	}
	for try := 0; try < 2; try++ {
		reused := conn != nil
		if conn == nil {
			c, err := d.up.dial(ctx)
			if err != nil {
				d.srv.metrics.upstreamUp.Set(0)
				return nil, nil, err
			}
			d.srv.metrics.upstreamUp.Set(1)
			conn = c
		}
		res, err := conn.Send(tx)
		if err == nil || conn.Usable() {
			// Delivered, or refused by a reply: the connection is good.
			return res, conn, err
		}
		conn.Close()
		conn = nil
		if !reused || !upstream.NotSent(err) {
			return nil, nil, err
		}
	}
	return nil, nil, errors.New("upstream connection failed twice")
}

// classify turns a transaction's result into the delivery's new state,
// queueing DSNs for recipients that failed for good.
func (d *deliverer) classify(ctx context.Context, msg store.Message, dl store.Delivery, res []error, err error) store.Outcome {
	now := time.Now()
	// Time an operator held the delivery does not count (queue hold).
	expired := now.Sub(msg.ReceivedAt)-dl.HeldFor >= d.srv.cfg.Queue.Lifetime.D()
	retry := store.Outcome{State: store.StateDeferred, NextAttempt: now.Add(d.backoff(dl.Attempts))}
	if err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code >= 500 {
			d.srv.metrics.deliveries.WithLabelValues("bounced", "5xx").Inc()
			d.srv.bounce(ctx, msg, failuresFor(dl.Recipients, se.Error(), se, false))
			return store.Outcome{State: store.StateBounced, Error: safeText(se.Error(), 500)}
		}
		class := "network"
		if se != nil {
			class = "4xx"
		}
		text := safeText(err.Error(), 500)
		if expired {
			d.srv.metrics.deliveries.WithLabelValues("expired", class).Inc()
			d.srv.bounce(ctx, msg, failuresFor(dl.Recipients, text, se, true))
			return store.Outcome{State: store.StateExpired, Error: text}
		}
		d.srv.metrics.deliveries.WithLabelValues("deferred", class).Inc()
		retry.Error = text
		return retry
	}
	// Per-recipient results: delivered, bounced (5xx) or still to retry (4xx).
	var again []store.Recipient
	var failed []failure
	var lastErr string
	for i, r := range res {
		se, _ := r.(*smtp.SMTPError)
		switch {
		case r == nil:
			d.srv.metrics.deliveries.WithLabelValues("delivered", "2xx").Inc()
		case se != nil && se.Code >= 500:
			d.srv.metrics.deliveries.WithLabelValues("bounced", "5xx").Inc()
			failed = append(failed, failure{rcpt: dl.Recipients[i], diag: se.Error(), status: se})
			lastErr = se.Error()
		case expired:
			d.srv.metrics.deliveries.WithLabelValues("expired", "4xx").Inc()
			failed = append(failed, failure{rcpt: dl.Recipients[i], diag: r.Error(), status: se, expired: true})
			lastErr = r.Error()
		default:
			d.srv.metrics.deliveries.WithLabelValues("deferred", "4xx").Inc()
			again = append(again, dl.Recipients[i])
			lastErr = r.Error()
		}
	}
	if len(failed) > 0 {
		d.srv.bounce(ctx, msg, failed)
	}
	if len(again) > 0 {
		retry.Recipients = again
		retry.Error = safeText(lastErr, 500)
		return retry
	}
	if len(failed) == len(res) {
		return store.Outcome{State: store.StateBounced, Error: safeText(lastErr, 500)}
	}
	return store.Outcome{State: store.StateDelivered, Error: safeText(lastErr, 500)}
}

// backoff is the delay before retry n+1: RetryFirst doubling up to RetryMax,
// with ±10% jitter so a burst deferred together does not retry together.
func (d *deliverer) backoff(attempts int) time.Duration {
	q := d.srv.cfg.Queue
	b := q.RetryFirst.D()
	for i := 0; i < attempts && b < q.RetryMax.D(); i++ {
		b *= 2
	}
	b = min(b, q.RetryMax.D())
	j := time.Duration(float64(b) * (rand.Float64()*0.2 - 0.1))
	return b + j
}
