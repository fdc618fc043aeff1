package notify

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"github.com/bccguard/bccguard/relay/store"
)

// Listener names of the messages bccguard queues itself: they were never
// received, and the policy never saw them.
const (
	ListenerNotify = "bccguard-notify" // to an email channel
	ListenerNotice = "bccguard-notice" // to a sender
)

// Spooler is what email needs of the store: a message queued with one
// delivery, as the relay queues a DSN.
type Spooler interface {
	NewSpool(ctx context.Context) (store.Spool, string, error)
}

// queueMail queues a message written by write to one recipient, from the
// null sender (so that a failure cannot bounce back into a loop), with one
// delivery relayed as written: it has no Bcc: and no list to hide, and it
// never meets the policy. It returns the queue ID.
func queueMail(ctx context.Context, st Spooler, listener, to string, write func(io.Writer) error) (string, error) {
	sp, _, err := st.NewSpool(ctx)
	if err != nil {
		return "", err
	}
	defer sp.Abort()
	if err := write(sp); err != nil {
		return "", err
	}
	rcpt := []store.Recipient{{Addr: to}}
	return sp.Commit(ctx, store.Message{
		Envelope: store.Envelope{Recipients: rcpt},
		Client:   store.Client{Listener: listener},
	}, store.PlanCopies(store.RewritePass, rcpt))
}

// writeText writes a plain-text message (UTF-8, quoted-printable) with h
// and body (LF line ends).
func writeText(w io.Writer, h *gomail.Header, body string) error {
	h.Set("MIME-Version", "1.0")
	h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	bw, err := gomail.CreateSingleInlineWriter(w, *h)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(bw, strings.ReplaceAll(body, "\n", "\r\n")); err != nil {
		return err
	}
	return bw.Close()
}

func header(host, from, fromName, to, subject, autoSubmitted string, now time.Time) (*gomail.Header, error) {
	var h gomail.Header
	h.SetAddressList("From", []*gomail.Address{{Name: fromName, Address: from}})
	h.SetAddressList("To", []*gomail.Address{{Address: to}})
	h.SetSubject(subject)
	h.SetDate(now)
	if err := h.GenerateMessageIDWithHostname(host); err != nil {
		return nil, err
	}
	h.Set("Auto-Submitted", autoSubmitted)
	return &h, nil
}

// writeEventMail writes ev as an email to an email channel.
func writeEventMail(w io.Writer, host, from, to string, ev *Event, now time.Time) error {
	subject := "[bccguard] " + headline(ev)
	if len([]rune(subject)) > 200 {
		subject = SafeText(subject, 200)
	}
	h, err := header(host, from, "bccguard", to, subject, "auto-generated", now)
	if err != nil {
		return err
	}
	h.Set("X-Bccguard-Event", ev.Event)
	h.Set("X-Bccguard-Id", ev.ID)
	return writeText(w, h, details(ev))
}

// writeSenderNotice writes a notice to a sender, from MAILER-DAEMON as a
// DSN is and marked auto-replied. It names the message by Subject, Date
// and Message-ID only: never its recipients.
func writeSenderNotice(w io.Writer, host string, p *SenderPayload, now time.Time) error {
	h, err := header(host, "MAILER-DAEMON@"+host, "Mail Delivery System", p.To, p.Subject, "auto-replied", now)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString(strings.TrimSpace(p.Text))
	b.WriteString("\n\nThe message:\n")
	for _, f := range []struct{ k, v string }{{"Subject", p.Orig.Subject}, {"Date", p.Orig.Date}, {"Message-ID", p.Orig.MessageID}} {
		v := f.v
		if v == "" {
			v = "(none)"
		}
		fmt.Fprintf(&b, "  %s: %s\n", f.k, v)
	}
	return writeText(w, h, b.String())
}
