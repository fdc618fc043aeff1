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
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/config"
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
