package e2e

import (
	"bytes"
	"mime"
	"strings"
	"testing"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
	"github.com/emersion/go-smtp"
)

// checkDSN checks that m is an RFC 3464 failure report to sender about rcpt
// with status code status.
func checkDSN(t *testing.T, m *smtptest.Message, sender, rcpt, status string) {
	t.Helper()
	if m.From != "" {
		t.Errorf("DSN sent with MAIL FROM:<%s>, want the null sender <>", m.From)
	}
	if len(m.Rcpts) != 1 || m.Rcpts[0].Addr != sender {
		t.Errorf("DSN sent to %v, want the envelope sender %s", m.RcptAddrs(), sender)
	}
	var ctype string
	for _, f := range harness.Fields(m.Header) {
		if strings.EqualFold(f.Name, "Content-Type") {
			_, v, _ := strings.Cut(string(f.Raw), ":")
			ctype = v
		}
	}
	mt, params, err := mime.ParseMediaType(strings.TrimSpace(ctype))
	if err != nil || mt != "multipart/report" || !strings.EqualFold(params["report-type"], "delivery-status") || params["boundary"] == "" {
		t.Fatalf("DSN Content-Type %q (%v), want multipart/report; report-type=delivery-status\n%s", ctype, err, m.Data)
	}
	body := string(m.Body())
	for _, want := range []string{
		"message/delivery-status",
		"Final-Recipient: rfc822; " + rcpt,
		"Action: failed",
		"Status: " + status,
	} {
		if !containsFold(body, want) {
			t.Errorf("DSN lacks %q:\n%s", want, m.Data)
		}
	}
}

func containsFold(s, sub string) bool {
	norm := func(x string) string { return strings.ToLower(strings.Join(strings.Fields(x), " ")) }
	return strings.Contains(norm(s), norm(sub))
}

func TestUpstream5xxSendsDSNToSender(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		reject func(s *smtptest.Sink)
		status string
	}{
		{"at RCPT", func(s *smtptest.Sink) {
			s.RejectRcpt("nobody@example.net", smtptest.SMTPErr(550, "5.1.1", "no such user here"))
		}, "5.1.1"},
		{"at DATA", func(s *smtptest.Sink) {
			// Refuse the message itself, but not the DSN (from <>).
			s.OnData(func(m *smtptest.Message) *smtp.SMTPError {
				if m.From != "" {
					return smtptest.SMTPErr(554, "5.6.0", "content rejected")
				}
				return nil
			})
		}, "5.6.0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			sink := harness.NewSink(t)
			c.reject(sink)
			r := harness.Start(t, "", harness.WithUpstream(sink.Addr()))
			orig := harness.CRLF("From: sender@example.com\nTo: nobody@example.net\nSubject: will bounce\nMessage-ID: <bounce-1@example.com>\n\nbody\n")
			harness.Send(t, r.Addr(), "sender@example.com", []string{"nobody@example.net"}, orig)

			m := sink.WaitFor(t, 1, deliverTimeout)[0]
			checkDSN(t, m, "sender@example.com", "nobody@example.net", c.status)
			if !bytes.Contains(m.Data, []byte("bounce-1@example.com")) {
				t.Errorf("DSN does not identify the original message (Message-ID bounce-1@example.com):\n%s", m.Data)
			}
			waitQueue(t, r, "nothing pending after the bounce", func(q []harness.QueueEntry) bool { return pending(q) == 0 })
			if n := sink.Count(); n != 1 {
				t.Errorf("upstream accepted %d messages, want the one DSN", n)
			}
		})
	}
}

// TestNoDSNForNullSender: a message from <> that bounces produces no DSN.
func TestNoDSNForNullSender(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	sink.RejectRcpt("nobody@example.net", smtptest.SMTPErr(550, "5.1.1", "no such user here"))
	r := harness.Start(t, "", harness.WithUpstream(sink.Addr()))

	bounce := harness.CRLF("From: MAILER-DAEMON@example.com\nTo: nobody@example.net\nSubject: a bounce itself\n\nbody\n")
	harness.Send(t, r.Addr(), "", []string{"nobody@example.net"}, bounce)
	harness.Eventually(t, deliverTimeout, "the upstream to refuse the null-sender message", func() bool { return sink.RejectedRcpts() >= 1 })
	waitQueue(t, r, "nothing pending after the refusal", func(q []harness.QueueEntry) bool { return pending(q) == 0 })

	// A second bounce, from a real sender, does produce a DSN; by the time
	// it has arrived, a DSN for the first would have too.
	harness.Send(t, r.Addr(), "sender@example.com", []string{"nobody@example.net"},
		harness.CRLF("From: sender@example.com\nTo: nobody@example.net\nSubject: second\n\nbody\n"))
	sink.WaitFor(t, 1, deliverTimeout)
	waitQueue(t, r, "nothing pending after the second bounce", func(q []harness.QueueEntry) bool { return pending(q) == 0 })
	for _, m := range sink.Messages() {
		if bytes.Contains(m.Data, []byte("a bounce itself")) || len(m.Rcpts) != 1 || m.Rcpts[0].Addr != "sender@example.com" {
			t.Errorf("upstream got a message other than the DSN for the second bounce: MAIL FROM:<%s> RCPT TO:%v\n%s", m.From, m.RcptAddrs(), m.Data)
			continue
		}
		checkDSN(t, m, "sender@example.com", "nobody@example.net", "5.1.1")
	}
}
