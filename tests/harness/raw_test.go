package harness

import (
	"strings"
	"testing"
	"time"

	"github.com/bccguard/bccguard/internal/smtptest"
)

func TestSendRawPipelining(t *testing.T) {
	s := NewSink(t)
	rs := SendRaw(t, s.Addr(),
		Cmd("EHLO "+ClientHelo),
		Pipeline("MAIL FROM:<a@example.com>", "RCPT TO:<b@example.net>", "DATA"),
		Content("Subject: raw\r\n\r\n..dot\r\n.\r\n"),
		Cmd("QUIT"),
	)
	want := []int{220, 250, 250, 250, 354, 250, 221}
	if len(rs) != len(want) {
		t.Fatalf("replies: %v", rs)
	}
	for i, r := range rs {
		if r.Code != want[i] {
			t.Errorf("reply %d: want %d, got %s", i, want[i], r)
		}
	}
	if len(rs[1].Lines) < 3 || rs[5].Enhanced != "2.0.0" {
		t.Errorf("multi-line EHLO or enhanced code not parsed: %v / %v", rs[1], rs[5])
	}
	m := s.WaitFor(t, 1, 10*time.Second)[0]
	if string(m.Data) != "Subject: raw\r\n\r\n.dot\r\n" {
		t.Errorf("data %q", m.Data)
	}
}

func TestRawConnSeesClose(t *testing.T) {
	s := NewSink(t)
	c := DialRaw(t, s.Addr(), "127.0.0.2")
	if c.Greeting.Code != 220 {
		t.Fatalf("greeting %s", c.Greeting)
	}
	c.Expect("EHLO "+ClientHelo, 250, "")
	c.Expect("QUIT", 221, "2.0.0")
	if _, closed := c.WaitClosed(10 * time.Second); !closed {
		t.Error("server did not close after QUIT")
	}
	if m := s.Messages(); len(m) != 0 {
		t.Error("unexpected message")
	}
	// The source address was 127.0.0.2.
	if got := c.Conn().LocalAddr().String(); !strings.HasPrefix(got, "127.0.0.2:") {
		t.Errorf("local address %s", got)
	}
}

func TestSwaksToSink(t *testing.T) {
	tlsFiles := WriteTLSCert(t, t.TempDir())
	s := NewSink(t, smtptest.StartTLS(tlsFiles.Server))
	res := Swaks(t, "--server", s.Addr(), "--from", "a@example.com", "--to", "b@example.net", "-tls", "--header", "Subject: swaks")
	if res.ExitCode != 0 {
		t.Fatalf("swaks exit %d:\n%s", res.ExitCode, res.Output)
	}
	m := s.WaitFor(t, 1, 10*time.Second)[0]
	if !m.TLS || !strings.Contains(string(m.Header), "Subject: swaks\r\n") || m.Helo != ClientHelo {
		t.Errorf("tls %v helo %q header %q", m.TLS, m.Helo, m.Header)
	}
}
