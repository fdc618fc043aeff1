package relay

import (
	"context"
	"errors"

	"github.com/bccguard/bccguard/policy"
	"github.com/bccguard/bccguard/relay/limit"
	"github.com/bccguard/bccguard/relay/store"
)

// The session's part in the rate limits (relay/limit): a transaction is
// checked at MAIL FROM and at each RCPT TO, a quarantine limit turns the
// decision into a hold, and what a transaction not accepted took is given
// back when it ends.

// limitMail starts a new transaction's rate limit check at MAIL FROM (a
// MAIL inside a transaction is refused before, so none is under way).
func (s *session) limitMail(from string) error {
	s.limitEnd()
	if s.srv.limits == nil {
		return nil
	}
	tx, err := s.srv.limits.Mail(context.Background(), s.limitClient(), from)
	if err != nil {
		s.srv.metrics.rejected.WithLabelValues("rate_limit").Inc()
		return s.limitRefused(err)
	}
	s.limitTx = tx
	return nil
}

// limitRcpt counts one more recipient; a refusal is for this one only.
func (s *session) limitRcpt() error {
	if err := s.limitTx.Rcpt(context.Background()); err != nil {
		return s.limitRefused(err)
	}
	return nil
}

// limitEnd closes the transaction's check (RSET, after DATA, at the end of
// the session): unless its message was accepted, its counts are given back.
func (s *session) limitEnd() {
	s.limitTx.End()
	s.limitTx = nil
}

func (s *session) limitClient() limit.Client {
	return limit.Client{Listener: s.lst.cfg.Name, IP: s.ip, User: s.user}
}

func (s *session) limitRefused(err error) error {
	if !errors.As(err, new(*limit.Exceeded)) {
		s.log.Error("rate limits cannot be checked; deferring the transaction", "err", err)
	}
	return rateLimitReply(err)
}

// clientCounts fills in the policy's client.*_last_* variables, when the
// policy in force uses them.
func (s *session) clientCounts(ctx context.Context, in *policy.Input) error {
	if s.srv.limits == nil || !s.srv.policyUsesCounts() {
		return nil
	}
	c, err := s.limitTx.ClientCounts(ctx, len(s.env.Recipients))
	if err != nil {
		s.log.Error("client counts for the policy cannot be read; deferring the message", "err", err)
		return errRateUnavailable
	}
	in.Counts = policy.ClientCounts{
		MessagesLastMinute: c[0].Messages, MessagesLastHour: c[1].Messages, MessagesLastDay: c[2].Messages,
		RecipientsLastMinute: c[0].Recipients, RecipientsLastHour: c[1].Recipients, RecipientsLastDay: c[2].Recipients,
	}
	return nil
}

// policyUsesCounts reports whether the policy in force uses client counts.
func (srv *Server) policyUsesCounts() bool {
	srv.policyMu.RLock()
	p := srv.policy
	srv.policyMu.RUnlock()
	return p != nil && p.UsesClientCounts()
}

// rateLimitHold turns the decision into a hold with rule rate-limit:NAME
// when the transaction went over a quarantine limit, so security sees the
// burst. A rejection or a hold the policy decided stands: they already
// keep the message from going out, and their rule says more about it.
func (s *session) rateLimitHold(dec policy.Decision) policy.Decision {
	h := s.limitTx.Hold()
	if h == nil {
		return dec
	}
	switch dec.Effective() {
	case policy.Reject, policy.Quarantine:
		return dec
	}
	s.srv.metrics.decisions.WithLabelValues(string(policy.Quarantine), h.Rule(), "enforce").Inc()
	return policy.Decision{Action: policy.Quarantine, Rule: h.Rule(), Reason: h.Error(), Monitored: dec.Monitored}
}

// rateLimitFigures adds the count that held the message to what the
// review page shows.
func (s *session) rateLimitFigures(q *store.Quarantine) {
	h := s.limitTx.Hold()
	if h == nil || q == nil || q.Rule != h.Rule() {
		return
	}
	q.Figures["rate_limit.count"] = int(h.Count)
	q.Figures["rate_limit.max"] = int(h.Max)
	q.Figures["rate_limit.window_seconds"] = int(h.Window.Seconds())
}
