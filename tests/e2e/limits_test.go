package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
)

// TestLimits checks each listener limit with its reply code, on one relay
// with a listener per kind of limit. Senders of refused or cut-off
// transactions are tracked, and at the end none of them may have reached
// the upstream.
func TestLimits(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r := harness.Start(t, `
listeners:
  - name: smtp
    address: {{addr "smtp"}}
  - name: small
    address: {{addr "small"}}
    limits:
      max_message_size: 64KiB
      max_recipients: 3
      max_line_length: 1000
      max_header_size: 8KiB
  - name: few
    address: {{addr "few"}}
    limits: {max_connections: 2}
  - name: slow
    address: {{addr "slow"}}
    limits: {command_timeout: 2s, data_timeout: 4s}
`, harness.WithUpstream(sink.Addr()))

	// start opens a transaction on listener and gets the 354 for DATA.
	start := func(t *testing.T, listener, from string) *harness.RawConn {
		t.Helper()
		c := harness.DialRaw(t, r.AddrOf(listener), "")
		c.Expect("EHLO "+harness.ClientHelo, 250, "")
		c.Expect("MAIL FROM:<"+from+">", 250, "")
		c.Expect("RCPT TO:<rcpt@example.net>", 250, "")
		c.Expect("DATA", 354, "")
		return c
	}
	// sendAll writes data while the reply is awaited, so that a relay that
	// answers before reading everything cannot deadlock the test.
	sendAll := func(c *harness.RawConn, data string) harness.Reply {
		go c.Write(data)
		rep, _ := c.ReadReplyWithin(20 * time.Second)
		return rep
	}
	firstReply := func(rs []harness.Reply) harness.Reply {
		if len(rs) == 0 {
			return harness.Reply{}
		}
		return rs[0]
	}

	t.Run("group", func(t *testing.T) {
		t.Run("SIZE in MAIL FROM over max_message_size", func(t *testing.T) {
			t.Parallel()
			c := harness.DialRaw(t, r.AddrOf("small"), "")
			ehlo := c.Expect("EHLO "+harness.ClientHelo, 250, "")
			if size := hasExt(ehlo, "SIZE"); size != "SIZE 65536" {
				t.Errorf("EHLO advertises %q, want SIZE 65536", size)
			}
			if rep := c.Cmd("MAIL FROM:<sizeparam@example.com> SIZE=100000"); !rep.Is(552, "5.3.4") {
				t.Errorf("MAIL FROM with SIZE=100000 over a 64 KiB limit: want 552 5.3.4, got %s", rep)
			}
		})
		t.Run("data over max_message_size", func(t *testing.T) {
			t.Parallel()
			c := start(t, "small", "toobig@example.com")
			data := "Subject: too big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 98)+"\r\n", 1000) + ".\r\n"
			if rep := sendAll(c, data); !rep.Is(552, "5.3.4") {
				t.Errorf("100 KB of DATA over a 64 KiB limit: want 552 5.3.4, got %s", rep)
			}
		})
		t.Run("recipients over max_recipients", func(t *testing.T) {
			t.Parallel()
			c := harness.DialRaw(t, r.AddrOf("small"), "")
			c.Expect("EHLO "+harness.ClientHelo, 250, "")
			c.Expect("MAIL FROM:<many@example.com>", 250, "")
			for i := 1; i <= 3; i++ {
				c.Expect(fmt.Sprintf("RCPT TO:<r%d@example.net>", i), 250, "")
			}
			if rep := c.Cmd("RCPT TO:<r4@example.net>"); !rep.Is(452, "4.5.3") {
				t.Errorf("4th recipient over max_recipients 3: want 452 4.5.3, got %s", rep)
			}
			// The transaction goes on with the first three.
			c.Expect("DATA", 354, "")
			if err := c.Write("Subject: three\r\n\r\nx\r\n.\r\n"); err != nil {
				t.Fatal(err)
			}
			if rep, err := c.ReadReply(); err != nil || rep.Code != 250 {
				t.Fatalf("end of DATA: %s %v", rep, err)
			}
			ms := sink.WaitUntil(t, deliverTimeout, "the three-recipient message", func(ms []*smtptest.Message) bool {
				n := 0
				for _, m := range ms {
					if m.From == "many@example.com" {
						n += len(m.Rcpts)
					}
				}
				return n >= 3
			})
			var got []string
			for _, m := range ms {
				if m.From == "many@example.com" {
					got = append(got, m.RcptAddrs()...)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, []string{"r1@example.net", "r2@example.net", "r3@example.net"}) {
				t.Errorf("delivered to %v, want r1–r3", got)
			}
		})
		t.Run("line over max_line_length", func(t *testing.T) {
			t.Parallel()
			c := start(t, "small", "longline@example.com")
			// Refused at the end of the data, which is read to its end:
			// the session goes on (it used to be 500 mid-DATA, with the
			// connection lost and the client's mail never retried).
			data := "Subject: long line\r\n\r\n" + strings.Repeat("y", 2000) + "\r\nend\r\n.\r\n"
			if rep := sendAll(c, data); !rep.Is(554, "5.6.0") || !strings.Contains(rep.Text(), "longer than 1000 octets") {
				t.Errorf("2000-octet line over max_line_length 1000: want 554 5.6.0 saying so, got %s", rep)
			}
			c.Expect("NOOP", 250, "")
			c.Expect("MAIL FROM:<longline@example.com>", 250, "")
		})
		t.Run("command line over 4096 octets", func(t *testing.T) {
			t.Parallel()
			c := harness.DialRaw(t, r.AddrOf("smtp"), "")
			c.Expect("EHLO "+harness.ClientHelo, 250, "")
			if err := c.Write("NOOP " + strings.Repeat("n", 5000) + "\r\n"); err != nil {
				t.Fatal(err)
			}
			replies, closed := c.WaitClosed(20 * time.Second)
			if rep := firstReply(replies); rep.Code != 500 || !closed {
				t.Errorf("a 5000-octet command line: got %v (closed %v), want 500 and the connection closed", replies, closed)
			}
		})
		t.Run("header over max_header_size", func(t *testing.T) {
			t.Parallel()
			c := start(t, "small", "bighead@example.com")
			var b strings.Builder
			b.WriteString("Subject: big header\r\n")
			for i := 0; b.Len() < 20<<10; i++ {
				fmt.Fprintf(&b, "X-Filler-%03d: %s\r\n", i, strings.Repeat("h", 60))
			}
			b.WriteString("\r\nsmall body\r\n.\r\n")
			if rep := sendAll(c, b.String()); !rep.Is(552, "5.3.4") {
				t.Errorf("20 KB header over max_header_size 8 KiB: want 552 5.3.4, got %s", rep)
			}
		})
		t.Run("connections over max_connections", func(t *testing.T) {
			t.Parallel()
			addr := r.AddrOf("few")
			c1 := harness.DialRaw(t, addr, "")
			c2 := harness.DialRaw(t, addr, "")
			if c1.Greeting.Code != 220 || c2.Greeting.Code != 220 {
				t.Fatalf("first two connections: %s / %s", c1.Greeting, c2.Greeting)
			}
			c3 := harness.DialRaw(t, addr, "")
			if !c3.Greeting.Is(421, "4.7.0") {
				t.Errorf("3rd connection over max_connections 2: want 421 4.7.0 greeting, got %s", c3.Greeting)
			}
			if _, closed := c3.WaitClosed(20 * time.Second); !closed {
				t.Error("3rd connection not closed after 421")
			}
			c1.Expect("QUIT", 221, "")
			c1.Close()
			// A slot is free again once the relay has seen the first go.
			harness.Eventually(t, 20*time.Second, "a 220 greeting after one connection closed", func() bool {
				g, err := harness.Greet(addr, "")
				return err == nil && g.Code == 220
			})
		})
		t.Run("DATA slower than data_timeout", func(t *testing.T) {
			t.Parallel()
			c := start(t, "slow", "trickle@example.com")
			stop := make(chan struct{})
			defer close(stop)
			// One header line every 500 ms: never idle for command_timeout
			// (2 s), but the whole DATA outlasts data_timeout (4 s).
			go func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					case <-time.After(500 * time.Millisecond):
					}
					if c.Write(fmt.Sprintf("X-Trickle-%d: x\r\n", i)) != nil {
						return
					}
				}
			}()
			replies, closed := c.WaitClosed(60 * time.Second)
			checkTimeoutReply(t, replies, closed)
		})
		t.Run("idle in DATA beyond command_timeout", func(t *testing.T) {
			t.Parallel()
			c := start(t, "slow", "idle@example.com")
			if err := c.Write("Subject: then silence\r\n"); err != nil {
				t.Fatal(err)
			}
			replies, closed := c.WaitClosed(60 * time.Second)
			checkTimeoutReply(t, replies, closed)
		})
	})

	// Nothing that was refused or cut off may have been delivered: send a
	// marker after them all and, once it and everything queued is through,
	// look at what reached the upstream.
	harness.Send(t, r.Addr(), "marker@example.com", []string{"rcpt@example.net"}, harness.CRLF("Subject: marker\n\nx\n"))
	sink.WaitUntil(t, deliverTimeout, "the marker message", func(ms []*smtptest.Message) bool {
		return slices.ContainsFunc(ms, func(m *smtptest.Message) bool { return m.From == "marker@example.com" })
	})
	waitQueue(t, r, "nothing pending", func(q []harness.QueueEntry) bool { return pending(q) == 0 })
	for _, m := range sink.Messages() {
		if m.From != "marker@example.com" && m.From != "many@example.com" {
			t.Errorf("a refused or cut-off message reached the upstream: MAIL FROM:<%s>\n%s", m.From, m.Header)
		}
	}
	if !r.Running() {
		t.Error("bccguard is not running any more")
	}
}

// checkTimeoutReply: a client too slow in DATA gets 421 4.4.2 (temporary,
// so its mail is retried, never a 5xx that drops it) and is disconnected.
func checkTimeoutReply(t *testing.T, replies []harness.Reply, closed bool) {
	t.Helper()
	if len(replies) != 1 || !replies[0].Is(421, "4.4.2") {
		t.Errorf("want exactly one reply, 421 4.4.2, got %v", replies)
	}
	for _, rep := range replies {
		if rep.Code/100 == 5 {
			t.Errorf("a slow client got a permanent failure %s: its sender would drop the mail", rep)
		}
	}
	if !closed {
		t.Error("connection not closed after the timeout")
	}
}
