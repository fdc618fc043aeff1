// Package relay is bccguard's SMTP side: the Server with its listeners,
// the ingress sessions that accept mail from marketing and CRM tools, and
// ingest to the store. The Server starts relay/deliver's workers, which
// hand each copy (rendered by relay/rewrite) to the upstream MTA.
package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/policy"
	"github.com/bccguard/bccguard/relay/deliver"
	"github.com/bccguard/bccguard/relay/limit"
	"github.com/bccguard/bccguard/relay/store"
)

// Authenticator checks SMTP AUTH credentials.
type Authenticator interface {
	// Mechanisms lists the SASL mechanisms offered (after TLS).
	Mechanisms() []string
	// NewServer starts a SASL exchange; verify decides on the credentials.
	NewServer(mech string, verify func(user, pass string) error) (sasl.Server, error)
	// Verify checks a user's password.
	Verify(user, pass string) bool
}

// Evaluator is the policy as the relay sees it.
type Evaluator interface {
	Evaluate(ctx context.Context, in *policy.Input) (policy.Decision, policy.Figures)
	// ScanOptions are the content scan's settings (limits, phone region).
	ScanOptions() policy.ScanOptions
	// UsesClientCounts says whether a rule reads the client's counts, so
	// that ingest asks the store for them only then.
	UsesClientCounts() bool
	// SenderNotice is whether the rule tells the sender of a held message,
	// and with which template.
	SenderNotice(rule string) (string, bool)
}

// Options are what main wires into a Server.
type Options struct {
	Config     *config.Config
	Store      store.Store
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Users authenticates SMTP AUTH; nil offers no AUTH.
	Users Authenticator
	// Policy decides each message; nil passes everything.
	Policy Evaluator
	// RedactKey keys the hash that replaces addresses in logs; nil logs
	// addresses in clear.
	RedactKey []byte
	// Limits checks the rate limits and keeps the policy's client counts;
	// nil checks none (and the counts are zero).
	Limits *limit.Limiter
	// Notify makes the notifications a hold commits with it; nil sends
	// none.
	Notify Notifier
}

// Server is the running relay: its listeners and the delivery it starts.
type Server struct {
	cfg       *config.Config
	store     store.Store
	log       *slog.Logger
	metrics   *metrics
	users     Authenticator
	hostname  string
	redactKey []byte
	limits    *limit.Limiter

	policyMu sync.RWMutex
	policy   Evaluator

	closing   atomic.Bool
	listeners []*listener
	delivery  *deliver.Deliverer
	ops       *ops          // ops.go: operations metrics and readiness
	notify    Notifier      // notices.go: notifications committed with holds
	dkim      *verification // verify.go: DKIM verification at ingest

	contentMetrics *contentMetrics // content.go: what body scans find
}

type listener struct {
	srv   *Server
	cfg   config.Listener
	smtp  *smtp.Server
	ln    net.Listener
	guard *guardedListener
}

// New builds a Server; Start runs it.
func New(o Options) (*Server, error) {
	if o.Config == nil || o.Store == nil || o.Logger == nil || o.Registerer == nil {
		return nil, errors.New("relay: Config, Store, Logger and Registerer are required")
	}
	s := &Server{
		cfg:       o.Config,
		store:     o.Store,
		log:       o.Logger,
		metrics:   newMetrics(o.Registerer),
		users:     o.Users,
		hostname:  o.Config.Hostname,
		redactKey: o.RedactKey,
		policy:    o.Policy,
		limits:    o.Limits,
		notify:    o.Notify,
	}
	if err := s.initOps(o.Registerer); err != nil {
		return nil, err
	}
	signer := newSigner(o.Config.DKIM, o.Registerer)
	s.dkim = newVerification(o.Config.DKIM, signer, o.Registerer)
	s.contentMetrics = newContentMetrics(o.Registerer)
	d, err := deliver.New(deliver.Options{
		Store: o.Store, Upstream: o.Config.Upstream, Queue: o.Config.Queue, Hostname: o.Config.Hostname,
		Signer: signer, Logger: o.Logger, Registerer: o.Registerer, Redact: s.redact, RedactText: s.redactText,
	})
	if err != nil {
		return nil, err
	}
	s.delivery = d
	return s, nil
}

// Wake tells the delivery dispatcher that work may be due now: a message
// was queued, or the queue was flushed.
func (s *Server) Wake() { s.delivery.Wake() }

// SetPolicy swaps the policy (on reload); sessions in flight keep the one
// they started DATA with.
func (s *Server) SetPolicy(p Evaluator) {
	s.policyMu.Lock()
	s.policy = p
	s.policyMu.Unlock()
}

// decide evaluates the policy in force and returns its decision, the
// figures it used and the policy that made it.
func (s *Server) decide(ctx context.Context, in *policy.Input) (policy.Decision, policy.Figures, Evaluator) {
	s.policyMu.RLock()
	p := s.policy
	s.policyMu.RUnlock()
	d, fig := policy.Decision{Action: policy.Pass}, policy.Figures{}
	if p != nil {
		d, fig = p.Evaluate(ctx, in)
	}
	mode := "enforce"
	if d.Monitor {
		mode = "monitor"
	}
	s.metrics.decisions.WithLabelValues(string(d.Action), d.Rule, mode).Inc()
	// Monitor-mode rules that matched on the way are counted apart: what
	// they would have done.
	for _, m := range d.Monitored {
		s.metrics.decisions.WithLabelValues(string(m.Action), m.Rule, "monitor").Inc()
	}
	return d, fig, p
}

func (s *Server) policyInput(ss *session, head []byte) *policy.Input {
	in := &policy.Input{
		Listener: ss.lst.cfg.Name,
		ClientIP: ss.ip,
		User:     ss.user,
		Sender:   ss.env.Sender,
		Header:   head,
	}
	for _, r := range ss.env.Recipients {
		in.Recipients = append(in.Recipients, r.Addr)
	}
	return in
}

// Start opens every listener and starts the delivery workers. It returns
// once the listeners are bound, so a caller can report readiness.
func (s *Server) Start(ctx context.Context) error {
	for _, lc := range s.cfg.Listeners {
		l, err := s.listen(lc)
		if err != nil {
			s.closeListeners()
			return err
		}
		s.listeners = append(s.listeners, l)
	}
	for _, l := range s.listeners {
		go func() {
			if err := l.smtp.Serve(l.ln); err != nil && !errors.Is(err, net.ErrClosed) {
				s.log.Error("listener stopped", "listener", l.cfg.Name, "err", err)
			}
			s.listenerStopped(l.cfg.Name)
		}()
		s.log.Info("listening", "listener", l.cfg.Name, "address", l.ln.Addr().String(), "tls", l.cfg.TLS)
	}
	s.delivery.Start(ctx)
	return nil
}

// Addrs returns the bound address of each listener, by name.
func (s *Server) Addrs() map[string]net.Addr {
	out := map[string]net.Addr{}
	for _, l := range s.listeners {
		out[l.cfg.Name] = l.ln.Addr()
	}
	return out
}

func (s *Server) listen(lc config.Listener) (*listener, error) {
	l := &listener{srv: s, cfg: lc}
	var tlsCfg *tls.Config
	if lc.TLS != config.ListenerTLSNone {
		cert, err := tls.LoadX509KeyPair(lc.TLSCert, lc.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("listener %s: load certificate: %w", lc.Name, err)
		}
		s.certLoaded(lc.Name, cert)
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	raw, err := net.Listen("tcp", lc.Address)
	if err != nil {
		return nil, fmt.Errorf("listener %s: %w", lc.Name, err)
	}
	l.guard = &guardedListener{
		Listener: raw,
		max:      int64(lc.Limits.MaxConnections),
		idle:     lc.Limits.CommandTimeout.D(),
		onAccept: func() { s.metrics.connections.WithLabelValues(lc.Name).Inc() },
		onReject: func(net.Addr) {
			s.metrics.refused.WithLabelValues(lc.Name).Inc()
			s.log.Warn("connection refused: listener full", "listener", lc.Name)
		},
	}
	var ln net.Listener = l.guard
	if lc.TLS == config.ListenerTLSImplicit {
		ln = tls.NewListener(ln, tlsCfg)
	}
	l.ln = ln

	srv := smtp.NewServer(smtp.BackendFunc(l.newSession))
	srv.Domain = s.hostname
	srv.MaxMessageBytes = int64(lc.Limits.MaxMessageSize)
	srv.MaxRecipients = lc.Limits.MaxRecipients
	// Command lines only (go-smtp is patched to leave message text to
	// ingest, which applies max_line_length).
	srv.MaxLineLength = maxCommandLine
	srv.ReadTimeout = lc.Limits.CommandTimeout.D()
	srv.WriteTimeout = lc.Limits.CommandTimeout.D()
	srv.EnableSMTPUTF8 = true
	srv.EnableDSN = true
	if lc.TLS == config.ListenerTLSStartTLS {
		srv.TLSConfig = tlsCfg
	}
	srv.ErrorLog = redactingPrinter{slogPrinter{s.log.With("listener", lc.Name)}, s.redactText}
	l.smtp = srv
	return l, nil
}

func (s *Server) closeListeners() {
	for _, l := range s.listeners {
		_ = l.ln.Close()
	}
}

// Shutdown stops accepting, lets sessions finish until ctx ends (then cuts
// them), and stops the delivery workers. What was accepted stays queued in
// the store for the next start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	var wg sync.WaitGroup
	for _, l := range s.listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.smtp.Shutdown(ctx); err != nil {
				l.guard.closeAll()
			}
		}()
	}
	wg.Wait()
	dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.delivery.Stop(dctx)
	return nil
}

// slogPrinter adapts go-smtp's Printf logger to slog.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) { p.l.Debug(fmt.Sprintf(format, v...)) }
func (p slogPrinter) Println(v ...any)               { p.l.Debug(fmt.Sprint(v...)) }
