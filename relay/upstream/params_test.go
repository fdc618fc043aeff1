package upstream

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/bccguard/bccguard/internal/smtptest"
)

// TestParams checks that MAIL and RCPT parameters reach a go-smtp server
// intact, and only when it advertises their extension (go-smtp refuses an
// unadvertised one with 504, so sending it would fail the test).
func TestParams(t *testing.T) {
	dsnTx := func(utf8 bool) *Transaction {
		return &Transaction{
			From: "s@example.com", Size: 1234, Ret: "hdrs", EnvID: "id+1=2 x/y", UTF8: utf8,
			Rcpts: []Recipient{
				{Addr: "a@example.com", Notify: []string{"success", "FAILURE"}, ORcpt: "rfc822;o+x=y@example.com"},
				{Addr: "b@example.com", Notify: []string{"NEVER"}},
				{Addr: "c@example.com", ORcpt: "utf-8;ü+=\\@example.com"},
				{Addr: "d@example.com", ORcpt: "rfc822;é@example.com"}, // non-ASCII: sent as utf-8
			},
			Body: body("S: x\r\n\r\ny\r\n"),
		}
	}
	dsnRcptOpts := []smtp.RcptOptions{
		{Notify: []smtp.DSNNotify{"SUCCESS", "FAILURE"}, OriginalRecipientType: "RFC822", OriginalRecipient: "o+x=y@example.com"},
		{Notify: []smtp.DSNNotify{"NEVER"}},
		{OriginalRecipientType: "UTF-8", OriginalRecipient: "ü+=\\@example.com"},
		{OriginalRecipientType: "UTF-8", OriginalRecipient: "é@example.com"},
	}
	for _, tc := range []struct {
		name      string
		configure func(*smtp.Server)
		tx        *Transaction
		mail      smtp.MailOptions
		rcpt      []smtp.RcptOptions
	}{
		{
			name:      "dsn",
			configure: func(s *smtp.Server) { s.EnableDSN = true },
			tx:        dsnTx(false),
			mail:      smtp.MailOptions{Body: smtp.Body8BitMIME, Size: 1234, Return: "HDRS", EnvelopeID: "id+1=2 x/y"},
			rcpt:      dsnRcptOpts,
		},
		{
			name:      "dsn and utf8",
			configure: func(s *smtp.Server) { s.EnableDSN, s.EnableSMTPUTF8 = true, true },
			tx:        dsnTx(true),
			mail:      smtp.MailOptions{Body: smtp.Body8BitMIME, Size: 1234, Return: "HDRS", EnvelopeID: "id+1=2 x/y", UTF8: true},
			rcpt:      dsnRcptOpts,
		},
		{
			name: "no dsn: dropped",
			tx:   dsnTx(false),
			mail: smtp.MailOptions{Body: smtp.Body8BitMIME, Size: 1234},
			rcpt: make([]smtp.RcptOptions, 4),
		},
		{
			name:      "utf8",
			configure: func(s *smtp.Server) { s.EnableSMTPUTF8 = true },
			tx:        &Transaction{From: "ü@example.com", UTF8: true, Rcpts: rcpts("δ@example.com"), Body: body("x\r\n")},
			mail:      smtp.MailOptions{Body: smtp.Body8BitMIME, UTF8: true},
			rcpt:      make([]smtp.RcptOptions, 1),
		},
		{
			name: "no size",
			tx:   &Transaction{From: "s@example.com", Rcpts: rcpts("a@example.com"), Body: body("x\r\n")},
			mail: smtp.MailOptions{Body: smtp.Body8BitMIME},
			rcpt: make([]smtp.RcptOptions, 1),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, smtptest.Configure(tc.configure))
			c := dialSink(t, ts)
			if _, err := c.Send(tc.tx); err != nil {
				t.Fatal(err)
			}
			msgs := ts.Messages()
			if len(msgs) != 1 {
				t.Fatalf("%d messages", len(msgs))
			}
			if got := msgs[0].MailOpts; !reflect.DeepEqual(got, tc.mail) {
				t.Errorf("MAIL options %+v, want %+v", got, tc.mail)
			}
			if got := rcptOpts(msgs[0]); !reflect.DeepEqual(got, tc.rcpt) {
				t.Errorf("RCPT options %+v, want %+v", got, tc.rcpt)
			}
		})
	}
}

// TestSizeLimit: SIZE= over the advertised limit is refused at MAIL.
func TestSizeLimit(t *testing.T) {
	ts := startServer(t, smtptest.Configure(func(s *smtp.Server) { s.MaxMessageBytes = 1000 }))
	c := dialSink(t, ts)
	if c.MaxSize() != 1000 {
		t.Errorf("MaxSize = %d", c.MaxSize())
	}
	_, err := c.Send(&Transaction{From: "s@example.com", Size: 5000, Rcpts: rcpts("a@example.com"), Body: body("x\r\n")})
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 552 {
		t.Fatalf("err = %v, want 552", err)
	}
}

// TestInvalidTransaction: what cannot be sent safely is refused before
// anything is written, and the Conn stays usable.
func TestInvalidTransaction(t *testing.T) {
	ts := startServer(t, smtptest.Configure(func(s *smtp.Server) { s.EnableDSN = true }))
	c := dialSink(t, ts)
	for _, tx := range []*Transaction{
		{From: "a@example.com", Ret: "ALL", Rcpts: rcpts("b@example.com")},
		{From: "a@example.com", EnvID: "\x00", Rcpts: rcpts("b@example.com")},
		{From: "a@example.com", Rcpts: []Recipient{{Addr: "b@example.com", Notify: []string{"SOMETIMES"}}}},
		{From: "a@example.com", Rcpts: []Recipient{{Addr: "b@example.com", ORcpt: "nosemicolon"}}},
		{From: "a@example.com", Rcpts: []Recipient{{Addr: "b@example.com", ORcpt: "bad type;x@example.com"}}},
	} {
		if tx.Body == nil {
			tx.Body = body("x\r\n")
		}
		if _, err := c.Send(tx); err == nil || !strings.Contains(err.Error(), "upstream: invalid") {
			t.Errorf("Send(%+v) = %v, want an invalid-parameter error", tx, err)
		}
	}
	if _, err := c.Send(&Transaction{From: "a@example.com", Rcpts: rcpts("b@example.com")}); err == nil {
		t.Error("Send without a Body succeeded")
	}
	if _, err := c.Send(&Transaction{From: "a@example.com", Body: body("x\r\n")}); err == nil {
		t.Error("Send without recipients succeeded")
	}
	if mails := ts.Mails(); mails != 0 {
		t.Errorf("%d MAIL commands reached the server", mails)
	}
	if _, err := c.Send(&Transaction{From: "a@example.com", Rcpts: rcpts("b@example.com"), Body: body("x\r\n")}); err != nil {
		t.Fatal(err)
	}
}

// TestUnsendableAddresses: an address that cannot be written in a command
// is never written. A recipient's gets a permanent 553 5.1.3 of its own
// while the others are delivered; the sender's fails the transaction with
// a 553 5.1.7 before anything is sent.
func TestUnsendableAddresses(t *testing.T) {
	ts := startServer(t)
	c := dialSink(t, ts)
	_, err := c.Send(&Transaction{From: "a@example.com\r\nRCPT TO:<x@example.com>", Rcpts: rcpts("b@example.com"), Body: body("x\r\n")})
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 553 || se.EnhancedCode != (smtp.EnhancedCode{5, 1, 7}) {
		t.Fatalf("unsendable sender: %v, want 553 5.1.7", err)
	}
	if mails := ts.Mails(); mails != 0 {
		t.Fatalf("%d MAIL commands reached the server", mails)
	}
	bad := []string{"u@c.example\x00@evil.example", "b@example.com>", "", "u\r\nRSET@example.com"}
	res, err := c.Send(&Transaction{From: "a@example.com", Rcpts: rcpts(append(bad, "ok@example.com")...), Body: body("x\r\n")})
	if err != nil {
		t.Fatal(err)
	}
	for i := range bad {
		if !errors.As(res[i], &se) || se.Code != 553 || se.EnhancedCode != (smtp.EnhancedCode{5, 1, 3}) {
			t.Errorf("recipient %q: %v, want 553 5.1.3", bad[i], res[i])
		}
	}
	if res[len(bad)] != nil {
		t.Errorf("the good recipient: %v", res[len(bad)])
	}
	got := ts.Messages()
	if len(got) != 1 || strings.Join(got[0].RcptAddrs(), ",") != "ok@example.com" {
		t.Fatalf("the server received %+v, want one message to ok@example.com only", got)
	}
	// Every recipient unsendable: nothing is sent, each gets its 553.
	res, err = c.Send(&Transaction{From: "a@example.com", Rcpts: rcpts(bad[0]), Body: body("x\r\n")})
	if err != nil || len(res) != 1 || !errors.As(res[0], &se) || se.Code != 553 {
		t.Fatalf("only an unsendable recipient: %v, %v", res, err)
	}
	if mails := ts.Mails(); mails != 1 {
		t.Errorf("%d MAIL commands reached the server, want 1", mails)
	}
}

// TestQuotedLocalParts: a stored address whose local part needs quotes
// goes out quoted, so the upstream gets the mailbox that was accepted
// (go-smtp, patched, hands the server the path as written).
func TestQuotedLocalParts(t *testing.T) {
	ts := startServer(t)
	c := dialSink(t, ts)
	stored := []string{"victim@evil.example@c.example", "u,v@c.example", `u\@c.example`, "plain@c.example"}
	want := []string{`"victim@evil.example"@c.example`, `"u,v"@c.example`, `"u\\"@c.example`, "plain@c.example"}
	if _, err := c.Send(&Transaction{From: "sender@a.example@b.example", Rcpts: rcpts(stored...), Body: body("x\r\n")}); err != nil {
		t.Fatal(err)
	}
	got := ts.Messages()
	if len(got) != 1 {
		t.Fatalf("%d messages", len(got))
	}
	if got[0].From != `"sender@a.example"@b.example` || strings.Join(got[0].RcptAddrs(), " ") != strings.Join(want, " ") {
		t.Errorf("MAIL FROM %s, RCPT TO %q; want \"sender@a.example\"@b.example and %q", got[0].From, got[0].RcptAddrs(), want)
	}
}
