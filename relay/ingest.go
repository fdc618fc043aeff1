package relay

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/internal/lineend"
	"github.com/bccguard/bccguard/policy"
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

	// The body scan counts addresses on the way to the spool: no second
	// pass over a stored message.
	scan := policy.NewScanner()
	defer scan.Close()
	w := io.MultiWriter(sp, scan)

	content := newContentReader(r, lineend.Mode(s.lst.cfg.BareNewlines), lim.MaxLineLength)
	defer content.release()
	head, err := content.header(int(lim.MaxHeaderSize))
	if err != nil {
		return "", policy.Decision{}, err
	}
	// DKIM verification is one more tee: it hashes the message as it
	// arrives and looks the keys up meanwhile, so that the policy can use
	// its result without a second pass over the spool.
	fields, _ := splitHeader(head)
	check := srv.dkim.startVerify(ctx, fields)
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

	in := srv.policyInput(s, head)
	in.Size = int64(len(head)) + n
	in.Body = scan.Result()
	var authResults string
	in.DKIM, authResults = srv.dkim.finishVerify(check, fields)
	dec, pol := srv.decide(ctx, in)
	if dec.Error != "" {
		srv.log.Warn("policy failed closed", "rule", dec.Rule, "err", dec.Error)
	}
	msg := store.Message{
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
		msg.Quarantine = srv.quarantineRecord(pol, in, dec, msg.ReceivedAt)
	}
	deliveries, err := srv.plan(dec, s.env.Recipients)
	if err != nil {
		return "", dec, err
	}
	if msg.Decision, err = encodeDecision(dec); err != nil {
		return "", policy.Decision{}, err
	}
	if _, err := sp.Commit(ctx, msg, deliveries); err != nil {
		return "", policy.Decision{}, fmt.Errorf("commit: %w", err)
	}
	srv.metrics.accepted.WithLabelValues(s.lst.cfg.Name).Inc()
	srv.metrics.receivedBytes.Add(float64(msg.Size))
	srv.countProtected(in, dec)
	srv.log.Info("message accepted", "queue_id", id, "listener", s.lst.cfg.Name,
		"client_ip", s.ip.String(), "user", s.user, "sender", srv.redact(s.env.Sender),
		"recipients", len(s.env.Recipients), "size", msg.Size, "action", string(dec.Action),
		"rule", dec.Rule, "monitor", dec.Monitor)
	srv.wakeDelivery()
	return id, dec, nil
}

// quarantineRecord is what a reviewer needs to see at a glance: the rule,
// why, the figures that triggered it and whom the message would have
// exposed.
func (srv *Server) quarantineRecord(pol Evaluator, in *policy.Input, dec policy.Decision, at time.Time) *store.Quarantine {
	var internal []string
	if d, ok := pol.(interface{ InternalDomains() []string }); ok {
		internal = d.InternalDomains()
	}
	vis := in.Visible
	if vis == nil {
		v := policy.ParseVisible(in.Header, internal)
		vis = &v
	}
	q := &store.Quarantine{
		Rule:   dec.Rule,
		Reason: dec.Reason,
		Figures: map[string]int{
			"visible.count":    vis.Count,
			"visible.external": vis.External,
			"visible.domains":  len(vis.Domains),
			"envelope.count":   len(in.Recipients),
			"body.addresses":   in.Body.Addresses,
		},
		ExpiresAt: at.Add(srv.cfg.Quarantine.Retention.D()),
	}
	for _, r := range vis.Recipients {
		q.Visible = append(q.Visible, store.VisibleRecipient{Name: r.Name, Address: r.Address, Field: r.Field})
	}
	return q
}

// plan turns a decision into the deliveries to queue. A rejection is an
// error the client sees; the policy engine and its rewrites build on this.
func (srv *Server) plan(dec policy.Decision, rcpts []store.Recipient) ([]store.NewDelivery, error) {
	switch dec.Effective() {
	case policy.Reject:
		return nil, rejectReply(dec.Message)
	case policy.Quarantine:
		return nil, nil
	case policy.Explode:
		out := make([]store.NewDelivery, 0, len(rcpts))
		for _, r := range rcpts {
			out = append(out, store.NewDelivery{Recipients: []store.Recipient{r}, Rewrite: store.RewriteExplode})
		}
		return out, nil
	case policy.Bcc:
		return []store.NewDelivery{{Recipients: rcpts, Rewrite: store.RewriteBcc}}, nil
	default:
		return []store.NewDelivery{{Recipients: rcpts, Rewrite: store.RewritePass}}, nil
	}
}

// receivedHeader is the trace field of RFC 5321 4.4. It names no recipient
// ("for <...>"): in an exploded mailing that would be one more place a
// recipient list could show.
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
	return fmt.Sprintf("Received: from %s ([%s])\r\n\tby %s (bccguard) with %s id %s;\r\n\t%s\r\n",
		helo, s.ip.String(), srv.hostname, proto, id, time.Now().Format(time.RFC1123Z))
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
