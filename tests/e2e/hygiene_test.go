package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
)

// Ingress hygiene (issue 12): what goes upstream is exactly what was
// accepted, and nothing hides in it. Each test runs the real binary with a
// byte-logging upstream (smtptest.Sink's Wire) and checks one finding of the
// security review.

// passAll is a policy that relays everything as it is, so that what reaches
// the upstream is the relay's ingress alone.
const passAll = `
policy:
  on_parse_error: pass
  rules:
    - {name: all, when: "true", action: pass}
`

// bareForm is message content with a bare line end in it.
type bareForm struct {
	name    string
	content string // DATA content, before the end marker
	bdat    bool   // sent as one BDAT LAST chunk instead
}

// smuggling is each way a client may try to end the data early for a
// receiver that ends lines at a bare CR or LF (SEC Consult, 2023), with a
// second transaction behind it.
var smuggling = []bareForm{
	{name: "CR.CR", content: "Subject: cr-dot-cr\r\n\r\nhello\r.\rMAIL FROM:<admin@bank.example>\r\nRCPT TO:<victim@c.example>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n"},
	{name: "CRLF.LF", content: "Subject: crlf-dot-lf\r\n\r\nhello\r\n.\nMAIL FROM:<admin@bank.example>\r\nRCPT TO:<victim@c.example>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n"},
	{name: "LF.CRLF", content: "Subject: lf-dot-crlf\r\n\r\nhello\n.\r\nMAIL FROM:<admin@bank.example>\r\nRCPT TO:<victim@c.example>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n"},
	{name: "CRLF.CR", content: "Subject: crlf-dot-cr\r\n\r\nhello\r\n.\rMAIL FROM:<admin@bank.example>\r\nRCPT TO:<victim@c.example>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n"},
	{name: "BDAT CR.CR", content: "Subject: bdat\r\n\r\nw\r.\r.end\rMAIL FROM:<admin@bank.example>\r\n", bdat: true},
}

// bareForms are the smuggling forms and two more bare line ends: a Bcc:
// hidden behind a CR in the header, and a "." line ended by a bare LF.
func bareForms() []bareForm {
	return append(slices.Clone(smuggling),
		bareForm{name: "Bcc behind a bare CR", content: "Subject: x\rBcc: v5@secret.example\r\nTo: ann@example.com\r\n\r\nbody\r\n"},
		bareForm{name: "dot and bare LF", content: "Subject: dot-lf\r\n\r\na\r\n.\nb\r\n"},
	)
}

// transact runs MAIL, RCPT and DATA (or one BDAT LAST chunk) on c and
// returns the reply to the end of the data. content goes as it is: no
// dot-stuffing is added, so that the tests say exactly what is on the wire.
func transact(t *testing.T, c *harness.RawConn, from string, rcpts []string, content string, bdat bool) harness.Reply {
	t.Helper()
	c.Expect("MAIL FROM:<"+from+">", 250, "")
	for _, r := range rcpts {
		c.Expect("RCPT TO:<"+r+">", 250, "")
	}
	data := content + ".\r\n"
	if bdat {
		data = fmt.Sprintf("BDAT %d LAST\r\n", len(content)) + content
	} else {
		c.Expect("DATA", 354, "")
	}
	if err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	rep, err := c.ReadReply()
	if err != nil {
		t.Fatalf("end of data: %v", err)
	}
	return rep
}

// bare finds the first bare CR or LF in b, -1 if there is none.
func bare(b []byte) int {
	for i, c := range b {
		switch {
		case c == '\r' && (i+1 == len(b) || b[i+1] != '\n'):
			return i
		case c == '\n' && (i == 0 || b[i-1] != '\r'):
			return i
		}
	}
	return -1
}

// noSmuggledMail fails if anything the smuggling tried reached the upstream
// as a transaction of its own.
func noSmuggledMail(t *testing.T, sink *smtptest.Sink) {
	t.Helper()
	for _, m := range sink.Messages() {
		if strings.EqualFold(m.From, "admin@bank.example") || strings.Contains(string(m.Header), "Subject: smuggled") {
			t.Errorf("a smuggled transaction reached the upstream: MAIL FROM:<%s>\n%s", m.From, m.Header)
		}
	}
	if w := sink.WireText(); strings.Contains(w, "\r\nMAIL FROM:<admin@bank.example>") && bare([]byte(w)) >= 0 {
		t.Errorf("the upstream got MAIL FROM:<admin@bank.example> behind a bare line end:\n%q", w)
	}
}

// TestBareLineEndsRefusedByDefault: with the default bare_newlines
// (reject), every smuggling form, in DATA and in BDAT, and a Bcc: hidden
// behind a bare CR in the header, gets 550 5.6.0 at the end of the data and
// nothing goes upstream; the session goes on. Before the fix each was
// accepted and forwarded with its bare CR (or lost its dot).
func TestBareLineEndsRefusedByDefault(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r := harness.Start(t, passAll, harness.WithUpstream(sink.Addr()))
	forms := bareForms()
	c := harness.DialRaw(t, r.Addr(), "")
	c.Expect("EHLO "+harness.ClientHelo, 250, "")
	for _, f := range forms {
		rep := transact(t, c, "sender@brand.example", []string{"rcpt@example.net"}, f.content, f.bdat)
		if !rep.Is(550, "5.6.0") || !strings.Contains(rep.Text(), "bare") {
			t.Errorf("%s: got %s, want 550 5.6.0 naming the bare line end", f.name, rep)
		}
		c.Expect("RSET", 250, "")
	}
	sentinel(t, r, sink)
	for _, m := range sink.Messages() {
		if m.From == "sender@brand.example" {
			t.Errorf("a refused message reached the upstream:\n%s", m.Header)
		}
	}
	noSmuggledMail(t, sink)
}

// TestBareLineEndsNormalized: with bare_newlines: normalize each bare CR and
// LF becomes CRLF, over plain text and over STARTTLS alike (the fix sits in
// the SMTP server, above TLS): the upstream gets no bare line end, no
// smuggled transaction, the dot of ".\n" kept, and no Bcc: that hid behind
// a CR; every other byte is as sent.
func TestBareLineEndsNormalized(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	dir := t.TempDir()
	tlsFiles := harness.WriteTLSCert(t, dir)
	r := harness.Start(t, passAll+`
listeners:
  - {name: smtp, address: "{{addr "smtp"}}", bare_newlines: normalize}
  - name: tls
    address: "{{addr "tls"}}"
    tls: starttls
    tls_cert: `+tlsFiles.CertFile+`
    tls_key: `+tlsFiles.KeyFile+`
    auth: false
    bare_newlines: normalize
`, harness.WithUpstream(sink.Addr()), harness.InDir(dir))
	forms := bareForms()
	want := 0
	for _, listener := range []string{"smtp", "tls"} {
		c := harness.DialRaw(t, r.AddrOf(listener), "")
		c.Expect("EHLO "+harness.ClientHelo, 250, "")
		if listener == "tls" {
			c.StartTLS(tlsFiles.Client)
			c.Expect("EHLO "+harness.ClientHelo, 250, "")
		}
		for i, f := range forms {
			from := fmt.Sprintf("form%d.%s@brand.example", i, listener)
			if rep := transact(t, c, from, []string{"rcpt@example.net"}, f.content, f.bdat); rep.Code != 250 {
				t.Errorf("%s on %s: got %s, want 250", f.name, listener, rep)
				continue
			}
			want++
		}
	}
	ms := sink.WaitFor(t, want, deliverTimeout)
	if len(ms) != want {
		t.Errorf("the upstream got %d messages, want %d (one per message sent)", len(ms), want)
	}
	for _, m := range ms {
		if i := bare(m.Data); i >= 0 {
			t.Errorf("MAIL FROM:<%s>: a bare line end reached the upstream at %d: %q", m.From, i, m.Data[max(0, i-20):min(len(m.Data), i+20)])
		}
		var i int
		var listener string
		fmt.Sscanf(strings.ReplaceAll(m.From, ".", " "), "form%d %s", &i, &listener)
		f := forms[i]
		content := f.content
		// What was sent, with each bare CR and LF made CRLF, after the
		// relay's Received: field (and Bcc: removed).
		norm := strings.NewReplacer("\r\n", "\r\n", "\r", "\r\n", "\n", "\r\n").Replace(content)
		norm = strings.Replace(norm, "Bcc: v5@secret.example\r\n", "", 1)
		if !strings.HasSuffix(string(m.Data), norm) {
			t.Errorf("%s (%s): the upstream got\n%q\nwant it to end in\n%q", f.name, listener, m.Data, norm)
		}
		if strings.Contains(string(m.Data), "v5@secret.example") {
			t.Errorf("%s (%s): the Bcc behind the bare CR left bccguard", f.name, listener)
		}
	}
	if i := bare([]byte(sink.WireText())); i >= 0 {
		w := sink.WireText()
		t.Errorf("the byte log of the upstream has a bare line end at %d: %q", i, w[max(0, i-30):min(len(w), i+30)])
	}
	if !strings.Contains(sink.WireText(), "\r\na\r\n..\r\nb\r\n") {
		t.Error("the line \".\" of \"\\r\\n.\\n\" did not reach the upstream (dot-stuffed as \"..\")")
	}
	noSmuggledMail(t, sink)
}

// TestQuotedLocalPartsForwardedQuoted: a quoted local part reaches the
// upstream quoted, in MAIL FROM and RCPT TO, so the upstream gets the
// address bccguard accepted, logged and applied policy to. Before the fix
// "victim@evil.example"@c.example went out as victim@evil.example@c.example
// (the relay-routing form), "u,v"@c.example as u,v@c.example.
func TestQuotedLocalPartsForwardedQuoted(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r := harness.Start(t, passAll, harness.WithUpstream(sink.Addr()))
	rcpts := []string{`"victim@evil.example"@c.example`, `"u,v"@c.example`, `"u\\"@c.example`}
	c := harness.DialRaw(t, r.Addr(), "")
	c.Expect("EHLO "+harness.ClientHelo, 250, "")
	if rep := transact(t, c, `"crm@tool.example"@brand.example`, rcpts, "Subject: quoted\r\n\r\nx\r\n", false); rep.Code != 250 {
		t.Fatalf("end of data: %s", rep)
	}
	sink.WaitFor(t, 1, deliverTimeout)
	wire := sink.WireText()
	for _, want := range append([]string{`MAIL FROM:<"crm@tool.example"@brand.example>`}, func() []string {
		var out []string
		for _, r := range rcpts {
			out = append(out, "RCPT TO:<"+r+">")
		}
		return out
	}()...) {
		if !strings.Contains(wire, want+" ") && !strings.Contains(wire, want+"\r\n") {
			t.Errorf("the upstream's byte log lacks %s:\n%s", want, wire)
		}
	}
	for _, bad := range []string{"<victim@evil.example@c.example>", "<u,v@c.example>", `<u\@c.example>`, "<crm@tool.example@brand.example>"} {
		if strings.Contains(wire, bad) {
			t.Errorf("the upstream got the unquoted %s", bad)
		}
	}
}

// TestInvalidEnvelopeAddressesRefused: a NUL, another control character, or
// an @ outside quotes in an address is refused at MAIL/RCPT with 553, never
// a 250; the transaction goes on with the other recipients. Before the fix
// <u@c.example\x00@evil.example> got 250 and its delivery was retried for
// the whole queue lifetime, holding back the others.
func TestInvalidEnvelopeAddressesRefused(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r := harness.Start(t, passAll, harness.WithUpstream(sink.Addr()))
	c := harness.DialRaw(t, r.Addr(), "")
	c.Expect("EHLO "+harness.ClientHelo, 250, "")
	if rep := c.Cmd("MAIL FROM:<s@brand.example\x00@evil.example>"); !rep.Is(553, "5.1.7") {
		t.Errorf("NUL in MAIL FROM: got %s, want 553 5.1.7", rep)
	}
	c.Expect("MAIL FROM:<sender@brand.example>", 250, "")
	for _, bad := range []string{"u@c.example\x00@evil.example", "u\x01x@c.example", "u@c.example@evil.example", "u@[300.0.0.1]"} {
		if rep := c.Cmd("RCPT TO:<" + bad + ">"); !rep.Is(553, "5.1.3") {
			t.Errorf("RCPT TO:<%q>: got %s, want 553 5.1.3", bad, rep)
		}
	}
	c.Expect("RCPT TO:<good@example.net>", 250, "")
	c.Expect("DATA", 354, "")
	if err := c.Write("Subject: the good one\r\n\r\nx\r\n.\r\n"); err != nil {
		t.Fatal(err)
	}
	if rep, err := c.ReadReply(); err != nil || rep.Code != 250 {
		t.Fatalf("end of data: %s %v", rep, err)
	}
	ms := sink.WaitFor(t, 1, deliverTimeout)
	if got := ms[0].RcptAddrs(); len(got) != 1 || got[0] != "good@example.net" {
		t.Errorf("delivered to %v, want good@example.net only", got)
	}
	if strings.Contains(r.Logs(), "evil.example") {
		t.Error("the log shows evil.example")
	}
}

// TestUpstreamRefusesOneRecipient: a recipient the upstream refuses for
// good (550 at RCPT) bounces with a DSN at once, and the others in the same
// transaction are delivered in that attempt.
func TestUpstreamRefusesOneRecipient(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	sink.RejectRcpt("gone@example.net", smtptest.SMTPErr(550, "5.1.1", "no such user"))
	r := harness.Start(t, passAll, harness.WithUpstream(sink.Addr()))
	harness.Send(t, r.Addr(), "sender@brand.example", []string{"a@example.net", "gone@example.net", "b@example.net"},
		harness.CRLF("From: sender@brand.example\nTo: a@example.net\nSubject: three\n\nx\n"))
	ms := sink.WaitUntil(t, deliverTimeout, "the message and the DSN", func(ms []*smtptest.Message) bool { return len(ms) >= 2 })
	var delivered []string
	dsn := false
	for _, m := range ms {
		if m.From == "" && strings.Contains(string(m.Data), "gone@example.net") {
			dsn = true
			continue
		}
		delivered = append(delivered, m.RcptAddrs()...)
	}
	if strings.Join(delivered, ",") != "a@example.net,b@example.net" || !dsn {
		t.Errorf("delivered to %v, DSN %v; want a and b at once and a DSN for gone", delivered, dsn)
	}
}

// TestRedactionCoversQuotedAddresses: with redaction on (the default), an
// upstream reply naming a quoted or literal address leaves nothing of it
// readable in the log.
func TestRedactionCoversQuotedAddresses(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	sink.OnRcpt(func(_, to string) *smtp.SMTPError {
		if strings.Contains(to, "zq") {
			return smtptest.SMTPErr(550, "5.1.1", "<"+to+">: Recipient address rejected")
		}
		return nil
	})
	r := harness.Start(t, passAll, harness.WithUpstream(sink.Addr()))
	c := harness.DialRaw(t, r.Addr(), "")
	c.Expect("EHLO "+harness.ClientHelo, 250, "")
	rcpts := []string{`"zq.victim@hidden.example"@qq.example`, `"zq,\"x\""@qq.example`, "zqlit@[192.0.2.77]", "ok@example.net"}
	if rep := transact(t, c, "sender@brand.example", rcpts, "Subject: r\r\n\r\nx\r\n", false); rep.Code != 250 {
		t.Fatalf("end of data: %s", rep)
	}
	sink.WaitUntil(t, deliverTimeout, "the delivery and the DSN", func(ms []*smtptest.Message) bool { return len(ms) >= 2 })
	waitQueue(t, r, "nothing pending", func(q []harness.QueueEntry) bool { return pending(q) == 0 })
	logs := r.Logs()
	if !strings.Contains(logs, "Recipient address rejected") {
		t.Fatal("the upstream's refusal is not in the log: nothing was tested")
	}
	for _, s := range []string{"zq", "hidden.example", "qq.example", "192.0.2.77"} {
		if strings.Contains(logs, s) {
			i := strings.Index(logs, s)
			t.Errorf("the log shows %q: ...%s...", s, logs[max(0, i-80):min(len(logs), i+40)])
		}
	}
}

// TestResentBccRemoved: Resent-Bcc, like Bcc, never leaves bccguard.
func TestResentBccRemoved(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r := harness.Start(t, passAll, harness.WithUpstream(sink.Addr()))
	harness.Send(t, r.Addr(), "sender@brand.example", []string{"a@example.net"},
		harness.CRLF("Resent-From: sender@brand.example\nResent-To: a@example.net\nResent-Bcc: hidden@secret.example\nFrom: x@brand.example\nTo: a@example.net\nSubject: resent\n\nx\n"))
	m := sink.WaitFor(t, 1, deliverTimeout)[0]
	if strings.Contains(string(m.Data), "hidden@secret.example") || harness.HasField(m.Header, "Resent-Bcc") {
		t.Errorf("Resent-Bcc reached the upstream:\n%s", m.Header)
	}
	if !harness.HasField(m.Header, "Resent-To") {
		t.Errorf("Resent-To was lost:\n%s", m.Header)
	}
}

// TestLongLinesForwardedByteIdentical: a 7,000-octet line (as two messages
// of the shared corpus have) is accepted and reaches the upstream byte for
// byte on the default max_line_length; before the fix it got 500 5.5.0 in
// the middle of DATA and the connection was closed.
func TestLongLinesForwardedByteIdentical(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r := harness.Start(t, passAll, harness.WithUpstream(sink.Addr()))
	long := strings.Repeat("0123456789", 700)
	msg := harness.CRLF("From: x@brand.example\nTo: a@example.net\nSubject: long\nX-Long: " + long + "\n\n" + long + "\n")
	harness.Send(t, r.Addr(), "sender@brand.example", []string{"a@example.net"}, msg)
	m := sink.WaitFor(t, 1, deliverTimeout)[0]
	if !bytes.HasSuffix(m.Data, msg) {
		t.Errorf("the copy is not the message byte for byte after the Received: field")
	}
}

// TestPolicyTestSeesBareCRFields: `bccguard policy test` counts a Cc:
// hidden behind a bare CR, as a CR-sensitive mail client shows it. Before
// the fix it counted only the To:.
func TestPolicyTestSeesBareCRFields(t *testing.T) {
	t.Parallel()
	f := filepath.Join(t.TempDir(), "hidden.eml")
	if err := os.WriteFile(f, []byte("From: crm@brand.example\nTo: Ann <ann@a.example>\nSubject: hello\rCc: Chen <chen@c.example>\n\nbody\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := harness.RunCLI(t, "policy", "test", f, "--json")
	if !res.OK() {
		t.Fatalf("policy test: %s", res)
	}
	var out struct {
		Visible struct {
			Count int `json:"count"`
		} `json:"visible"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &out); err != nil {
		t.Fatalf("policy test --json: %v\n%s", err, res.Stdout)
	}
	if out.Visible.Count != 2 {
		t.Errorf("policy test counts %d visible recipients, want 2 (Ann and the Cc: behind the bare CR):\n%s", out.Visible.Count, res.Stdout)
	}
}
