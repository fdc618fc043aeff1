package e2e

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
	"github.com/emersion/go-smtp"
)

// A message as a CRM tool sends it, with the awkward parts: a leading dot
// and a lone dot (dot-stuffing), trailing white space, 8-bit text, a long
// line, a folded header and an empty line at the end.
var sample = harness.CRLF(`Received: from crm.example.com by mx.example.com; Sat, 21 Nov 2026 10:00:00 +0000
From: "Alice Example" <alice@example.com>
To: Bob Example <bob@example.net>
Subject: Quarterly report =?utf-8?q?=C3=BCbersicht?=
Date: Sat, 21 Nov 2026 10:00:00 +0000
Message-ID: <report-1@example.com>
X-Folded: first part
	second part
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Hello Bob,
.this line starts with a dot
.
..two dots
trailing spaces   ` + "\t" + `
Grüße aus Köln — ünïcödé
` + strings.Repeat("0123456789", 95) + `

-- 
Alice

`)

func TestRelayKeepsMessageByteIdentical(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r := harness.Start(t, "", harness.WithUpstream(sink.Addr()))

	reply := harness.Send(t, r.Addr(), "alice@example.com", []string{"bob@example.net"}, sample)
	queueID(t, reply)

	m := sink.WaitFor(t, 1, deliverTimeout)[0]
	if m.From != "alice@example.com" || !slices.Equal(m.RcptAddrs(), []string{"bob@example.net"}) {
		t.Errorf("envelope: MAIL FROM:<%s> RCPT TO:%v", m.From, m.RcptAddrs())
	}
	hdr, body := harness.SplitMessage(sample)
	relayedCopy(t, m, hdr, body)
}

func TestRelayRemovesBcc(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r := harness.Start(t, "", harness.WithUpstream(sink.Addr()))

	// Bcc fields in the forms clients write them: plain, folded, lower case.
	withBcc := harness.CRLF(`From: alice@example.com
To: bob@example.net
Bcc: carol@example.org
Subject: with bcc
bcc: Dave <dave@example.org>,
 erin@example.org
Date: Sat, 21 Nov 2026 10:00:00 +0000

body stays
Bcc: this line is in the body and stays
`)
	want := harness.CRLF(`From: alice@example.com
To: bob@example.net
Subject: with bcc
Date: Sat, 21 Nov 2026 10:00:00 +0000

`)
	_, body := harness.SplitMessage(withBcc)
	rcpts := []string{"bob@example.net", "carol@example.org", "dave@example.org", "erin@example.org"}
	harness.Send(t, r.Addr(), "alice@example.com", rcpts, withBcc)

	// However the relay groups the recipients into deliveries, every one of
	// them gets a copy without Bcc: and otherwise unchanged.
	ms := sink.WaitUntil(t, deliverTimeout, "copies for all four recipients", func(ms []*smtptest.Message) bool {
		n := 0
		for _, m := range ms {
			n += len(m.Rcpts)
		}
		return n >= len(rcpts)
	})
	var got []string
	for _, m := range ms {
		got = append(got, m.RcptAddrs()...)
		if harness.HasField(m.Header, "Bcc") {
			t.Errorf("copy to %v still has a Bcc: field:\n%s", m.RcptAddrs(), m.Header)
		}
		relayedCopy(t, m, want, body)
	}
	slices.Sort(got)
	if !slices.Equal(got, rcpts) {
		t.Errorf("recipients: got %v, want %v", got, rcpts)
	}
}

func TestRelayCarriesDSNAndUTF8Parameters(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r := harness.Start(t, "", harness.WithUpstream(sink.Addr()))

	msg := harness.CRLF("From: alice@example.com\nTo: bob@example.net\nSubject: dsn\n\nx\n")
	harness.SendWith(t, r.Addr(), "alice@example.com", []string{"bob@example.net"}, bytes.NewReader(msg), &harness.SendOptions{
		MailOpts: &smtp.MailOptions{Return: smtp.DSNReturnHeaders, EnvelopeID: "crm-batch-42"},
		RcptOpts: &smtp.RcptOptions{
			Notify:                []smtp.DSNNotify{smtp.DSNNotifyFailure, smtp.DSNNotifyDelayed},
			OriginalRecipientType: smtp.DSNAddressTypeRFC822,
			OriginalRecipient:     "bob@example.net",
		},
	})
	m := sink.WaitFor(t, 1, deliverTimeout)[0]
	if m.MailOpts.Return != smtp.DSNReturnHeaders || m.MailOpts.EnvelopeID != "crm-batch-42" {
		t.Errorf("MAIL parameters at the upstream: RET=%q ENVID=%q, want RET=HDRS ENVID=crm-batch-42", m.MailOpts.Return, m.MailOpts.EnvelopeID)
	}
	if len(m.Rcpts) != 1 {
		t.Fatalf("recipients %v", m.RcptAddrs())
	}
	o := m.Rcpts[0].Opts
	slices.Sort(o.Notify)
	if !slices.Equal(o.Notify, []smtp.DSNNotify{smtp.DSNNotifyDelayed, smtp.DSNNotifyFailure}) ||
		o.OriginalRecipient != "bob@example.net" || o.OriginalRecipientType != smtp.DSNAddressTypeRFC822 {
		t.Errorf("RCPT parameters at the upstream: NOTIFY=%v ORCPT=%s;%s, want NOTIFY=FAILURE,DELAY ORCPT=rfc822;bob@example.net",
			o.Notify, o.OriginalRecipientType, o.OriginalRecipient)
	}

	// An internationalised address needs SMTPUTF8 end to end.
	utf := harness.CRLF("From: jörg@example.com\nTo: zoë@example.net\nSubject: utf8\n\nx\n")
	harness.SendWith(t, r.Addr(), "jörg@example.com", []string{"zoë@example.net"}, bytes.NewReader(utf), &harness.SendOptions{
		MailOpts: &smtp.MailOptions{UTF8: true},
	})
	ms := sink.WaitUntil(t, deliverTimeout, "the SMTPUTF8 message", func(ms []*smtptest.Message) bool {
		return slices.ContainsFunc(ms, func(m *smtptest.Message) bool { return strings.Contains(string(m.Header), "Subject: utf8\r\n") })
	})
	u := ms[slices.IndexFunc(ms, func(m *smtptest.Message) bool { return strings.Contains(string(m.Header), "Subject: utf8\r\n") })]
	if u.From != "jörg@example.com" || !slices.Equal(u.RcptAddrs(), []string{"zoë@example.net"}) || !u.MailOpts.UTF8 {
		t.Errorf("SMTPUTF8 message at the upstream: MAIL FROM:<%s> SMTPUTF8=%v RCPT TO:%v", u.From, u.MailOpts.UTF8, u.RcptAddrs())
	}
	_, body := harness.SplitMessage(utf)
	hdr, _ := harness.SplitMessage(utf)
	relayedCopy(t, u, hdr, body)
}
