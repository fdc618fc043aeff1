package deliver

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/relay/dsn"
	"github.com/bccguard/bccguard/relay/store"
)

// Bouncer tells a message's sender about the recipients that will not get
// it. Bounce does not fail: the failures are recorded on the deliveries
// whatever becomes of the notice.
type Bouncer interface {
	Bounce(ctx context.Context, msg store.Message, failed []Failure)
}

// Failure is one recipient that will not get the message.
type Failure struct {
	Recipient store.Recipient
	Diag      string
	Status    *smtp.SMTPError // the upstream's reply, nil for network failures
	Expired   bool            // retried until the queue lifetime ran out
}

func failuresFor(rcpts []store.Recipient, diag string, se *smtp.SMTPError, expired bool) []Failure {
	out := make([]Failure, len(rcpts))
	for i, r := range rcpts {
		out[i] = Failure{Recipient: r, Diag: diag, Status: se, Expired: expired}
	}
	return out
}

// dsnQueue is the Bouncer bccguard runs with: it queues a delivery status
// notification in the store, delivered like any other message.
type dsnQueue struct {
	store     store.Store
	hostname  string // Reporting-MTA, and the DSN's sender's domain
	remoteMTA string // the upstream's host, for Remote-MTA
	log       *slog.Logger
	sent      prometheus.Counter
	redact    func(string) string
	wake      func()
}

// Bounce queues a delivery status notification (RFC 3464) to the envelope
// sender for the failed recipients that asked for one (RFC 3461 NOTIFY). A
// message from the null sender never gets one: that is how bounce loops are
// avoided.
func (q *dsnQueue) Bounce(ctx context.Context, msg store.Message, failed []Failure) {
	log := q.log.With("queue_id", msg.ID)
	if msg.Envelope.Sender == "" {
		log.Info("no DSN: the message has the null sender", "failed_recipients", len(failed))
		return
	}
	rep := dsn.NewReport(q.hostname, msg)
	now := time.Now()
	for _, f := range failed {
		if !dsn.ShouldNotify(f.Recipient.Notify, "failed") {
			continue
		}
		rs := dsn.Failed(f.Recipient)
		rs.RemoteMTA, rs.LastAttempt = q.remoteMTA, now
		switch {
		case f.Expired:
			rs.Status = "4.4.7"
			if f.Status != nil {
				rs.DiagnosticCode = "smtp; " + f.Status.Error()
			}
		case f.Status != nil:
			rs.Status = fmt.Sprintf("%d.%d.%d", f.Status.EnhancedCode[0], f.Status.EnhancedCode[1], f.Status.EnhancedCode[2])
			if f.Status.EnhancedCode == smtp.NoEnhancedCode || f.Status.EnhancedCode == smtp.EnhancedCodeNotSet {
				rs.Status = ""
			}
			rs.DiagnosticCode = "smtp; " + f.Status.Error()
		}
		rep.Recipients = append(rep.Recipients, rs)
	}
	if len(rep.Recipients) == 0 {
		log.Info("no DSN: the recipients asked for none", "failed_recipients", len(failed))
		return
	}
	id, err := q.queue(ctx, msg, rep)
	if err != nil {
		// The failure is recorded on the delivery and logged; a DSN that
		// cannot be stored is not retried.
		log.Error("could not queue DSN", "err", err)
		return
	}
	q.sent.Inc()
	log.Info("DSN queued", "dsn_queue_id", id, "recipients", len(rep.Recipients), "to", q.redact(msg.Envelope.Sender))
}

func (q *dsnQueue) queue(ctx context.Context, msg store.Message, rep dsn.Report) (string, error) {
	sp, _, err := q.store.NewSpool(ctx)
	if err != nil {
		return "", fmt.Errorf("dsn spool: %w", err)
	}
	defer sp.Abort()
	orig, err := q.store.Open(ctx, msg.ID)
	if err != nil {
		return "", fmt.Errorf("dsn: open the original: %w", err)
	}
	defer orig.Close()
	if err := dsn.Write(sp, rep, orig); err != nil {
		return "", fmt.Errorf("dsn: write: %w", err)
	}
	id, err := dsn.Commit(ctx, sp, msg.Envelope.Sender)
	if err != nil {
		return "", err
	}
	q.wake()
	return id, nil
}
