package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"mime/quotedprintable"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	ct "github.com/bccguard/bccguard/policy/content/contenttest"
	"github.com/bccguard/bccguard/tests/harness"
)

// exportAttachments are the customer exports issue 14 found passing, in
// every format, each under the generic type a CRM gives everything.
func exportAttachments() []ct.Attachment {
	people := ct.People(200)
	order := ct.Table(people, ct.OrderExport)
	nameAddr := ct.Table(people, ct.NameAddress)
	payments := ct.Table(people[:20], []ct.Column{ct.ColName, ct.ColCard, ct.ColIBAN})
	var enc bytes.Buffer
	w := zip.NewWriter(&enc)
	f, _ := w.CreateHeader(&zip.FileHeader{Name: "customers.csv", Method: zip.Store, Flags: 0x1})
	_, _ = f.Write([]byte("ciphertext, as far as anyone can tell"))
	_ = w.Close()
	return []ct.Attachment{
		{Name: "customers.xlsx", Data: ct.XLSX(order)},
		{Name: "customers.zip", Data: ct.Zip(ct.Entry{Name: "customers.csv", Data: ct.CSV(order, ',')})},
		{Name: "customers.csv.gz", Data: ct.Gzip("customers.csv", ct.CSV(order, ','))},
		{Name: "customers.json", Data: ct.JSON(order)},
		{Name: "addresses.csv", Data: ct.CSV(nameAddr, ',')},
		{Name: "customers.docx", Data: ct.DOCX(order)},
		{Name: "customers.pptx", Data: ct.PPTX(order)},
		{Name: "customers.ods", Data: ct.ODS(order)},
		{Name: "customers.odt", Data: ct.ODT(order)},
		{Name: "report.pdf", Data: ct.PDF(order)},
		{Name: "customers.html", Data: ct.HTMLTable(order)},
		{Name: "contacts.vcf", Data: ct.VCard(people)},
		{Name: "payments.csv", Data: ct.CSV(payments, ',')},
		{Name: "export.zip", Data: enc.Bytes()},
	}
}

// TestContentExportsHeld: through the real binary on the built-in policy,
// every export format is held; a reviewer sees in headless Chromium what
// each contains, with masked samples and no value in clear.
func TestContentExportsHeld(t *testing.T) {
	const user, pass = "rita", "a long test passphrase"
	sink := harness.NewSink(t)
	r := harness.Start(t, `
admin:
  listen: "{{addr "admin"}}"
  users:
    - {name: `+user+`, password_hash: "`+bcryptHash(t, pass)+`", role: reviewer}
`, harness.WithUpstream(sink.Addr()))
	type held struct{ name, id string }
	var ids []held
	for _, a := range exportAttachments() {
		a.Type = "application/octet-stream"
		msg := ct.Message("the export you asked for", "Hi, attached.", a)
		rep, _ := submit(t, r.Addr(), "sales@brand.example", []string{"agency@example.net"}, msg)
		m := heldFor.FindStringSubmatch(rep.Text())
		if !rep.Is(250, "2.0.0") || m == nil {
			t.Errorf("%s: end of DATA %s, want 250 held for review", a.Name, rep)
			continue
		}
		ids = append(ids, held{a.Name, m[1]})
	}
	sentinel(t, r, sink)
	for _, m := range sink.Messages() {
		if m.From == "sales@brand.example" {
			t.Errorf("an export reached the upstream: %v", m.RcptAddrs())
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*browserBudget)
	defer cancel()
	b := harness.NewBrowser(t, ctx)
	origin := "http://" + r.AdminAddr()
	if err := chromedp.Do(b.Ctx,
		chromedp.Navigate(origin+"/quarantine"), chromedp.WaitVisible(chromedp.CSS("#user")),
		chromedp.SendKeys(chromedp.CSS("#user"), user), chromedp.SendKeys(chromedp.CSS("#password"), pass),
		chromedp.Click(chromedp.CSS(`form[action="/quarantine/signin"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("table.holds"))); err != nil {
		t.Fatalf("browser: sign in: %v", err)
	}
	people := ct.People(200)
	clear := func(what, text string) {
		t.Helper()
		for _, p := range people {
			for _, v := range []string{p.Email, p.Phone, p.Card, p.IBAN} {
				if strings.Contains(text, v) {
					t.Fatalf("%s shows %q in clear", what, v)
				}
			}
		}
	}
	for _, h := range ids {
		if err := chromedp.Do(b.Ctx, chromedp.Navigate(origin+"/quarantine/m/"+h.id),
			chromedp.WaitVisible(chromedp.CSS("#contains"))); err != nil {
			t.Fatalf("browser: %s: %v", h.name, err)
		}
		section, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS("section.contains")))
		if err != nil {
			t.Fatalf("browser: %s: %v", h.name, err)
		}
		page, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
		if err != nil {
			t.Fatalf("browser: %s: %v", h.name, err)
		}
		if !strings.Contains(section, h.name) {
			t.Errorf("%s: the page's What it contains section does not name it:\n%s", h.name, section)
		}
		want := "cu…@ex…"
		switch h.name {
		case "addresses.csv":
			want = "records"
		case "payments.csv":
			want = "**** **** **** "
		case "export.zip":
			want = "unscannable (encrypted)"
		}
		if !strings.Contains(section, want) {
			t.Errorf("%s: the section does not show %q:\n%s", h.name, want, section)
		}
		clear(h.name+": the review page", page)
	}

	// The command line shows the same, masked; --json carries it.
	res := harness.RunCLI(t, "quarantine", "show", ids[0].id, "--data-dir", r.DataDir())
	if !res.OK() || !strings.Contains(res.Stdout, "What it contains") || !strings.Contains(res.Stdout, "cu…@ex…") ||
		!strings.Contains(res.Stdout, "200 records") {
		t.Errorf("quarantine show: no masked breakdown:\n%s", res)
	}
	clear("quarantine show", res.Stdout)
	res = harness.RunCLI(t, "quarantine", "show", ids[0].id, "--data-dir", r.DataDir(), "--json")
	if !res.OK() || !strings.Contains(res.Stdout, `"contains"`) || !strings.Contains(res.Stdout, `"records": 200`) {
		t.Errorf("quarantine show --json: no contains:\n%.2000s", res.Stdout)
	}
	clear("quarantine show --json", res.Stdout)

	// Metrics: findings by kind, attachments by type and status; no
	// value in any label.
	code, mb := obsGet(t, "http://"+r.AdminAddr()+"/metrics")
	metrics := string(mb)
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{`bccguard_content_findings_total{kind="email"}`, `bccguard_content_findings_total{kind="record"}`,
		`bccguard_content_attachments_total{status="scanned",type="xlsx"}`, `bccguard_content_attachments_total{status="unscannable",type="zip"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	clear("/metrics", metrics)
}

// TestContentPolicyTest: `bccguard policy test` prints what an export
// contains, masked, and --json carries it.
func TestContentPolicyTest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	eml := dir + "/export.eml"
	writeFile(t, eml, string(ct.Message("export", "attached", ct.Attachment{Name: "customers.xlsx", Data: ct.XLSX(ct.Table(ct.People(60), ct.OrderExport))})))
	res := harness.RunCLI(t, "policy", "test", eml, "--from", "sales@brand.example", "--rcpt", "agency@example.net")
	for _, want := range []string{"quarantine", "address-list-in-body", "what it contains:", "customers.xlsx [xlsx", "60 records", "cu…@ex…", "+44 20 **** *00"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("policy test does not say %q:\n%s", want, res)
		}
	}
	res = harness.RunCLI(t, "policy", "test", eml, "--json")
	if !strings.Contains(res.Stdout, `"contains"`) || !strings.Contains(res.Stdout, `"body.records"`) {
		t.Errorf("policy test --json has no contains:\n%.1500s", res.Stdout)
	}
	for _, p := range ct.People(60) {
		if strings.Contains(res.Stdout, p.Email) || strings.Contains(res.Stdout, p.Phone) {
			t.Fatalf("policy test --json shows %q", p.Email)
		}
	}
}

// TestContentLookAlikesDelivered: on the built-in policy, a catalogue, a
// newsletter with one phone number, an invoice and a contact block pass,
// and arrive byte-identical (below bccguard's Received: field).
func TestContentLookAlikesDelivered(t *testing.T) {
	sink := harness.NewSink(t)
	r := harness.Start(t, "", harness.WithUpstream(sink.Addr()))
	newsletter := "<html><body><h1>Autumn sale</h1><p>Call +44 20 7946 0555, or write to <a href=\"mailto:help@brand.example\">help@brand.example</a>.</p>" +
		"<p>Brand Ltd, 1 Market Street, Springfield SW1A 1AA</p></body></html>"
	invoice := ct.CSV([][]string{{"Item", "Qty", "Unit price", "Total"}, {"Garden chair", "4", "49.99", "199.96"}}, ',')
	contact := "Best regards,\r\nJane Doe\r\nT +44 20 7946 0123 | M +44 7700 900123\r\njane.doe@brand.example\r\nIBAN GB33BUKB20201555555555\r\n"
	msgs := map[string][]byte{
		"catalogue":  ct.Message("our catalogue", "Attached.", ct.Attachment{Name: "catalogue.xlsx", Data: ct.XLSX(ct.Catalogue(400))}, ct.Attachment{Name: "catalogue.csv", Data: ct.CSV(ct.Catalogue(400), ',')}),
		"newsletter": ct.Message("autumn sale", "See the HTML part.", ct.Attachment{Name: "sale.html", Type: "text/html", Data: []byte(newsletter)}),
		"invoice":    ct.Message("invoice 2026-118", "Your invoice.", ct.Attachment{Name: "invoice.csv", Data: invoice}, ct.Attachment{Name: "invoice.pdf", Data: ct.PDF([][]string{{"Garden chair", "4", "199.96"}})}),
		"contact":    ct.Message("hello", contact),
	}
	for name, msg := range msgs {
		rep, _ := submit(t, r.Addr(), "sales@brand.example", []string{"agency@example.net"}, msg)
		if !rep.Is(250, "2.0.0") || heldFor.MatchString(rep.Text()) {
			t.Errorf("%s: %s, want 250 queued", name, rep)
		}
	}
	got := sink.WaitFor(t, len(msgs), 30*time.Second)
	for _, m := range got {
		found := false
		for name, msg := range msgs {
			if bytes.HasSuffix(m.Data, msg) {
				found = true
				delete(msgs, name)
			}
		}
		if !found {
			t.Errorf("a delivered message is not byte-identical to any sent:\n%.300s", m.Data)
		}
	}
	for name := range msgs {
		t.Errorf("%s was not delivered byte-identical", name)
	}
}

// TestBodyLeaksHeld (issue 13, body half): a mailing to four recipients of
// four domains whose body shows them all, in each way a body can, is held
// instead of exploded (built-in policy) or bcc'd; and a reviewer cannot
// release it as explode.
func TestBodyLeaksHeld(t *testing.T) {
	people := ct.People(4)
	var to, rcpts []string
	for i, p := range people {
		p.Email = fmt.Sprintf("customer%d@example%d.example", i, i)
		people[i] = p
		to = append(to, fmt.Sprintf("%s <%s>", p.Name, p.Email))
		rcpts = append(rcpts, p.Email)
	}
	list := strings.Join(to, ", ")
	var mailto strings.Builder
	for _, p := range people {
		fmt.Fprintf(&mailto, `<a href="mailto:%s">&#8203;</a>`, strings.NewReplacer("@", "%40", "c", "%63").Replace(p.Email))
	}
	var qp bytes.Buffer
	qw := quotedprintable.NewWriter(&qp)
	fmt.Fprintf(qw, "Thank you all for coming: %s. See you next year!", list)
	qw.Close()
	inner := []byte("From: Sales <sales@brand.example>\r\nTo: " + list + "\r\nSubject: survey\r\n\r\nHello all.\r\n")
	body := func(text string, atts ...ct.Attachment) []byte {
		return ct.MessageTo(list, "survey results", text, atts...)
	}
	leaks := map[string][]byte{
		"attached message": body("forwarding the original", ct.Attachment{Name: "original.eml", Type: "message/rfc822", Data: inner, Raw: true}),
		"rfc822-headers":   body("bounce report", ct.Attachment{Type: "text/rfc822-headers", Data: []byte("To: " + list + "\r\n"), Raw: true}),
		"part header": []byte("From: sales@brand.example\r\nTo: " + list + "\r\nSubject: x\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nCc: " + list + "\r\n\r\nhello\r\n--b--\r\n"),
		"mailto links":       body("", ct.Attachment{Type: "text/html", Data: []byte(mailto.String()), Raw: true}),
		"calendar attendees": body("invitation", ct.Attachment{Name: "invite.ics", Type: "text/calendar", Data: ct.ICal(people)}),
		"quoted-printable": []byte("From: sales@brand.example\r\nTo: " + list + "\r\nSubject: x\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + qp.String() + "\r\n"),
	}
	for _, tc := range []struct{ name, cfg string }{
		{"explode (built-in policy)", ""},
		{"bcc", "policy:\n  rules:\n    - {name: mailing, when: 'visible.count >= 2', action: bcc}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := harness.NewSink(t)
			r := harness.Start(t, tc.cfg, harness.WithUpstream(sink.Addr()))
			var ids []string
			for name, msg := range leaks {
				rep, _ := submit(t, r.Addr(), "sales@brand.example", rcpts, msg)
				m := heldFor.FindStringSubmatch(rep.Text())
				if m == nil {
					t.Errorf("%s: %s, want held for review (unsafe-copy)", name, rep)
					continue
				}
				ids = append(ids, m[1])
			}
			if !logShows(t, r, "message accepted", `"rule":"unsafe-copy"`) {
				t.Errorf("no message was held by unsafe-copy")
			}
			if len(ids) > 0 {
				res := harness.RunCLI(t, "quarantine", "release", ids[0], "--as", "explode", "--data-dir", r.DataDir())
				if res.OK() || !strings.Contains(res.Stdout+res.Stderr, "the body or an attachment shows") {
					t.Errorf("release as explode: want it refused because the body shows the recipients:\n%s", res)
				}
			}
			sentinel(t, r, sink)
			for _, m := range sink.Messages() {
				if m.From == "sales@brand.example" {
					t.Errorf("a copy left: RCPT TO %v", m.RcptAddrs())
				}
			}
		})
	}
}
