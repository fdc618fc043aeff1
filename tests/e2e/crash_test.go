package e2e

import (
	"testing"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
)

// TestKill9AfterAcceptIsDeliveredAfterRestart: a message answered with 250
// survives kill -9 before it could be delivered, and goes out after restart.
func TestKill9AfterAcceptIsDeliveredAfterRestart(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	sink.Stop() // no delivery can happen before the kill
	r := harness.Start(t, "", harness.WithUpstream(sink.Addr()))

	msgs := [][]byte{
		harness.CRLF("From: alice@example.com\nTo: bob@example.net\nSubject: survives kill -9 (1)\n\none\n"),
		harness.CRLF("From: alice@example.com\nTo: carol@example.org\nSubject: survives kill -9 (2)\n\ntwo\n"),
	}
	harness.Send(t, r.Addr(), "alice@example.com", []string{"bob@example.net"}, msgs[0])
	harness.Send(t, r.Addr(), "alice@example.com", []string{"carol@example.org"}, msgs[1])
	r.Kill() // right after the second 250

	sink.Start()
	r.Restart()
	ms := sink.WaitUntil(t, deliverTimeout, "both messages after the restart", func(ms []*smtptest.Message) bool {
		seen := map[string]bool{}
		for _, m := range ms {
			for _, a := range m.RcptAddrs() {
				seen[a] = true
			}
		}
		return seen["bob@example.net"] && seen["carol@example.org"]
	})
	for _, m := range ms {
		i := 0
		if m.RcptAddrs()[0] == "carol@example.org" {
			i = 1
		}
		hdr, body := harness.SplitMessage(msgs[i])
		relayedCopy(t, m, hdr, body)
	}
}
