// Package review is the review side of bccguard's quarantine: what security
// does with the messages the policy held. One Service carries every action
// (list, show, download, release, delete, bulk, expiry, the audit log) so
// that the HTTP API, the control socket the CLI uses, and the web pages all
// behave the same, check the same roles and write the same audit entries.
//
// Every method takes the Actor on whose behalf it runs. The Service checks
// the actor's role itself, even though its callers authenticate and check
// too: one missed check in a handler must not be enough to release mail.
package review

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay/store"
)

// Store is what the review side needs of the store: the queue, to read held
// messages, its quarantine side, and the notification outbox that review
// actions commit their notices to.
type Store interface {
	store.Store
	store.QuarantineStore
	store.NotificationStore
}

// Roles, as in the config file.
const (
	RoleViewer   = config.RoleViewer   // list, show, download and read the audit log
	RoleReviewer = config.RoleReviewer // also release, delete and bulk actions
)

// Where an action came from (Actor.Via).
const (
	ViaAPI    = "api"    // the JSON API (bearer token or HTTP Basic)
	ViaWeb    = "web"    // the review pages (a signed-in user)
	ViaCLI    = "cli"    // the CLI through the control socket
	ViaSystem = "system" // bccguard itself (expiry)
)

// ExpiryActor is the actor name of releases and deletions done by expiry.
const ExpiryActor = "system:expiry"

// Actor is who asks for an action. Name identifies a person or token in
// the audit log and for the four-eyes rule (two releases by the same Name
// never count as two reviewers, whatever Via they came through).
type Actor struct {
	Name string `json:"name"`
	Role string `json:"role"`
	Via  string `json:"via"`
}

// CanReview reports whether the actor may release and delete.
func (a Actor) CanReview() bool { return a.Name != "" && a.Role == RoleReviewer }

// CanView reports whether the actor may read the quarantine and audit log.
func (a Actor) CanView() bool {
	return a.Name != "" && (a.Role == RoleViewer || a.Role == RoleReviewer)
}

type actorKey struct{}

// WithActor returns ctx carrying a, as authentication middleware does
// before handing a request to the API.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor WithActor stored in ctx.
func ActorFrom(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}

// Options are what main wires into a Service.
type Options struct {
	Store      Store
	Config     config.Quarantine
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Hostname names bccguard in delete notices (MAILER-DAEMON@Hostname).
	Hostname string
	// Wake tells the delivery workers that deliveries were queued; nil
	// leaves them to find the work on their own schedule.
	Wake func()
	// ExpiryInterval is how often Start's loop expires holds (default
	// one minute).
	ExpiryInterval time.Duration
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
	// Redact replaces addresses in text bound for the log (a bulk
	// action's filter can name a sender); nil logs text as it is.
	Redact func(string) string
	// Notify makes the notifications of review actions (and the notices
	// to senders); nil sends none.
	Notify Notifier
}

// Service carries out review actions. Create it with New; it is safe for
// concurrent use.
type Service struct {
	st       Store
	cfg      config.Quarantine
	fourEyes map[string]bool
	log      *slog.Logger
	metrics  *metrics
	hostname string
	redact   func(string) string
	notify   Notifier
	wake     func()
	interval time.Duration
	now      func() time.Time

	loopMu sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// New builds a Service and registers its metrics on o.Registerer.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Logger == nil || o.Registerer == nil || o.Hostname == "" {
		return nil, errors.New("review: Store, Logger, Registerer and Hostname are required")
	}
	if _, err := config.ParseExpiryAction(string(o.Config.ExpiryAction)); err != nil {
		return nil, fmt.Errorf("review: expiry action %w", err)
	}
	if o.Config.Retention <= 0 {
		return nil, errors.New("review: retention must be positive")
	}
	s := &Service{
		st:       o.Store,
		cfg:      o.Config,
		fourEyes: map[string]bool{},
		log:      o.Logger,
		hostname: o.Hostname,
		redact:   o.Redact,
		notify:   o.Notify,
		wake:     o.Wake,
		interval: o.ExpiryInterval,
		now:      o.Now,
	}
	for _, r := range o.Config.FourEyesRules {
		s.fourEyes[r] = true
	}
	if s.interval <= 0 {
		s.interval = time.Minute
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.wake == nil {
		s.wake = func() {}
	}
	m, err := newMetrics(o.Registerer, o.Store, s.now, o.Logger)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	return s, nil
}

// FourEyes reports whether releasing a hold of rule needs two reviewers.
func (s *Service) FourEyes(rule string) bool { return s.fourEyes[rule] }

// authorize checks the actor's role for an action that changes something
// (review) or only reads (!review).
func authorize(a Actor, review bool) error {
	switch {
	case a.Name == "":
		return errorf(CodeUnauthorized, "no actor: the request was not authenticated")
	case review && !a.CanReview():
		return errorf(CodeForbidden, "%s may not release or delete: the %s role is needed", a.Name, RoleReviewer)
	case !a.CanView():
		return errorf(CodeForbidden, "%s has no role that may read the quarantine", a.Name)
	}
	return nil
}

// record counts an action, writes its audit entry and logs a failure. The
// audit entry is written for failures too: a refused release is exactly
// what security wants to see in the log.
func (s *Service) record(ctx context.Context, a Actor, action, target string, err error, detail ...string) {
	outcome := "ok"
	if err != nil {
		outcome = string(CodeOf(err))
	}
	s.metrics.actions.WithLabelValues(action, outcome).Inc()
	if err != nil {
		lvl := slog.LevelInfo
		if CodeOf(err) == CodeInternal {
			lvl = slog.LevelError
		}
		logTarget, logErr := target, err.Error()
		if s.redact != nil {
			logTarget, logErr = s.redact(target), s.redact(logErr)
		}
		s.log.Log(ctx, lvl, "quarantine action failed", "action", action, "target", logTarget,
			"actor", a.Name, "via", a.Via, "outcome", outcome, "err", logErr)
	}
	if aerr := AddAudit(ctx, s.st, NewAuditEntry(s.now(), a, action, target, err, detail...)); aerr != nil {
		s.metrics.auditFailures.Inc()
		s.log.Error("could not write the audit entry", "action", action, "target", target, "actor", a.Name, "outcome", outcome, "err", aerr)
	}
}

// Start runs expiry once now and then every ExpiryInterval until Stop or
// ctx ends.
func (s *Service) Start(ctx context.Context) {
	s.loopMu.Lock()
	defer s.loopMu.Unlock()
	if s.cancel != nil {
		return
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.interval)
		defer t.Stop()
		for {
			if _, err := s.Expire(ctx, s.now()); err != nil && ctx.Err() == nil {
				s.log.Error("quarantine expiry failed; retrying at the next run", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends the expiry loop and waits for a run in progress to finish.
func (s *Service) Stop() {
	s.loopMu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel, s.done = nil, nil
	s.loopMu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// getHold reads one hold for an action.
func (s *Service) getHold(ctx context.Context, id string) (store.Hold, error) {
	if id == "" || len(id) > 200 {
		return store.Hold{}, errorf(CodeBadRequest, "invalid message ID")
	}
	h, err := s.st.Hold(ctx, id)
	if err != nil {
		return h, storeErr(err, id, "reading the hold")
	}
	return h, nil
}

// notHeld explains why a hold cannot be acted on any more.
func notHeld(h store.Hold) error {
	msg := fmt.Sprintf("message %s is %s", h.Message.ID, h.State)
	if r := h.Resolution; r != nil {
		msg += fmt.Sprintf(" (%s by %s at %s)", r.Action, r.Actor, r.At.UTC().Format(time.RFC3339))
	}
	return &Error{Code: CodeNotHeld, Message: msg, Err: store.ErrNotHeld}
}

// expiresAt is when a hold expires. Holds carry their own expiry (the
// retention in force when they were held); one without falls back to the
// retention in force now.
func (s *Service) expiresAt(m store.Message) time.Time {
	if m.Quarantine != nil && !m.Quarantine.ExpiresAt.IsZero() {
		return m.Quarantine.ExpiresAt
	}
	return m.ReceivedAt.Add(s.cfg.Retention.D())
}

func ruleOf(m store.Message) string {
	if m.Quarantine == nil {
		return ""
	}
	return m.Quarantine.Rule
}
