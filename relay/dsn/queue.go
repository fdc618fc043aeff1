package dsn

import (
	"context"
	"fmt"

	"github.com/bccguard/bccguard/internal/smtpaddr"
	"github.com/bccguard/bccguard/relay/store"
)

// Listener is the listener name a queued DSN is stored under, so that the
// queue and the logs tell bccguard's own notices from client mail.
const Listener = "bccguard-dsn"

// NewReport starts the report on message m that the MTA at hostname sends
// to m's envelope sender, from MAILER-DAEMON. The caller adds the
// recipients (and an Explanation where the default does not fit).
func NewReport(hostname string, m store.Message) Report {
	return Report{
		ReportingMTA: hostname,
		ArrivalDate:  m.ReceivedAt,
		EnvID:        m.Envelope.EnvID,
		Ret:          m.Envelope.Ret,
		From:         "MAILER-DAEMON@" + hostname,
		To:           m.Envelope.Sender,
		QueueID:      m.ID,
	}
}

// Failed is the status of a recipient given up on. Its Final-Recipient is
// an RFC 822 address, quoted where it must be ("a@b"@c.example, not
// a@b@c.example), as the address went upstream.
func Failed(r store.Recipient) RecipientStatus {
	addr, err := smtpaddr.Wire(r.Addr)
	if err != nil {
		addr = r.Addr // an address that was never sendable
	}
	return RecipientStatus{Addr: addr, ORcpt: r.ORcpt, Action: "failed"}
}

// Commit stores the DSN written into sp as a message to sender (the
// original message's envelope sender). It is relayed exactly as written:
// a DSN has no Bcc: to remove and is never exploded.
func Commit(ctx context.Context, sp store.Spool, sender string) (string, error) {
	to := []store.Recipient{{Addr: sender}}
	id, err := sp.Commit(ctx, store.Message{
		Envelope: store.Envelope{Recipients: to},
		Client:   store.Client{Listener: Listener},
	}, store.PlanCopies(store.RewritePass, to))
	if err != nil {
		return "", fmt.Errorf("dsn commit: %w", err)
	}
	return id, nil
}
