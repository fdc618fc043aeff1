package deliver

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/bccguard/bccguard/internal/oneline"
	"github.com/bccguard/bccguard/relay/store"
)

// classify turns a transaction's result into the delivery's new state,
// queueing DSNs for recipients that failed for good.
func (d *Deliverer) classify(ctx context.Context, msg store.Message, dl store.Delivery, res []error, err error) store.Outcome {
	now := time.Now()
	// Time an operator held the delivery does not count (queue hold).
	expired := now.Sub(msg.ReceivedAt)-dl.HeldFor >= d.queue.Lifetime.D()
	retry := store.Outcome{State: store.StateDeferred, NextAttempt: now.Add(d.backoff(dl.Attempts))}
	if err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code >= 500 {
			d.metrics.deliveries.WithLabelValues("bounced", "5xx").Inc()
			d.bouncer.Bounce(ctx, msg, failuresFor(dl.Recipients, se.Error(), se, false))
			return store.Outcome{State: store.StateBounced, Error: oneline.ASCII(se.Error(), 500)}
		}
		class := "network"
		if se != nil {
			class = "4xx"
		}
		text := oneline.ASCII(err.Error(), 500)
		if expired {
			d.metrics.deliveries.WithLabelValues("expired", class).Inc()
			d.bouncer.Bounce(ctx, msg, failuresFor(dl.Recipients, text, se, true))
			return store.Outcome{State: store.StateExpired, Error: text}
		}
		d.metrics.deliveries.WithLabelValues("deferred", class).Inc()
		retry.Error = text
		return retry
	}
	// Per-recipient results: delivered, bounced (5xx) or still to retry (4xx).
	var again []store.Recipient
	var failed []Failure
	var lastErr string
	for i, r := range res {
		se, _ := r.(*smtp.SMTPError)
		switch {
		case r == nil:
			d.metrics.deliveries.WithLabelValues("delivered", "2xx").Inc()
		case se != nil && se.Code >= 500:
			d.metrics.deliveries.WithLabelValues("bounced", "5xx").Inc()
			failed = append(failed, Failure{Recipient: dl.Recipients[i], Diag: se.Error(), Status: se})
			lastErr = se.Error()
		case expired:
			d.metrics.deliveries.WithLabelValues("expired", "4xx").Inc()
			failed = append(failed, Failure{Recipient: dl.Recipients[i], Diag: r.Error(), Status: se, Expired: true})
			lastErr = r.Error()
		default:
			d.metrics.deliveries.WithLabelValues("deferred", "4xx").Inc()
			again = append(again, dl.Recipients[i])
			lastErr = r.Error()
		}
	}
	if len(failed) > 0 {
		d.bouncer.Bounce(ctx, msg, failed)
	}
	if len(again) > 0 {
		retry.Recipients = again
		retry.Error = oneline.ASCII(lastErr, 500)
		return retry
	}
	if len(failed) == len(res) {
		return store.Outcome{State: store.StateBounced, Error: oneline.ASCII(lastErr, 500)}
	}
	return store.Outcome{State: store.StateDelivered, Error: oneline.ASCII(lastErr, 500)}
}

// backoff is the delay before retry n+1: RetryFirst doubling up to RetryMax,
// with ±10% jitter so a burst deferred together does not retry together.
func (d *Deliverer) backoff(attempts int) time.Duration {
	q := d.queue
	b := q.RetryFirst.D()
	for i := 0; i < attempts && b < q.RetryMax.D(); i++ {
		b *= 2
	}
	b = min(b, q.RetryMax.D())
	j := time.Duration(float64(b) * (rand.Float64()*0.2 - 0.1))
	return b + j
}
