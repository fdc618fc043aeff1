package harness

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

func TestSinkRecordsExactly(t *testing.T) {
	s := NewSink(t)
	raw := CRLF("From: a@example.com\nTo: b@example.net\nSubject: hi\n\n.leading dot\nbody ünicode\n\n")
	ret := "FULL"
	reply := SendWith(t, s.Addr(), "a@example.com", []string{"b@example.net", "c@example.org"}, bytes.NewReader(raw), &SendOptions{
		MailOpts: &smtp.MailOptions{Return: smtp.DSNReturn(ret), EnvelopeID: "env-1", UTF8: true},
		RcptOpts: &smtp.RcptOptions{Notify: []smtp.DSNNotify{smtp.DSNNotifyFailure}, OriginalRecipientType: smtp.DSNAddressTypeRFC822, OriginalRecipient: "b@example.net"},
	})
	if reply == "" {
		t.Error("no reply text")
	}
	ms := s.WaitFor(t, 1, 10*time.Second)
	m := ms[0]
	if !bytes.Equal(m.Data, raw) {
		t.Fatalf("data differs:\n got %q\nwant %q", m.Data, raw)
	}
	hdr, body := SplitMessage(raw)
	if !bytes.Equal(m.Header, hdr) || !bytes.Equal(m.Body(), body) {
		t.Errorf("header/body split: got %q / %q", m.Header, m.Body())
	}
	if m.Sum != sha256.Sum256(raw) || m.BodySum != sha256.Sum256(body) || m.Size != int64(len(raw)) || m.BodySize != int64(len(body)) {
		t.Error("sizes or sums wrong")
	}
	if m.From != "a@example.com" || len(m.Rcpts) != 2 || m.Rcpts[1].Addr != "c@example.org" {
		t.Errorf("envelope: %+v", m)
	}
	if m.MailOpts.Return != smtp.DSNReturnFull || m.MailOpts.EnvelopeID != "env-1" || !m.MailOpts.UTF8 || m.MailOpts.Body != smtp.Body8BitMIME {
		t.Errorf("mail options: %+v", m.MailOpts)
	}
	if r := m.Rcpts[0].Opts; len(r.Notify) != 1 || r.Notify[0] != smtp.DSNNotifyFailure || r.OriginalRecipient != "b@example.net" {
		t.Errorf("rcpt options: %+v", r)
	}
	if m.Helo != ClientHelo {
		t.Errorf("helo %q", m.Helo)
	}
}

func TestSinkRepliesAndRestarts(t *testing.T) {
	s := NewSink(t)
	raw := CRLF("Subject: x\n\nx\n")
	s.RejectRcpt("bad@example.net", SMTPErr(550, "5.1.1", "no such user"))
	_, err := TrySend(s.Addr(), "a@example.com", []string{"bad@example.net"}, bytes.NewReader(raw), nil)
	if code, enh := Code(err); code != 550 || enh != "5.1.1" {
		t.Fatalf("rcpt: want 550 5.1.1, got %v", err)
	}
	Send(t, s.Addr(), "a@example.com", []string{"good@example.net"}, raw)

	s.RejectData(SMTPErr(451, "4.3.0", "try later"))
	_, err = TrySend(s.Addr(), "a@example.com", []string{"good@example.net"}, bytes.NewReader(raw), nil)
	if code, enh := Code(err); code != 451 || enh != "4.3.0" {
		t.Fatalf("data: want 451 4.3.0, got %v", err)
	}
	if len(s.Rejected()) != 1 || s.Count() != 1 || s.RejectedRcpts() != 1 {
		t.Fatalf("counts: rejected %d accepted %d rcpt-rejected %d", len(s.Rejected()), s.Count(), s.RejectedRcpts())
	}
	s.AcceptAll()

	s.Stop()
	if _, err := TrySend(s.Addr(), "a@example.com", []string{"good@example.net"}, bytes.NewReader(raw), &SendOptions{Timeout: 5 * time.Second}); err == nil {
		t.Fatal("sink accepted mail while stopped")
	}
	s.Start()
	Send(t, s.Addr(), "a@example.com", []string{"good@example.net"}, raw)
	s.WaitFor(t, 2, 10*time.Second)
}

func TestSinkHashOnly(t *testing.T) {
	s := NewSink(t, HashOnly())
	const size = 3<<20 + 17
	hdr := CRLF("From: a@example.com\nSubject: big\n\n")
	SendWith(t, s.Addr(), "a@example.com", []string{"b@example.net"}, io.MultiReader(bytes.NewReader(hdr), NewBody(size)), nil)
	m := s.WaitFor(t, 1, 30*time.Second)[0]
	if m.Data != nil {
		t.Error("hash-only sink kept the data")
	}
	if !bytes.Equal(m.Header, hdr) || m.BodySize != size || m.BodySum != BodySum(size) {
		t.Errorf("header %q, body %d bytes, sum match %v", m.Header, m.BodySize, m.BodySum == BodySum(size))
	}
}

// TestSinkStopRightAfterStart: a sink stopped at once refuses connections
// (Serve may not have registered its listener with go-smtp yet).
func TestSinkStopRightAfterStart(t *testing.T) {
	for i := 0; i < 20; i++ {
		s := NewSink(t)
		s.Stop()
		if c, err := net.DialTimeout("tcp", s.Addr(), 2*time.Second); err == nil {
			c.Close()
			t.Fatalf("stopped sink accepted a connection (round %d)", i)
		}
		s.Start()
		s.Stop()
	}
}
