package e2e

import (
	"testing"
	"time"

	"github.com/bccguard/bccguard/tests/harness"
)

// TestDataIdleTimeoutRepliesAtOnce: a client that falls silent in DATA for
// command_timeout gets its 421 4.4.2 then, not after go-smtp has drained
// the rest of the message. Before, the drain waited another idle period (a
// Net::SMTP client that cut its own message short waited twice
// command_timeout), and a client that sent a byte now and then kept it
// going until data_timeout. Here the client starts trickling bytes once
// the relay has logged the timeout, over STARTTLS with AUTH as in issue 19:
// the 421 must come all the same, and the connection must close.
func TestDataIdleTimeoutRepliesAtOnce(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r, tlsFiles := startAuthRelayLimits(t, sink, "{command_timeout: 1s, data_timeout: 1h}")

	c := harness.DialRaw(t, r.AddrOf("submission"), "")
	c.Expect("EHLO "+harness.ClientHelo, 250, "")
	c.StartTLS(tlsFiles.Client)
	c.Expect("EHLO "+harness.ClientHelo, 250, "")
	c.Expect("AUTH PLAIN "+plainResp(authUser, authPassword), 235, "")
	c.Expect("MAIL FROM:<"+authUser+">", 250, "")
	c.Expect("RCPT TO:<rcpt@example.net>", 250, "")
	c.Expect("DATA", 354, "")
	if err := c.Write("Subject: then silence\r\n"); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 30*time.Second, "the relay to log the idle timeout in DATA", func() bool {
		return logHas(r.Logs(), "message not accepted", "reading message data", "i/o timeout")
	})

	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if c.Write("x") != nil {
				return
			}
		}
	}()
	replies, closed := c.WaitClosed(30 * time.Second)
	checkTimeoutReply(t, replies, closed)
}
