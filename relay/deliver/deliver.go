// Package deliver hands what the relay accepted to the upstream MTA: a
// dispatcher that claims due deliveries from the store under a lease, a
// fixed pool of workers each holding one reusable upstream connection,
// the classification of each attempt's result (delivered, retried with
// backoff, bounced, expired), the DSNs that go back to senders, and the
// upstream's state as metrics and /readyz see it.
package deliver

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/internal/oneline"
	"github.com/bccguard/bccguard/relay/rewrite"
	"github.com/bccguard/bccguard/relay/store"
	"github.com/bccguard/bccguard/relay/upstream"
)

// Options are what a Deliverer is built from.
type Options struct {
	// Store is the queue: deliveries are claimed from it, their outcomes
	// recorded in it, and DSNs spooled into it.
	Store store.Store
	// Upstream says how to reach the upstream MTA (and with how many
	// connections); Queue how long and how often to retry.
	Upstream config.Upstream
	Queue    config.Queue
	// Hostname is bccguard's own name: the EHLO default, and the
	// Reporting-MTA and sender of DSNs.
	Hostname string
	// Dialer opens upstream connections; nil dials Upstream as configured.
	Dialer Dialer
	// Signer makes what is written around the stored message for each
	// copy (DKIM signatures, Authentication-Results:).
	Signer Signer
	// Bouncer tells senders about recipients that will not get their
	// message; nil queues DSNs in Store.
	Bouncer Bouncer
	// Logger and Registerer receive the delivery's logs and metrics.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Redact replaces an address for the logs, RedactText every address
	// in a text (an upstream reply); nil logs them as they are.
	Redact, RedactText func(string) string
}

// Dialer opens a connection to the upstream MTA.
type Dialer interface {
	Dial(ctx context.Context) (*upstream.Conn, error)
}

// Signer prepares one copy of a stored message for sending: the options
// rewrite.WriteCopy writes it with (rewrite.Signer is the one bccguard
// uses).
type Signer interface {
	Prepare(ctx context.Context, src *rewrite.Source, dl store.Delivery) (rewrite.Options, error)
}

// leaseFor is how long a claimed delivery is reserved for its worker. It is
// longer than any single attempt can take (connect + command timeouts), so
// a live worker never loses it; a dead one's work is taken over after it.
const leaseFor = 15 * time.Minute

// pollEvery bounds how long the dispatcher sleeps without a wake-up, so work
// queued by another process sharing the store is picked up.
const pollEvery = 5 * time.Second

// Deliverer claims due deliveries from the store and hands them to a fixed
// pool of workers, each holding one reusable upstream connection.
type Deliverer struct {
	store      store.Store
	queue      config.Queue
	idle       time.Duration
	probeLimit time.Duration
	dialer     Dialer
	signer     Signer
	bouncer    Bouncer
	metrics    *metrics
	upstream   *upstreamState
	redactText func(string) string

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

// New builds a Deliverer; Start runs it.
func New(o Options) (*Deliverer, error) {
	if o.Store == nil || o.Signer == nil || o.Logger == nil || o.Registerer == nil {
		return nil, errors.New("deliver: Store, Signer, Logger and Registerer are required")
	}
	if o.Redact == nil {
		o.Redact = func(s string) string { return s }
	}
	if o.RedactText == nil {
		o.RedactText = func(s string) string { return s }
	}
	dialer := o.Dialer
	if dialer == nil {
		m, err := newMTA(o.Upstream, o.Hostname)
		if err != nil {
			return nil, err
		}
		dialer = m
	}
	m, err := newMetrics(o.Registerer, o.Store, o.Logger)
	if err != nil {
		return nil, err
	}
	n := o.Upstream.Connections
	b := make([]byte, 4)
	_, _ = crand.Read(b)
	d := &Deliverer{
		store:      o.Store,
		queue:      o.Queue,
		idle:       o.Upstream.IdleTimeout.D(),
		probeLimit: o.Upstream.ConnectTimeout.D() + 30*time.Second,
		dialer:     dialer,
		signer:     o.Signer,
		bouncer:    o.Bouncer,
		metrics:    m,
		upstream:   newUpstreamState(m.upstreamUp, o.Logger, o.Upstream.Address),
		redactText: o.RedactText,
		owner:      fmt.Sprintf("%s/%d/%s", o.Hostname, os.Getpid(), hex.EncodeToString(b)),
		log:        o.Logger.With("component", "delivery"),
		wake:       make(chan struct{}, 1),
		tokens:     make(chan struct{}, n),
		jobs:       make(chan workShare),
		// Enough for every worker's message and a few more.
		sources:   rewrite.NewCache(2*n+16, sourceCacheBytes),
		recording: make(chan struct{}, maxRecording),
	}
	if d.bouncer == nil {
		d.bouncer = &dsnQueue{
			store: o.Store, hostname: o.Hostname, remoteMTA: remoteHost(o.Upstream.Address),
			log: o.Logger, sent: m.dsns, redact: o.Redact, wake: d.Wake,
		}
	}
	for range n {
		d.tokens <- struct{}{}
	}
	return d, nil
}

// Wake tells the dispatcher that work may be due now (a message was
// queued, or the queue flushed).
func (d *Deliverer) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// UpstreamStatus describes the upstream's reachability for /readyz, which
// reports it without depending on it: while the upstream is down the queue
// holds what is accepted.
func (d *Deliverer) UpstreamStatus(context.Context) string { return d.upstream.status() }

// Start runs the dispatcher, the workers and the upstream probe until ctx
// ends or Stop.
func (d *Deliverer) Start(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	d.cancel = cancel
	n := cap(d.tokens)
	d.wg.Add(n + 2)
	for range n {
		go d.worker(ctx)
	}
	go d.dispatch(ctx)
	go d.watchUpstream(ctx)
}

// Stop ends the workers; a delivery in flight is finished or, when ctx
// runs out, abandoned to its lease (it is attempted again after restart).
func (d *Deliverer) Stop(ctx context.Context) {
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
