package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/bccguard/bccguard/internal/smtpaddr"
	"github.com/bccguard/bccguard/relay/dsn"
	"github.com/bccguard/bccguard/relay/store"
)

// failure is one recipient that will not get the message.
type failure struct {
	rcpt    store.Recipient
	diag    string
	status  *smtp.SMTPError // the upstream's reply, nil for network failures
	expired bool            // retried until the queue lifetime ran out
}

func failuresFor(rcpts []store.Recipient, diag string, se *smtp.SMTPError, expired bool) []failure {
	out := make([]failure, len(rcpts))
	for i, r := range rcpts {
		out[i] = failure{rcpt: r, diag: diag, status: se, expired: expired}
	}
	return out
}

// bounce queues a delivery status notification (RFC 3464) to the envelope
// sender for the failed recipients that asked for one (RFC 3461 NOTIFY). A
// message from the null sender never gets one: that is how bounce loops are
// avoided.
func (s *Server) bounce(ctx context.Context, msg store.Message, failed []failure) {
	log := s.log.With("queue_id", msg.ID)
	if msg.Envelope.Sender == "" {
		log.Info("no DSN: the message has the null sender", "failed_recipients", len(failed))
		return
	}
	rep := dsn.Report{
		ReportingMTA: s.hostname,
		ArrivalDate:  msg.ReceivedAt,
		EnvID:        msg.Envelope.EnvID,
		Ret:          msg.Envelope.Ret,
		From:         "MAILER-DAEMON@" + s.hostname,
		To:           msg.Envelope.Sender,
		QueueID:      msg.ID,
	}
	now := time.Now()
	for _, f := range failed {
		if !dsn.ShouldNotify(f.rcpt.Notify, "failed") {
			continue
		}
		// Final-Recipient is an RFC 822 address: quoted where it must be
		// ("a@b"@c.example, not a@b@c.example), as it went upstream.
		addr, err := smtpaddr.Wire(f.rcpt.Addr)
		if err != nil {
			addr = f.rcpt.Addr // an address that was never sendable
		}
		rs := dsn.RecipientStatus{
			Addr:        addr,
			ORcpt:       f.rcpt.ORcpt,
			Action:      "failed",
			RemoteMTA:   s.delivery.up.host(),
			LastAttempt: now,
		}
		switch {
		case f.expired:
			rs.Status = "4.4.7"
			if f.status != nil {
				rs.DiagnosticCode = "smtp; " + f.status.Error()
			}
		case f.status != nil:
			rs.Status = fmt.Sprintf("%d.%d.%d", f.status.EnhancedCode[0], f.status.EnhancedCode[1], f.status.EnhancedCode[2])
			if f.status.EnhancedCode == smtp.NoEnhancedCode || f.status.EnhancedCode == smtp.EnhancedCodeNotSet {
				rs.Status = ""
			}
			rs.DiagnosticCode = "smtp; " + f.status.Error()
		}
		rep.Recipients = append(rep.Recipients, rs)
	}
	if len(rep.Recipients) == 0 {
		log.Info("no DSN: the recipients asked for none", "failed_recipients", len(failed))
		return
	}
	id, err := s.queueDSN(ctx, msg, rep)
	if err != nil {
		// The failure is recorded on the delivery and logged; a DSN that
		// cannot be stored is not retried.
		log.Error("could not queue DSN", "err", err)
		return
	}
	s.metrics.dsns.Inc()
	log.Info("DSN queued", "dsn_queue_id", id, "recipients", len(rep.Recipients), "to", s.redact(msg.Envelope.Sender))
}

func (s *Server) queueDSN(ctx context.Context, msg store.Message, rep dsn.Report) (string, error) {
	sp, _, err := s.store.NewSpool(ctx)
	if err != nil {
		return "", err
	}
	defer sp.Abort()
	orig, err := s.store.Open(ctx, msg.ID)
	if err != nil {
		return "", err
	}
	defer orig.Close()
	if err := dsn.Write(sp, rep, orig); err != nil {
		return "", err
	}
	// HeaderLen 0: the DSN is relayed exactly as written (it has no Bcc:).
	id, err := sp.Commit(ctx, store.Message{
		Envelope: store.Envelope{Recipients: []store.Recipient{{Addr: msg.Envelope.Sender}}},
		Client:   store.Client{Listener: "bccguard-dsn"},
	}, []store.NewDelivery{{Recipients: []store.Recipient{{Addr: msg.Envelope.Sender}}, Rewrite: store.RewritePass}})
	if err != nil {
		return "", err
	}
	s.wakeDelivery()
	return id, nil
}
