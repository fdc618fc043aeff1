package e2e

import (
	"testing"

	"github.com/bccguard/bccguard/tests/harness"
)

// TestNestedMailRefused: a MAIL FROM inside a transaction is refused with
// 503 5.5.1, as Postfix does, and the transaction under way is kept. (It
// used to replace the envelope while go-smtp kept the recipients: the
// message then got "250 queued" with no delivery at all.)
func TestNestedMailRefused(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r := harness.Start(t, "", harness.WithUpstream(sink.Addr()))
	c := harness.DialRaw(t, r.Addr(), "")
	c.Expect("EHLO "+harness.ClientHelo, 250, "")
	c.Expect("MAIL FROM:<a@brand.example>", 250, "")
	c.Expect("RCPT TO:<x@example.net>", 250, "")
	c.Expect("MAIL FROM:<b@brand.example>", 503, "5.5.1")
	c.Expect("DATA", 354, "")
	c.Write("From: a@brand.example\r\nTo: x@example.net, y@example.org\r\nSubject: s\r\n\r\nhi\r\n.\r\n")
	if rep, err := c.ReadReply(); err != nil || !rep.Is(250, "2.0.0") {
		t.Fatalf("end of DATA: %v %v", rep, err)
	}
	m := sink.WaitFor(t, 1, deliverTimeout)[0]
	if m.From != "a@brand.example" || len(m.Rcpts) != 1 || m.Rcpts[0].Addr != "x@example.net" {
		t.Fatalf("delivered from %q to %v, want the first envelope", m.From, m.RcptAddrs())
	}
	// After RSET a new transaction starts as usual.
	c.Expect("MAIL FROM:<b@brand.example>", 250, "")
	c.Expect("RSET", 250, "")
	c.Expect("MAIL FROM:<b@brand.example>", 250, "")
}
