package notify

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay/store"
)

// Store is what the Service needs of the store: the outbox, and spools for
// the email it queues.
type Store interface {
	store.NotificationStore
	Spooler
}

// Options are what main wires into a Service.
type Options struct {
	Config     *config.Config
	Store      Store
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// WakeDelivery tells the delivery workers that an email was queued;
	// nil leaves them to find it.
	WakeDelivery func()
	// Held reports what is held, for digests (Period and links are filled
	// in here); nil sends no digests.
	Held func(ctx context.Context) (*Digest, error)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Timing of the Service.
const (
	// leaseFor reserves a claimed notification for its sender: longer than
	// the longest webhook timeout allowed (5m), so a live sender never
	// loses it.
	leaseFor = 10 * time.Minute
	// pollEvery bounds a sleep, so notifications queued by another replica
	// are picked up.
	pollEvery = 5 * time.Second
	// keepFor is how long a sent or failed notification is kept (and its
	// key stays taken) before it is purged.
	keepFor = 7 * 24 * time.Hour
	// sendTimeout bounds one attempt: above the longest webhook timeout
	// allowed (5m), which bounds a webhook sooner; an email is a store
	// commit.
	sendTimeout = 6 * time.Minute
)

// Service sends what the outbox holds and queues the digests. Create it
// with New; Start runs it.
type Service struct {
	cfg      config.Notify
	host     string
	st       Store
	log      *slog.Logger
	notifier *Notifier
	channels map[string]sender
	digests  []config.NotifyChannel
	held     func(ctx context.Context) (*Digest, error)
	wakeMail func()
	now      func() time.Time
	owner    string
	metrics  *metrics

	wake   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// sender sends one claimed notification.
type sender func(ctx context.Context, n *store.ClaimedNotification) error

// New builds a Service: it reads every channel's secret and CA file now,
// so a mistake stops the start instead of the first notification.
func New(o Options) (*Service, error) {
	if o.Config == nil || o.Store == nil || o.Logger == nil || o.Registerer == nil {
		return nil, errors.New("notify: Config, Store, Logger and Registerer are required")
	}
	s := &Service{
		cfg: o.Config.Notify, host: o.Config.Hostname, st: o.Store, log: o.Logger,
		notifier: NewNotifier(o.Config), channels: map[string]sender{}, held: o.Held,
		wakeMail: o.WakeDelivery, now: o.Now, wake: make(chan struct{}, 1),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.wakeMail == nil {
		s.wakeMail = func() {}
	}
	b := make([]byte, 4)
	_, _ = crand.Read(b)
	s.owner = fmt.Sprintf("%s/%d/%s", s.host, os.Getpid(), hex.EncodeToString(b))
	names := []string{config.SenderChannel}
	s.channels[config.SenderChannel] = s.sendSenderNotice
	for _, ch := range s.cfg.Channels {
		names = append(names, ch.Name)
		if ch.Digest != "" {
			s.digests = append(s.digests, ch)
		}
		switch ch.Type {
		case config.ChannelWebhook:
			w, err := newWebhook(ch)
			if err != nil {
				return nil, err
			}
			s.channels[ch.Name] = func(ctx context.Context, n *store.ClaimedNotification) error {
				ev, err := decodeEvent(n)
				if err != nil {
					return err
				}
				return w.send(ctx, ev, s.now())
			}
		case config.ChannelEmail:
			s.channels[ch.Name] = s.emailSender(ch)
		}
	}
	m, err := newMetrics(o.Registerer, o.Store, names, o.Logger)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	return s, nil
}

// Notifier is the Notifier of the Service's configuration.
func (s *Service) Notifier() *Notifier { return s.notifier }

// Wake tells the Service that notifications were queued.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func decodeEvent(n *store.ClaimedNotification) (*Event, error) {
	var ev Event
	if err := json.Unmarshal(n.Payload, &ev); err != nil {
		return nil, fmt.Errorf("corrupt payload: %w", err)
	}
	ev.ID = n.ID
	return &ev, nil
}

func (s *Service) emailSender(ch config.NotifyChannel) sender {
	return func(ctx context.Context, n *store.ClaimedNotification) error {
		ev, err := decodeEvent(n)
		if err != nil {
			return err
		}
		now := s.now()
		_, err = queueMail(ctx, s.st, ListenerNotify, ch.To, func(w io.Writer) error {
			return writeEventMail(w, s.host, ch.From, ch.To, ev, now)
		})
		if err == nil {
			s.wakeMail()
		}
		return err
	}
}

func (s *Service) sendSenderNotice(ctx context.Context, n *store.ClaimedNotification) error {
	var p SenderPayload
	if err := json.Unmarshal(n.Payload, &p); err != nil {
		return fmt.Errorf("corrupt payload: %w", err)
	}
	if p.To == "" {
		return errors.New("no sender to tell") // never queued so; not retried
	}
	now := s.now()
	_, err := queueMail(ctx, s.st, ListenerNotice, p.To, func(w io.Writer) error {
		return writeSenderNotice(w, s.host, &p, now)
	})
	if err == nil {
		s.wakeMail()
	}
	return err
}

// Start runs the senders and the digest and purge loops until Stop or ctx
// ends.
func (s *Service) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(2)
	go s.dispatch(ctx)
	go s.housekeeping(ctx)
}

// Stop ends the loops and waits for attempts in flight (each bounded by
// its channel's timeout); what is unsent stays in the outbox.
func (s *Service) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.wg.Wait()
}

// dispatch claims due notifications for the free workers and sleeps until
// more are due, a worker is free and something was queued, or pollEvery.
func (s *Service) dispatch(ctx context.Context) {
	defer s.wg.Done()
	workers := max(s.cfg.Workers, 1)
	free := make(chan struct{}, workers)
	for range workers {
		free <- struct{}{}
	}
	var inflight sync.WaitGroup
	defer inflight.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-free:
		}
		n := 1
	more:
		for n < workers {
			select {
			case <-free:
				n++
			default:
				break more
			}
		}
		cs, err := s.st.ClaimNotifications(ctx, s.owner, s.now(), n, leaseFor)
		if err != nil && ctx.Err() == nil {
			s.log.Error("notify: claim failed", "err", err)
		}
		for i := range cs {
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				s.attempt(ctx, &cs[i])
				free <- struct{}{}
			}()
		}
		for range n - len(cs) {
			free <- struct{}{}
		}
		if len(cs) < n {
			s.sleep(ctx)
		}
	}
}

func (s *Service) sleep(ctx context.Context) {
	d := pollEvery
	if at, ok, err := s.st.NextNotificationDue(ctx); err == nil && ok {
		d = min(d, max(time.Until(at), 10*time.Millisecond))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-s.wake:
	case <-t.C:
	}
}

// attempt sends one notification and records the outcome.
func (s *Service) attempt(ctx context.Context, n *store.ClaimedNotification) {
	log := s.log.With("notification", n.ID, "channel", n.Channel, "event", n.Event, "queue_id", n.MessageID)
	send, ok := s.channels[n.Channel]
	var err error
	if !ok {
		err = errors.New("the channel is no longer configured")
	} else {
		sctx, cancel := context.WithTimeout(ctx, sendTimeout)
		err = send(sctx, n)
		cancel()
	}
	if ctx.Err() != nil && err != nil {
		return // shutting down: the lease ends and it is tried again
	}
	out := store.NotificationOutcome{State: store.NotificationSent}
	now := s.now()
	switch {
	case err == nil:
		s.metrics.sent.WithLabelValues(n.Channel).Inc()
		log.Info("notification sent", "attempts", n.Attempts+1)
	case !ok || now.Sub(n.CreatedAt) >= s.cfg.Lifetime.D():
		s.metrics.failed.WithLabelValues(n.Channel).Inc()
		s.metrics.givenUp.WithLabelValues(n.Channel).Inc()
		out = store.NotificationOutcome{State: store.NotificationFailed, Error: SafeText(err.Error(), 500)}
		log.Error("notification given up", "attempts", n.Attempts+1, "err", err)
	default:
		s.metrics.failed.WithLabelValues(n.Channel).Inc()
		next := now.Add(s.backoff(n.Attempts))
		out = store.NotificationOutcome{State: store.NotificationPending, NextAttempt: next, Error: SafeText(err.Error(), 500)}
		log.Warn("notification failed; will retry", "attempts", n.Attempts+1, "next_attempt", next, "err", err)
	}
	// Recorded even while shutting down, so a sent one is not sent again.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.st.CompleteNotification(cctx, s.owner, n.ID, out); err != nil {
		log.Error("notify: recording the outcome failed; it may be sent again", "err", err)
	}
	// A retry may now be due before the dispatcher's sleep ends.
	s.Wake()
}

// backoff is the delay before retry n+1: RetryFirst doubling up to
// RetryMax, with ±10% jitter.
func (s *Service) backoff(attempts int) time.Duration {
	b := s.cfg.RetryFirst.D()
	for i := 0; i < attempts && b < s.cfg.RetryMax.D(); i++ {
		b *= 2
	}
	b = min(b, s.cfg.RetryMax.D())
	return b + time.Duration(float64(b)*(rand.Float64()*0.2-0.1))
}

// Notices returns the notifications of c (see Notifier.Notices).
func (s *Service) Notices(c Change) []store.NewNotification { return s.notifier.Notices(c) }
