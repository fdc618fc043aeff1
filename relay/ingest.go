package relay

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/internal/mailhdr"
	"github.com/bccguard/bccguard/policy"
	"github.com/bccguard/bccguard/relay/rewrite"
	"github.com/bccguard/bccguard/relay/store"
)

// ingest streams one message from the client into a new spool, decides what
// to do with it and commits it. It returns the queue ID once the message and
// its deliveries are durable.
func (srv *Server) ingest(ctx context.Context, s *session, r io.Reader, lim config.Limits) (string, policy.Decision, error) {
	sp, id, err := srv.store.NewSpool(ctx)
	if err != nil {
		return "", policy.Decision{}, fmt.Errorf("new spool: %w", err)
	}
	defer sp.Abort()

	received := srv.receivedHeader(s, id)
	if _, err := io.WriteString(sp, received); err != nil {
		return "", policy.Decision{}, fmt.Errorf("spool: %w", err)
	}

	content := newContentReader(r, s.lst.cfg.BareNewlines, lim.MaxLineLength)
	defer content.release()
	head, err := content.header(int(lim.MaxHeaderSize))
	if err != nil {
		return "", policy.Decision{}, err
	}
	hdr := mailhdr.Read(head)
	in := srv.policyInput(s, head)
	in.Visible = policy.ReadVisible(hdr) // the header is read once

	// The body scan looks at the content on the way to the spool: no
	// second pass over a stored message. It is started once the header
	// is known, to watch for the recipients it names.
	scan := policy.NewScanner(srv.scanOptions(in))
	defer scan.Close()
	w := io.MultiWriter(sp, scan)
	// DKIM verification is one more tee: it hashes the message as it
	// arrives and looks the keys up meanwhile, so that the policy can use
	// its result without a second pass over the spool.
	check := srv.dkim.startVerify(ctx, hdr)
	if check != nil {
		defer check.Abort() // a no-op once its result is taken
		w = io.MultiWriter(sp, scan, check)
	}
	if _, err := w.Write(head); err != nil {
		return "", policy.Decision{}, fmt.Errorf("spool: %w", err)
	}
	n, err := content.body(w)
	if err != nil {
		return "", policy.Decision{}, err
	}
	scan.Close()
	if bare := content.bare(); bare > 0 {
		srv.metrics.bareNewlines.WithLabelValues(s.lst.cfg.Name, "normalized").Inc()
		s.log.Info("bare CR or LF made CRLF", "count", bare)
	}

	in.Size = int64(len(head)) + n
	in.Body = scan.Result()
	srv.countContent(in.Body)
	var authResults string
	in.DKIM, authResults = srv.dkim.finishVerify(check, hdr)
	if err := s.clientCounts(ctx, in); err != nil {
		return "", policy.Decision{}, err
	}
	dec, fig, pol := srv.decide(ctx, in)
	dec = s.rateLimitHold(dec)
	if dec.Error != "" {
		srv.log.Warn("policy failed closed", "rule", dec.Rule, "err", dec.Error)
	}
	msg := store.Message{
		ID:         id,
		Envelope:   s.env,
		Client:     s.clientInfo(),
		ReceivedAt: time.Now(),
		Size:       int64(len(received)) + in.Size,
		HeaderLen:  int64(len(received) + len(head)),
		// Known only now that the whole message is in: stored with the
		// record and written above every copy at delivery.
		AuthResults: authResults,
	}
	if dec.Effective() == policy.Quarantine {
		msg.Quarantine = srv.quarantineRecord(pol, in, dec, fig, msg.ReceivedAt)
		s.rateLimitFigures(msg.Quarantine)
	}
	deliveries, err := planFor(dec, s.env.Recipients)
	if err != nil {
		return "", dec, err
	}
	if msg.Decision, err = encodeDecision(dec); err != nil {
		return "", policy.Decision{}, err
	}
	notices := srv.notices(pol, in, dec, fig, msg, hdr)
	if _, err := sp.Commit(ctx, msg, deliveries, notices...); err != nil {
		return "", policy.Decision{}, fmt.Errorf("commit: %w", err)
	}
	s.limitTx.Accepted()
	if len(notices) > 0 {
		srv.notify.Wake()
	}
	srv.metrics.accepted.WithLabelValues(s.lst.cfg.Name).Inc()
	srv.metrics.receivedBytes.Add(float64(msg.Size))
	srv.countProtected(in, dec, fig)
	srv.log.Info("message accepted", "queue_id", id, "listener", s.lst.cfg.Name,
		"client_ip", s.ip.String(), "user", s.user, "sender", srv.redact(s.env.Sender),
		"recipients", len(s.env.Recipients), "size", msg.Size, "action", string(dec.Action),
		"rule", dec.Rule, "monitor", dec.Monitor)
	srv.Wake()
	return id, dec, nil
}

// quarantineRecord is what a reviewer needs to see at a glance: the rule,
// why, the figures the decision used (as policy.FigureTable names them)
// and whom the message would have exposed.
func (srv *Server) quarantineRecord(pol Evaluator, in *policy.Input, dec policy.Decision, fig policy.Figures, at time.Time) *store.Quarantine {
	q := &store.Quarantine{
		Rule:      dec.Rule,
		Reason:    dec.Reason,
		Figures:   fig.Counts(),
		Content:   in.Body.Content,
		ExpiresAt: at.Add(srv.cfg.Quarantine.Retention.D()),
	}
	q.BodyShows = in.BodyShowsRecipients()
	senderNoticeOf(pol, q)
	if vis := fig.Visible(); vis != nil {
		for _, r := range vis.Recipients {
			q.Visible = append(q.Visible, store.VisibleRecipient{Name: r.Name, Address: r.Address, Field: r.Field})
		}
	}
	return q
}

// receivedHeader is bccguard's trace field for the message (see
// rewrite.Received).
func (srv *Server) receivedHeader(s *session, id string) string {
	proto := "ESMTP"
	if s.tls {
		proto += "S"
	}
	if s.user != "" {
		proto += "A"
	}
	helo := safeToken(s.conn.Hostname())
	if helo == "" {
		helo = "unknown"
	}
	return rewrite.Received(helo, s.ip.String(), srv.hostname, proto, id, time.Now())
}

// safeToken keeps the visible ASCII of a client-supplied name, without
// parentheses that would unbalance the comment in Received:.
func safeToken(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(b) < 255; i++ {
		c := s[i]
		if c > 32 && c < 127 && c != '(' && c != ')' && c != '\\' {
			b = append(b, c)
		}
	}
	return string(b)
}
