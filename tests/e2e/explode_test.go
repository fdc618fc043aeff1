package e2e

import (
	"bytes"
	"fmt"
	"mime"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
	"github.com/emersion/go-message/mail"
)

// customer is one recipient of a mailing: how the message shows them and
// what must not leak to anyone else.
type customer struct {
	Addr    string // envelope address (RCPT TO)
	Shown   string // the address as the header shows it (case may differ)
	Name    string // display name, decoded
	RawName string // the display name as written in the header
}

// mailbox is the customer as written in To:/Cc:.
func (c customer) mailbox() string { return c.RawName + " <" + c.Shown + ">" }

// leakForms are the byte strings that would give the customer away in
// someone else's copy: the address, the name decoded, as written in the
// original and as an encoder would write it again.
func (c customer) leakForms() [][]byte {
	enc := (&mail.Address{Name: c.Name, Address: "x@example.com"}).String()
	enc = strings.TrimSuffix(enc, " <x@example.com>")
	return [][]byte{[]byte(strings.ToLower(c.Addr)), []byte(c.Name), []byte(c.RawName), []byte(enc)}
}

// custNumber finds a customer's address in any case: cust042.
var custNumber = regexp.MustCompile(`cust(\d{3})\.`)

var customerDomains = []string{"example.com", "example.net", "example.org", "mail.example.net", "shop.example.org"}

// customers makes n customers of several domains with display names in the
// forms mailings use: plain words, quoted strings with commas and escaped
// quotes, RFC 2047 encoded UTF-8 (B and Q). Every name and address carries
// a three-digit number, so none is part of another.
func customers(n int) []customer {
	out := make([]customer, n)
	for i := range out {
		num := fmt.Sprintf("%03d", i)
		addr := fmt.Sprintf("cust%s.%s@%s", num, []string{"anna", "bob", "carol", "dave", "zoe"}[i%5], customerDomains[i%len(customerDomains)])
		c := customer{Addr: addr, Shown: addr}
		switch i % 6 {
		case 0:
			c.Name = "Anna Example-" + num
			c.RawName = c.Name
		case 1:
			c.Name = "Smith, Dave " + num
			c.RawName = `"` + c.Name + `"`
		case 2:
			c.Name = "Jürgen Müller " + num
			c.RawName = mime.BEncoding.Encode("UTF-8", c.Name)
		case 3:
			c.Name = "Zoë O'Brien-Łukasz " + num
			c.RawName = mime.QEncoding.Encode("utf-8", c.Name)
		case 4:
			c.Name = `O'Neil, Carol "CJ" ` + num
			c.RawName = `"O'Neil, Carol \"CJ\" ` + num + `"`
		case 5:
			c.Name = "山田 花子 " + num
			c.RawName = mime.BEncoding.Encode("UTF-8", c.Name)
		}
		if i%50 == 7 {
			// The header shows the address in another case than the
			// envelope: still the same customer.
			local, dom, _ := strings.Cut(addr, "@")
			c.Shown = strings.ToUpper(local[:1]) + local[1:] + "@" + strings.ToUpper(dom)
		}
		out[i] = c
	}
	return out
}

// addressField writes a To:/Cc: field with one mailbox per line.
func addressField(name string, cs []customer) string {
	var b strings.Builder
	b.WriteString(name + ": ")
	for i, c := range cs {
		if i > 0 {
			b.WriteString(",\r\n ")
		}
		b.WriteString(c.mailbox())
	}
	b.WriteString("\r\n")
	return b.String()
}

// surveyBody is a multipart mailing body with the awkward parts: 8-bit
// text, lines starting with a dot, trailing white space, no final newline
// in a part.
const surveyBody = "This is a multi-part message in MIME format.\r\n" +
	"\r\n" +
	"--=_survey_b1\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: 8bit\r\n" +
	"\r\n" +
	"Dear customer,\r\n" +
	"how happy are you with your new phone? Grüße aus Köln.\r\n" +
	".a line with a leading dot\r\n" +
	".\r\n" +
	"trailing space   \t\r\n" +
	"\r\n" +
	"--=_survey_b1\r\n" +
	"Content-Type: text/html; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"<p>Dear customer,</p><p>how happy are you with your new phone? Gr=C3=BC=\r\n" +
	"=C3=9Fe aus K=C3=B6ln.</p>\r\n" +
	"--=_survey_b1--\r\n" +
	"\r\n"

// TestExplode300Customers is the incident bccguard exists for: a survey
// mailing with 300 customers in two To: fields and a Cc: field, relayed
// through the real binary with the built-in policy. It must arrive as 300
// copies, each showing only its own recipient, with their display name,
// and nothing of anyone else anywhere in its bytes; every other header field
// and the body byte for byte as sent.
func TestExplode300Customers(t *testing.T) {
	t.Parallel()
	const n = 300
	cs := customers(n)
	auditor := customer{Addr: "auditor@example.org", Shown: "auditor@example.org", Name: "Undisclosed Auditor", RawName: `"Undisclosed Auditor"`}

	head := "Return-Path: <crm@brand.example>\r\n" +
		"From: Brand Phones <crm@brand.example>\r\n" +
		addressField("To", cs[:120]) +
		"Subject: =?UTF-8?Q?Your_opinion_matters_=E2=80=93_a_short_survey?=\r\n" +
		"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\n" +
		addressField("Cc", cs[120:200]) +
		"Message-ID: <survey-2026-11@brand.example>\r\n" +
		"X-Campaign: spring-survey\r\n" +
		"\t(folded with a tab)\r\n" +
		"cc: " + cs[200].mailbox() + "\r\n" + // a second Cc: in lower case
		addressField("TO", cs[201:]) + // a second To: in upper case
		"Bcc: " + auditor.mailbox() + "\r\n" +
		"MIME-Version: 1.0\r\n" +
		"List-Unsubscribe: <mailto:unsubscribe@brand.example?subject=unsubscribe>\r\n" +
		"Content-Type: multipart/alternative; boundary=\"=_survey_b1\"\r\n" +
		"\r\n"
	msg := []byte(head + surveyBody)
	rcpts := make([]string, n)
	for i, c := range cs {
		rcpts[i] = c.Addr
	}

	sink := harness.NewSink(t)
	r := harness.Start(t, "", harness.WithUpstream(sink.Addr()))
	queueID(t, harness.Send(t, r.Addr(), "crm@brand.example", rcpts, msg))

	ms := sink.WaitUntil(t, 3*deliverTimeout, "300 copies", func(ms []*smtptest.Message) bool { return len(ms) >= n })
	checkExploded(t, msg, ms, cs, auditor)
}

// checkExploded checks that ms, the upstream's transactions of one mailing
// to cs sent as sent (CRLF, as the relay received it), are its exploded
// copies: one transaction per customer, each for that customer alone,
// rewritten as explode promises (checkCopy), its To: showing the
// customer's display name, and nothing of any other customer, or of
// hidden (who got no copy: a Bcc:), anywhere in its bytes.
func checkExploded(t *testing.T, sent []byte, ms []*smtptest.Message, cs []customer, hidden ...customer) {
	t.Helper()
	n := len(cs)
	if len(ms) != n {
		t.Errorf("the upstream got %d transactions, want %d (one per recipient)", len(ms), n)
	}
	byRcpt := map[string]int{}
	for i, c := range cs {
		byRcpt[c.Addr] = i
	}
	seen := make([]int, n)
	for _, m := range ms {
		if len(m.Rcpts) != 1 {
			t.Errorf("a copy went to %d recipients %v, want one copy per recipient", len(m.Rcpts), m.RcptAddrs())
			continue
		}
		i, ok := byRcpt[m.Rcpts[0].Addr]
		if !ok {
			t.Errorf("a copy went to %s, who is no envelope recipient", m.Rcpts[0].Addr)
			continue
		}
		seen[i]++
		own := cs[i]
		name := checkCopy(t, sent, m, rewriteExplode, own.Addr)
		if name != own.Name {
			t.Errorf("copy to %s: To: shows the name %q, want %q", own.Addr, name, own.Name)
		}
		// Nobody else, anywhere in the copy: no other customer number in
		// any spelling of an address, no other name in any of its forms.
		lower := bytes.ToLower(m.Data)
		for _, sub := range custNumber.FindAllSubmatch(lower, -1) {
			if string(sub[1]) != fmt.Sprintf("%03d", i) {
				t.Errorf("copy to %s shows customer number %s: %q", own.Addr, sub[1], sub[0])
			}
		}
		for j, other := range append(slices.Clone(cs), hidden...) {
			if j == i {
				continue
			}
			for k, form := range other.leakForms() {
				hay := m.Data
				if k == 0 {
					hay = lower
				}
				if bytes.Contains(hay, form) {
					t.Errorf("copy to %s contains %q of %s", own.Addr, form, other.Addr)
				}
			}
		}
	}
	for i, k := range seen {
		if k != 1 {
			t.Errorf("%s got %d copies, want 1", cs[i].Addr, k)
		}
	}
}

// A mailing whose rule says bcc arrives once, to everyone, showing nobody.
func TestPolicyBccAction(t *testing.T) {
	t.Parallel()
	cs := customers(5)
	msg := []byte("From: Brand Phones <crm@brand.example>\r\n" +
		addressField("To", cs[:3]) +
		"Subject: bcc action\r\n" +
		addressField("Cc", cs[3:]) +
		"Bcc: Hidden Partner <partner@example.net>\r\n" +
		"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\n" +
		"Message-ID: <bcc-action@brand.example>\r\n" +
		"\r\n" +
		"Dear customers,\r\n.dot line\r\n")
	rcpts := []string{cs[0].Addr, cs[1].Addr, cs[2].Addr, cs[3].Addr, cs[4].Addr, "partner@example.net"}

	sink := harness.NewSink(t)
	r := harness.Start(t, `
policy:
  rules:
    - name: hide-recipients
      when: visible.count >= 2
      action: bcc
`, harness.WithUpstream(sink.Addr()))
	queueID(t, harness.Send(t, r.Addr(), "crm@brand.example", rcpts, msg))
	ms := sink.WaitUntil(t, deliverTimeout, "copies for all six recipients", func(ms []*smtptest.Message) bool {
		k := 0
		for _, m := range ms {
			k += len(m.Rcpts)
		}
		return k >= len(rcpts)
	})
	if len(ms) != 1 {
		t.Errorf("bcc: the upstream got %d transactions, want one to all recipients", len(ms))
	}
	var got []string
	for _, m := range ms {
		got = append(got, m.RcptAddrs()...)
		checkCopy(t, msg, m, rewriteBcc, "")
		lower := bytes.ToLower(m.Data)
		for _, c := range append(cs, customer{Addr: "partner@example.net", Name: "Hidden Partner", RawName: "Hidden Partner"}) {
			for k, form := range c.leakForms() {
				hay := m.Data
				if k == 0 {
					hay = lower
				}
				if bytes.Contains(hay, form) {
					t.Errorf("bcc copy contains %q of %s", form, c.Addr)
				}
			}
		}
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(rcpts))
	if !slices.Equal(got, want) {
		t.Errorf("recipients: got %v, want %v", got, want)
	}
}

// A reject rule refuses the message at the end of DATA with 550 5.7.1 and
// the rule's own text, and nothing of it reaches the upstream.
func TestPolicyRejectWithMessage(t *testing.T) {
	t.Parallel()
	const text = "Mailings must go through the newsletter tool; see https://brand.example/mail-policy (ticket 42)"
	sink := harness.NewSink(t)
	r := harness.Start(t, `
policy:
  rules:
    - name: no-mailings-here
      when: visible.count >= 2
      action: reject
      message: "`+text+`"
`, harness.WithUpstream(sink.Addr()))
	cs := customers(4)
	msg := []byte("From: Brand Phones <crm@brand.example>\r\n" + addressField("To", cs) +
		"Subject: rejected\r\n\r\nDear customers\r\n")
	rep, _ := submit(t, r.Addr(), "reject-me@brand.example", []string{cs[0].Addr, cs[1].Addr, cs[2].Addr, cs[3].Addr}, msg)
	if !rep.Is(550, "5.7.1") || rep.Text() != text || len(rep.Lines) != 1 {
		t.Errorf("end of DATA: want \"550 5.7.1 %s\", got %s", text, rep)
	}
	sentinel(t, r, sink)
	for _, m := range sink.Messages() {
		if m.From == "reject-me@brand.example" {
			t.Errorf("the rejected message reached the upstream: RCPT TO:%v", m.RcptAddrs())
		}
	}
}

// In monitor mode a rule that would explode decides and is recorded, and the
// message passes unchanged but for its Bcc: field.
func TestPolicyMonitorMode(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r := harness.Start(t, `
policy:
  mode: monitor
  rules:
    - name: explode-everything
      when: "true"
      action: explode
`, harness.WithUpstream(sink.Addr()))
	cs := customers(4)
	msg := []byte("From: Brand Phones <crm@brand.example>\r\n" +
		addressField("To", cs[:3]) +
		"Bcc: Hidden Partner <partner@example.net>\r\n" +
		"Subject: monitored\r\n" +
		addressField("Cc", cs[3:]) +
		"\r\n" +
		"Dear customers\r\n")
	rcpts := []string{cs[0].Addr, cs[1].Addr, cs[2].Addr, cs[3].Addr, "partner@example.net"}
	queueID(t, harness.Send(t, r.Addr(), "crm@brand.example", rcpts, msg))
	ms := sink.WaitUntil(t, deliverTimeout, "copies for all five recipients", func(ms []*smtptest.Message) bool {
		k := 0
		for _, m := range ms {
			k += len(m.Rcpts)
		}
		return k >= len(rcpts)
	})
	hdr, body := harness.SplitMessage(msg)
	wantHdr := bytes.Replace(hdr, []byte("Bcc: Hidden Partner <partner@example.net>\r\n"), nil, 1)
	var got []string
	for _, m := range ms {
		got = append(got, m.RcptAddrs()...)
		relayedCopy(t, m, wantHdr, body)
	}
	if len(ms) != 1 {
		t.Errorf("monitor mode: the upstream got %d transactions, want the one a pass makes", len(ms))
	}
	slices.Sort(got)
	if want := slices.Sorted(slices.Values(rcpts)); !slices.Equal(got, want) {
		t.Errorf("recipients: got %v, want %v", got, want)
	}
	// The decision is recorded as what would have happened.
	if !logShows(t, r, "message accepted", `"action":"explode"`, `"rule":"explode-everything"`, `"monitor":true`) {
		t.Errorf("the relay's log has no line recording the monitored decision (action explode, rule explode-everything, monitor true)")
	}
}

// TestMalformedHeaderDoesNotHideRecipients: a header block that bccguard
// cannot read to its end must not let a mailing through with every
// customer shown to every other. The built-in policy may hold such a
// message or explode it, but no copy that leaves may show another
// recipient's address or name, wherever a reader takes the header to end.
func TestMalformedHeaderDoesNotHideRecipients(t *testing.T) {
	t.Parallel()
	cs := customers(5)
	rcpts := []string{cs[0].Addr, cs[1].Addr, cs[2].Addr, cs[3].Addr, cs[4].Addr}
	to := addressField("To", cs)
	for _, tc := range []struct{ name, head string }{
		// RFC 5322 4.5.3 (obs-to): white space before the colon; a
		// receiver must accept it.
		{"obsolete syntax To :", "From: Brand Phones <crm@brand.example>\r\nSubject: survey\r\nTo :" + strings.TrimPrefix(to, "To:")},
		// An mbox "From " line left in front by a CRM's export.
		{"mbox From_ line first", "From crm@brand.example Sat Nov 21 10:00:00 2026\r\nFrom: Brand Phones <crm@brand.example>\r\n" + to + "Subject: survey\r\n"},
		// One broken line (a folded line that lost its indentation).
		{"line without a colon before To", "From: Brand Phones <crm@brand.example>\r\nSubject: our survey about your\r\nnew phone\r\n" + to},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sink := harness.NewSink(t)
			r := harness.Start(t, "", harness.WithUpstream(sink.Addr()))
			msg := []byte(tc.head + "Date: Sat, 21 Nov 2026 10:00:00 +0000\r\n\r\nDear customer\r\n")
			rep, _ := submit(t, r.Addr(), "crm@brand.example", rcpts, msg)
			if rep.Code != 250 {
				t.Logf("refused: %s", rep)
				return
			}
			sentinel(t, r, sink)
			copies := 0
			for _, m := range sink.Messages() {
				if m.From != "crm@brand.example" {
					continue
				}
				copies++
				lower := bytes.ToLower(m.Data)
				for _, c := range cs {
					if len(m.Rcpts) == 1 && strings.EqualFold(m.Rcpts[0].Addr, c.Addr) {
						continue
					}
					if bytes.Contains(lower, []byte(c.Addr)) {
						t.Errorf("reply %q: the copy to %v shows %s:\n%s", rep, m.RcptAddrs(), c.Addr, m.Header)
						break
					}
				}
			}
			t.Logf("%s: %d copies delivered", rep, copies)
		})
	}
}
