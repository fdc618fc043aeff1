package deliver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/bccguard/bccguard/internal/oneline"
	"github.com/bccguard/bccguard/relay/rewrite"
	"github.com/bccguard/bccguard/relay/store"
	"github.com/bccguard/bccguard/relay/upstream"
)

// maxRecording bounds the outcomes whose commit the workers do not wait for.
const maxRecording = 256

// worker sends the shares the dispatcher hands it, one delivery after the
// other on one upstream connection kept open between them.
func (d *Deliverer) worker(ctx context.Context) {
	defer d.wg.Done()
	var conn *upstream.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	idle := d.idle
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
func (d *Deliverer) attempt(ctx context.Context, conn *upstream.Conn, job store.Claimed) *upstream.Conn {
	start := time.Now()
	dl, msg := job.Delivery, job.Message
	log := d.log.With("queue_id", msg.ID, "delivery_id", dl.ID, "attempt", dl.Attempts+1, "rewrite", string(dl.Rewrite))

	res, conn, err := d.transact(ctx, conn, msg, dl)
	d.metrics.deliverySecs.Observe(time.Since(start).Seconds())
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
func (d *Deliverer) record(ctx context.Context, log *slog.Logger, dl store.Delivery, out store.Outcome, start time.Time) {
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
			cerr := d.store.Complete(context.WithoutCancel(ctx), d.owner, dl.ID, out)
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
		log.Info("delivery attempt", "result", string(out.State), "reply", d.redactText(out.Error),
			"recipients", len(dl.Recipients), "duration_ms", time.Since(start).Milliseconds())
	}()
}

// transact runs the SMTP transaction, reusing conn when it can. A reused
// connection that fails before any of the message went out (the upstream
// closed it while idle) is replaced once.
func (d *Deliverer) transact(ctx context.Context, conn *upstream.Conn, msg store.Message, dl store.Delivery) ([]error, *upstream.Conn, error) {
	src, err := d.sources.Get(ctx, d.store, msg)
	if err != nil {
		return nil, conn, err
	}
	// Signing reads the copy once before the transaction starts, so that
	// a copy that cannot be signed never opens a DATA it cannot finish.
	opts, err := d.signer.Prepare(ctx, src, dl)
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
			c, err := d.dialer.Dial(ctx)
			if err != nil {
				d.upstream.observe(false, oneline.ASCII(err.Error(), 300))
				return nil, nil, err
			}
			d.upstream.observe(true, "")
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
