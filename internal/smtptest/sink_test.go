package smtptest

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/bccguard/bccguard/internal/testcert"
)

const clientHelo = "client.example.org"

// send runs one transaction against addr with go-smtp's client and returns
// the first error (an *smtp.SMTPError for a refusal).
func send(addr, from string, to []string, data []byte, mo *smtp.MailOptions, ro *smtp.RcptOptions) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello(clientHelo); err != nil {
		return err
	}
	return transact(c, from, to, data, mo, ro)
}

func transact(c *smtp.Client, from string, to []string, data []byte, mo *smtp.MailOptions, ro *smtp.RcptOptions) error {
	if err := c.Mail(from, mo); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r, ro); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	return w.Close()
}

func code(err error) (int, smtp.EnhancedCode) {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return 0, smtp.EnhancedCode{}
	}
	return se.Code, se.EnhancedCode
}

func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

func TestSinkRecordsExactly(t *testing.T) {
	s := NewSink(t)
	raw := crlf("From: a@example.com\nTo: b@example.net\nSubject: hi\n\n.leading dot\nbody ünicode\n\n")
	err := send(s.Addr(), "a@example.com", []string{"b@example.net", "c@example.org"}, raw,
		&smtp.MailOptions{Return: smtp.DSNReturnFull, EnvelopeID: "env-1", UTF8: true, Body: smtp.Body8BitMIME},
		&smtp.RcptOptions{Notify: []smtp.DSNNotify{smtp.DSNNotifyFailure}, OriginalRecipientType: smtp.DSNAddressTypeRFC822, OriginalRecipient: "b@example.net"})
	if err != nil {
		t.Fatal(err)
	}
	m := s.WaitFor(t, 1, 10*time.Second)[0]
	if !bytes.Equal(m.Data, raw) {
		t.Fatalf("data differs:\n got %q\nwant %q", m.Data, raw)
	}
	i := bytes.Index(raw, []byte("\r\n\r\n")) + 4
	hdr, body := raw[:i], raw[i:]
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
	if m.Helo != clientHelo || m.TLS || m.User != "" {
		t.Errorf("helo %q, tls %v, user %q", m.Helo, m.TLS, m.User)
	}
	if w := s.WireText(); !strings.Contains(w, "\r\n..leading dot\r\n") {
		t.Errorf("wire log lacks the dot-stuffed line: %q", w)
	}
	if s.Connections() != 1 || s.Mails() != 1 || s.DataTransfers() != 1 || s.Accepted() != 1 {
		t.Errorf("counts: conns %d mails %d datas %d accepted %d", s.Connections(), s.Mails(), s.DataTransfers(), s.Accepted())
	}
}

func TestSinkRepliesAndRestarts(t *testing.T) {
	s := NewSink(t)
	raw := crlf("Subject: x\n\nx\n")
	s.RejectRcpt("bad@example.net", SMTPErr(550, "5.1.1", "no such user"))
	err := send(s.Addr(), "a@example.com", []string{"bad@example.net"}, raw, nil, nil)
	if c, enh := code(err); c != 550 || enh != (smtp.EnhancedCode{5, 1, 1}) {
		t.Fatalf("rcpt: want 550 5.1.1, got %v", err)
	}
	if err := send(s.Addr(), "a@example.com", []string{"good@example.net"}, raw, nil, nil); err != nil {
		t.Fatal(err)
	}

	s.RejectData(SMTPErr(451, "4.3.0", "try later"))
	err = send(s.Addr(), "a@example.com", []string{"good@example.net"}, raw, nil, nil)
	if c, enh := code(err); c != 451 || enh != (smtp.EnhancedCode{4, 3, 0}) {
		t.Fatalf("data: want 451 4.3.0, got %v", err)
	}
	if len(s.Rejected()) != 1 || s.Count() != 1 || s.RejectedRcpts() != 1 {
		t.Fatalf("counts: rejected %d accepted %d rcpt-rejected %d", len(s.Rejected()), s.Count(), s.RejectedRcpts())
	}
	s.AcceptAll()

	s.Stop()
	if err := send(s.Addr(), "a@example.com", []string{"good@example.net"}, raw, nil, nil); err == nil {
		t.Fatal("sink accepted mail while stopped")
	}
	s.Start()
	if err := send(s.Addr(), "a@example.com", []string{"good@example.net"}, raw, nil, nil); err != nil {
		t.Fatal(err)
	}
	s.WaitFor(t, 2, 10*time.Second)
}

// TestSinkHooks: OnMail and OnBody see the transaction and may refuse it or
// break the connection; the counters count what reached the sink.
func TestSinkHooks(t *testing.T) {
	s := NewSink(t)
	s.OnMail(func(c *smtp.Conn, m *Message) error {
		switch m.From {
		case "perm@example.com":
			return SMTPErr(550, "5.7.1", "no")
		case "close@example.com":
			return c.Conn().Close()
		}
		return nil
	})
	s.OnBody(func(c *smtp.Conn, m *Message, r io.Reader) error {
		if m.From == "cut@example.com" {
			_, _ = io.ReadFull(r, make([]byte, 3))
			_ = c.Conn().Close()
			return errors.New("closed")
		}
		return nil
	})
	raw := crlf("Subject: x\n\nx\n")
	if c, _ := code(send(s.Addr(), "perm@example.com", []string{"b@example.net"}, raw, nil, nil)); c != 550 {
		t.Errorf("MAIL refusal: got %d", c)
	}
	if err := send(s.Addr(), "close@example.com", []string{"b@example.net"}, raw, nil, nil); err == nil {
		t.Error("closed at MAIL, yet the transaction went through")
	}
	if err := send(s.Addr(), "cut@example.com", []string{"b@example.net"}, raw, nil, nil); err == nil {
		t.Error("closed in the body, yet the transaction went through")
	}
	if err := send(s.Addr(), "ok@example.com", []string{"b@example.net"}, raw, nil, nil); err != nil {
		t.Fatal(err)
	}
	if s.Mails() != 4 || s.DataTransfers() != 2 || s.Count() != 1 || s.Connections() != 4 {
		t.Errorf("counts: mails %d datas %d accepted %d conns %d", s.Mails(), s.DataTransfers(), s.Count(), s.Connections())
	}
}

// TestSinkAuthAndConfigure: PlainAuth offers AUTH (here without TLS, by
// Configure) and records the user; without it AUTH is not offered.
func TestSinkAuthAndConfigure(t *testing.T) {
	s := NewSink(t, PlainAuth(func(user, pass string) error {
		if user != "relay" || pass != "pw" {
			return errors.New("bad password")
		}
		return nil
	}), Configure(func(srv *smtp.Server) { srv.AllowInsecureAuth, srv.EnableDSN = true, false }))
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello(clientHelo); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("DSN"); ok {
		t.Error("DSN offered although Configure turned it off")
	}
	if err := c.Auth(sasl.NewPlainClient("", "relay", "wrong")); err == nil {
		t.Error("wrong password accepted")
	}
	if err := c.Auth(sasl.NewPlainClient("", "relay", "pw")); err != nil {
		t.Fatal(err)
	}
	if err := transact(c, "a@example.com", []string{"b@example.net"}, crlf("Subject: x\n\nx\n"), nil, nil); err != nil {
		t.Fatal(err)
	}
	if m := s.WaitFor(t, 1, 10*time.Second)[0]; m.User != "relay" {
		t.Errorf("user %q", m.User)
	}

	plain := NewSink(t, Configure(func(srv *smtp.Server) { srv.AllowInsecureAuth = true }))
	c2, err := smtp.Dial(plain.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Hello(clientHelo); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c2.Extension("AUTH"); ok {
		t.Error("AUTH offered without an Auth option")
	}
}

func TestSinkHashOnly(t *testing.T) {
	s := NewSink(t, HashOnly())
	hdr := crlf("From: a@example.com\nSubject: big\n\n")
	body := bytes.Repeat([]byte("0123456789abcd\r\n"), 3<<16+1) // over 3 MiB
	size := int64(len(body))
	if err := send(s.Addr(), "a@example.com", []string{"b@example.net"}, append(bytes.Clone(hdr), body...), nil, nil); err != nil {
		t.Fatal(err)
	}
	m := s.WaitFor(t, 1, 30*time.Second)[0]
	if m.Data != nil {
		t.Error("hash-only sink kept the data")
	}
	if !bytes.Equal(m.Header, hdr) || m.BodySize != size || m.BodySum != sha256.Sum256(body) {
		t.Errorf("header %q, body %d bytes, sum match %v", m.Header, m.BodySize, m.BodySum == sha256.Sum256(body))
	}
}

func TestSinkDiscard(t *testing.T) {
	s := NewSink(t, Discard())
	for range 3 {
		if err := send(s.Addr(), "a@example.com", []string{"b@example.net"}, crlf("Subject: x\n\nx\n"), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if s.Accepted() != 3 || s.Count() != 0 || len(s.Messages()) != 0 {
		t.Errorf("accepted %d, kept %d", s.Accepted(), s.Count())
	}
}

// TestSinkListen: a sink listens where the Listen option says.
func TestSinkListen(t *testing.T) {
	var got string
	s := NewSink(t, Listen(func(t testing.TB) net.Listener {
		l := listenLocal(t)
		got = l.Addr().String()
		return l
	}))
	if s.Addr() != got {
		t.Errorf("Addr %s, listener %s", s.Addr(), got)
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

// TestSinkStartTLS: a message sent after STARTTLS is marked TLS, and the
// connection counts once although go-smtp starts a new session on it.
func TestSinkStartTLS(t *testing.T) {
	cert := testcert.New(t, "127.0.0.1")
	s := NewSink(t, StartTLS(&tls.Config{Certificates: []tls.Certificate{cert.TLS}}))
	c, err := smtp.DialStartTLS(s.Addr(), &tls.Config{RootCAs: cert.Pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := transact(c, "a@example.com", []string{"b@example.net"}, crlf("Subject: x\n\nx\n"), nil, nil); err != nil {
		t.Fatal(err)
	}
	if m := s.WaitFor(t, 1, 10*time.Second)[0]; !m.TLS {
		t.Error("message not marked TLS")
	}
	if n := s.Connections(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}
