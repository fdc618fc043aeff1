package e2e

import (
	"bytes"
	"strings"
	"testing"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
)

// Perl's Net::SMTP (with IO::Socket::SSL and Authen::SASL) is what many CRM
// tools are built on. These tests send through the real binary with it, as
// such a tool does: STARTTLS with the certificate verified, AUTH, one RCPT
// per customer, DATA, datasend, dataend.

// crmMailing is a mailing as a CRM writes it: every customer of cs in To:,
// a multipart body with 8-bit UTF-8 text and a line holding a lone dot. It
// has CRLF line ends, as the relay receives it.
func crmMailing(cs []customer, subject string) []byte {
	return []byte("From: Brand Phones <crm@example.com>\r\n" +
		addressField("To", cs) +
		"Subject: " + subject + "\r\n" +
		"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\n" +
		"Message-ID: <" + strings.ReplaceAll(strings.ToLower(subject), " ", "-") + "@example.com>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=\"=_survey_b1\"\r\n" +
		"\r\n" + surveyBody)
}

// lf is msg with LF line ends, as a script or a program holds it.
func lf(msg []byte) []byte { return bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n")) }

// withSubject is a sink condition: the transactions whose header has the
// Subject: field subject.
func withSubject(ms []*smtptest.Message, subject string) []*smtptest.Message {
	var out []*smtptest.Message
	for _, m := range ms {
		if bytes.Contains(m.Header, []byte("\r\nSubject: "+subject+"\r\n")) {
			out = append(out, m)
		}
	}
	return out
}

func rcptAddrs(cs []customer) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Addr
	}
	return out
}

// TestNetSMTPMailingOverSTARTTLSAuth sends a mailing to customers of
// several domains with Net::SMTP over STARTTLS with AUTH PLAIN and with
// AUTH LOGIN; the built-in policy explodes it, and each customer's copy at
// the upstream shows that customer alone.
func TestNetSMTPMailingOverSTARTTLSAuth(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r, tlsFiles := startAuthRelay(t, sink)
	cs := customers(6)
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		subject := "Net::SMTP mailing, AUTH " + mech
		sent := crmMailing(cs, subject)
		res := harness.NetSMTP(t, harness.NetSMTPOptions{
			Server: r.AddrOf("submission"), StartTLS: true, CAFile: tlsFiles.CertFile, TLSName: "localhost",
			User: authUser, Password: authPassword, Mech: mech,
			From: authUser, To: rcptAddrs(cs), Message: lf(sent),
		})
		if !res.OK() {
			t.Fatalf("Net::SMTP, AUTH %s over STARTTLS: %s (timed out: %v)\ntranscript:\n%s", mech, res.Result, res.TimedOut, res.Transcript)
		}
		queueID(t, res.Reply())
		if !strings.Contains(res.Transcript, "AUTH "+mech) {
			t.Errorf("Net::SMTP did not use AUTH %s:\n%s", mech, res.Transcript)
		}
		ms := sink.WaitUntil(t, deliverTimeout, "the copies of "+subject, func(ms []*smtptest.Message) bool {
			return len(withSubject(ms, subject)) >= len(cs)
		})
		ms = withSubject(ms, subject)
		checkExploded(t, sent, ms, cs)
		for _, m := range ms {
			// Over TLS (S) with AUTH (A), as the trace field says.
			if recv := harness.Fields(m.Header)[0]; !bytes.Contains(recv.Raw, []byte("with ESMTPSA")) {
				t.Errorf("copy's Received: field does not say ESMTPSA: %q", recv.Raw)
			}
		}
	}
}

// TestNetSMTPCharacterString is the stall issue 19 reported. Net::SMTP
// wants octets; handed a Perl character string (text from a database, a
// "use utf8" template) with letters outside ASCII, it counts the message
// in characters, and IO::Socket::SSL then writes that many bytes of the
// UTF-8 encoding: the end of the message is never sent. Over plain TCP
// Perl writes Latin-1 letters of such a string as Latin-1 instead, so the
// same CRM seems to work there. The 354 arrives; what the server gets is a
// message cut short. Where the cut leaves dataend's ".\r\n" at the end of
// a line, the server never sees the end of the data and answers 421 4.4.2
// after command_timeout; in this message the cut falls between the CR and
// the LF of the last line, so the data ends there and the bare CR it
// leaves is refused at once with 550 5.6.0 (bare_newlines: reject).
// Either way nothing of the broken message is kept. Encoded to UTF-8
// octets (README, "Client notes"), the same message goes through.
func TestNetSMTPCharacterString(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r, tlsFiles := startAuthRelayLimits(t, sink, "{command_timeout: 2s}")
	cs := customers(3)
	opts := func(sent []byte, chars bool) harness.NetSMTPOptions {
		return harness.NetSMTPOptions{
			Server: r.AddrOf("submission"), StartTLS: true, CAFile: tlsFiles.CertFile, TLSName: "localhost",
			User: authUser, Password: authPassword,
			From: authUser, To: rcptAddrs(cs), Message: lf(sent), Characters: chars,
		}
	}

	broken := crmMailing(cs, "Net::SMTP with a character string")
	res := harness.NetSMTP(t, opts(broken, true))
	if res.OK() {
		t.Fatalf("a message cut short by the client was accepted: %s\n%s", res.Result, res.Transcript)
	}
	if !strings.Contains(res.Transcript, "<<< 354 ") {
		t.Errorf("Net::SMTP did not get the 354 to DATA:\n%s", res.Transcript)
	}
	if !strings.HasPrefix(res.Result, "FAIL dataend 550 5.6.0 ") {
		t.Errorf("want the end of DATA answered with 550 5.6.0 for the bare CR the cut leaves, got %q (timed out: %v)\n%s", res.Result, res.TimedOut, res.Transcript)
	}

	good := crmMailing(cs, "Net::SMTP with UTF-8 octets")
	res = harness.NetSMTP(t, opts(good, false))
	if !res.OK() {
		t.Fatalf("the same mailing as octets: %s\n%s", res.Result, res.Transcript)
	}
	queueID(t, res.Reply())
	ms := sink.WaitUntil(t, deliverTimeout, "the copies of the mailing sent as octets", func(ms []*smtptest.Message) bool {
		return len(withSubject(ms, "Net::SMTP with UTF-8 octets")) >= len(cs)
	})
	checkExploded(t, good, withSubject(ms, "Net::SMTP with UTF-8 octets"), cs)
	// Deliveries are in the order they were queued: had any of the broken
	// message been kept, it would have arrived by now.
	if n := len(withSubject(sink.Messages(), "Net::SMTP with a character string")); n != 0 {
		t.Errorf("the upstream got %d copies of the message the client cut short", n)
	}
}
