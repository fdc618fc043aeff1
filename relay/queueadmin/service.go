// Package queueadmin is the operator's side of bccguard's queue, as
// Postfix's postqueue and postsuper are: list and flush the queue, show one
// message with the state of each recipient, hold and release it, requeue
// it, delete it (with a dry run, and a DSN to the sender if asked) and read
// the stored original. One Service carries every action, so the control
// socket the CLI uses and the JSON API under /api/v1/queue behave the same,
// check the same roles (review.Actor: viewers may look, reviewers act) and
// write the same entries into the review audit log.
package queueadmin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/store"
)

// Store is what queue administration needs of the store: the queue, its
// administration, and the quarantine side for the audit log and to tell
// a quarantined message from one that is gone.
type Store interface {
	store.Store
	store.QueueAdmin
	store.QuarantineStore
}

// Options are what main wires into a Service.
type Options struct {
	Store      Store
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Hostname names bccguard in DSNs (Reporting-MTA, MAILER-DAEMON@).
	Hostname string
	// Wake tells the delivery workers that deliveries are due (after a
	// release, requeue, flush or a DSN); nil leaves them to their poll.
	Wake func()
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Redact replaces addresses in text bound for the log.
	Redact func(string) string
}

// Service carries out queue actions; it is safe for concurrent use.
type Service struct {
	st       Store
	log      *slog.Logger
	hostname string
	wake     func()
	now      func() time.Time
	redact   func(string) string
	actions  *prometheus.CounterVec
}

// New builds a Service and registers its metric.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Logger == nil || o.Registerer == nil || o.Hostname == "" {
		return nil, errors.New("queueadmin: Store, Logger, Registerer and Hostname are required")
	}
	s := &Service{st: o.Store, log: o.Logger, hostname: o.Hostname, wake: o.Wake, now: o.Now, redact: o.Redact,
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_queue_actions_total",
			Help: "Queue administration actions (show, cat, hold, release, requeue, delete, flush), by action and outcome (ok or an error code).",
		}, []string{"action", "outcome"}),
	}
	if s.wake == nil {
		s.wake = func() {}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.redact == nil {
		s.redact = func(s string) string { return s }
	}
	if err := o.Registerer.Register(s.actions); err != nil {
		return nil, fmt.Errorf("queueadmin: register metrics: %w", err)
	}
	return s, nil
}

// authorize checks the actor's role: act for changes and for reading a
// stored message, look for listing and showing.
func authorize(a review.Actor, act bool) error {
	switch {
	case a.Name == "":
		return errorf(review.CodeUnauthorized, "no actor: the request was not authenticated")
	case act && !a.CanReview():
		return errorf(review.CodeForbidden, "%s may not act on the queue: the %s role is needed", a.Name, review.RoleReviewer)
	case !a.CanView():
		return errorf(review.CodeForbidden, "%s has no role that may read the queue", a.Name)
	}
	return nil
}

func errorf(c review.Code, format string, a ...any) *review.Error {
	return &review.Error{Code: c, Message: fmt.Sprintf(format, a...)}
}

// record counts an action, writes its audit entry (as "queue-ACTION",
// failures too) and logs a failure.
func (s *Service) record(ctx context.Context, a review.Actor, action, target string, err error, detail ...string) {
	name := "queue-" + action
	outcome := "ok"
	if err != nil {
		outcome = string(review.CodeOf(err))
		lvl := slog.LevelInfo
		if review.CodeOf(err) == review.CodeInternal {
			lvl = slog.LevelError
		}
		s.log.Log(ctx, lvl, "queue action failed", "action", action, "target", s.redact(target),
			"actor", a.Name, "via", a.Via, "outcome", outcome, "err", s.redact(err.Error()))
	}
	s.actions.WithLabelValues(action, outcome).Inc()
	if aerr := review.AddAudit(ctx, s.st, review.NewAuditEntry(s.now(), a, name, target, err, detail...)); aerr != nil {
		s.log.Error("could not write the audit entry", "action", name, "target", s.redact(target), "actor", a.Name, "err", aerr)
	}
}

// checkID refuses what cannot be a message ID. A delivery ID (the
// message's ID, a dot and a number, as `queue list` shows) is refused with
// the message ID to use, since every action applies to the whole message.
func checkID(id string) error {
	switch {
	case id == "" || len(id) > 200 || strings.ContainsAny(id, "/\\ \t\r\n"):
		return errorf(review.CodeBadRequest, "invalid message ID %q", id)
	case strings.Contains(id, "."):
		msg, _, _ := strings.Cut(id, ".")
		return errorf(review.CodeBadRequest, "%s is a delivery ID; queue commands act on a whole message: use its message ID %s", id, msg)
	}
	return nil
}

// storeErr turns a store error about message id into a *review.Error,
// saying where a message that is not in the queue went.
func (s *Service) storeErr(ctx context.Context, err error, id, doing string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotQueued):
		return &review.Error{Code: review.CodeNotFound, Err: err,
			Message: fmt.Sprintf("%s is held for review in the quarantine, not queued: use bccguard quarantine show, release or delete", id)}
	case errors.Is(err, store.ErrNotFound):
		msg := fmt.Sprintf("no message %s in the queue: unknown, or all its deliveries are finished (delivered, bounced or expired) and it has left the queue", id)
		if h, herr := s.st.Hold(ctx, id); herr == nil {
			msg = fmt.Sprintf("no message %s in the queue: it was held for review and is %s (bccguard quarantine show %s)", id, h.State, id)
		}
		return &review.Error{Code: review.CodeNotFound, Message: msg, Err: err}
	}
	return &review.Error{Code: review.CodeInternal, Message: doing + " failed", Err: err}
}
