package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
)

// qmgrFrom is Postfix's qmgr log line for a message it queued.
var qmgrFrom = regexp.MustCompile(`postfix/qmgr\[\d+\]: [0-9A-F]+: from=<([^>]*)>`)

// TestSmugglingThroughPostfix sends every smuggling form through bccguard
// to a real Postfix (a throwaway `postfix -c DIR`, relaying to a capturing
// sink): on the default listener (bare_newlines: reject) each is refused,
// on a normalize listener each is relayed as one message; in neither case
// does Postfix see a second message, the smuggled MAIL FROM, or a bare line
// end.
func TestSmugglingThroughPostfix(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	pf := harness.StartPostfix(t, harness.PostfixOptions{Relayhost: sink.Addr()})
	r := harness.Start(t, passAll+`
listeners:
  - {name: smtp, address: "{{addr "smtp"}}"}
  - {name: norm, address: "{{addr "norm"}}", bare_newlines: normalize}
`, harness.WithUpstream(pf.Addr))

	accepted := 0
	for _, listener := range []string{"smtp", "norm"} {
		c := harness.DialRaw(t, r.AddrOf(listener), "")
		c.Expect("EHLO "+harness.ClientHelo, 250, "")
		for i, f := range smuggling {
			from := fmt.Sprintf("form%d.%s@brand.example", i, listener)
			rep := transact(t, c, from, []string{"rcpt@example.net"}, f.content, f.bdat)
			switch {
			case listener == "smtp" && !rep.Is(550, "5.6.0"):
				t.Errorf("%s on the default listener: got %s, want 550 5.6.0", f.name, rep)
			case listener == "norm" && rep.Code != 250:
				t.Errorf("%s on the normalize listener: got %s, want 250", f.name, rep)
			case listener == "norm":
				accepted++
			}
			c.Expect("RSET", 250, "")
		}
	}
	// A marker last: once it is through Postfix, so is everything before.
	harness.Send(t, r.AddrOf("norm"), "marker@brand.example", []string{"rcpt@example.net"}, harness.CRLF("Subject: marker\n\nx\n"))
	ms := sink.WaitUntil(t, deliverTimeout, "the marker through Postfix", func(ms []*smtptest.Message) bool {
		for _, m := range ms {
			if m.From == "marker@brand.example" {
				return len(ms) >= accepted+1
			}
		}
		return false
	})
	waitQueue(t, r, "nothing pending", func(q []harness.QueueEntry) bool { return pending(q) == 0 })

	if len(ms) != accepted+1 {
		t.Errorf("Postfix relayed %d messages, want %d (each accepted form once, and the marker)", len(ms), accepted+1)
	}
	var queued []string
	for _, m := range qmgrFrom.FindAllStringSubmatch(pf.Maillog(), -1) {
		queued = append(queued, m[1])
	}
	if len(queued) != accepted+1 {
		t.Errorf("Postfix queued %d messages (%v), want %d", len(queued), queued, accepted+1)
	}
	for _, from := range queued {
		if !strings.HasSuffix(from, "@brand.example") {
			t.Errorf("Postfix queued a message from <%s>: smuggled", from)
		}
	}
	for _, m := range ms {
		if strings.HasPrefix(m.From, "form") && strings.Contains(m.From, ".smtp@") {
			t.Errorf("a message refused by the default listener reached Postfix: %s", m.From)
		}
		if i := bare(m.Data); i >= 0 {
			t.Errorf("MAIL FROM:<%s>: a bare line end came out of Postfix at %d", m.From, i)
		}
	}
	noSmuggledMail(t, sink)
}
