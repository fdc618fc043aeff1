package e2e

import (
	"context"
	"fmt"
	"mime"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
)

// ScreenshotsEnv, set to 1, makes TestBrowserQuarantineReview write its
// screenshots of the review pages to docs/ (the README shows them). CI
// leaves it unset, so a test run never rewrites them.
const ScreenshotsEnv = "BCCGUARD_SCREENSHOTS"

// browserBudget bounds everything the browser does in the test.
const browserBudget = 40 * time.Second

// The survey the policy holds: a CRM mailing with its customers in To:.
var surveyRecipients = []struct{ name, addr string }{
	{"Ana Souza", "ana.souza@example.com"},
	{"Ben Okafor", "ben.okafor@example.net"},
	{"Chloé Martin", "chloe.martin@example.org"},
	{"Dmitri Ivanov", "dmitri.ivanov@example.com"},
	{"Emma Schulz", "emma.schulz@mail.example"},
	{"Farid Haddad", "farid.haddad@example.net"},
	{"Grace Lee", "grace.lee@example.com"},
	{"Hiro Tanaka", "hiro.tanaka@example.org"},
}

const surveySubject = "Tell us about your new Nova X phone — 2-minute survey"

// TestBrowserQuarantineReview: a reviewer, in headless Chromium, signs in to
// the review pages of the real binary, finds the message the policy held,
// opens it, sees why it was held and whom it would have exposed, and
// releases it as explode through the confirmation page; the exploded copies
// then arrive at the upstream, each showing only its own recipient.
func TestBrowserQuarantineReview(t *testing.T) {
	const user, pass = "rita", "a long test passphrase"
	sink := harness.NewSink(t)
	r := harness.Start(t, `
policy:
  mode: enforce
  internal_domains: [brand.example]
  rules:
    - name: customer-list-in-body
      when: body.addresses >= 50
      action: quarantine
    - name: crm-mailing
      when: 'sender == "crm@brand.example" && visible.external >= 2'
      action: quarantine
  default_action: pass
admin:
  listen: "{{addr "admin"}}"
  users:
    - {name: `+user+`, password_hash: "`+bcryptHash(t, pass)+`", role: reviewer}
`, harness.WithUpstream(sink.Addr()))

	// Three held messages, the survey last (the list shows it first).
	exportTo := []string{"agency@example.net"}
	harness.Send(t, r.Addr(), "sales@brand.example", exportTo, customerExport(200))
	var invited []string
	var invitedTo []string
	for _, x := range surveyRecipients[:5] {
		invited = append(invited, x.addr)
		invitedTo = append(invitedTo, fmt.Sprintf("%s <%s>", x.name, x.addr))
	}
	harness.Send(t, r.Addr(), "crm@brand.example", invited, harness.CRLF(
		"From: Nova Events <crm@brand.example>\n"+
			"To: "+strings.Join(invitedTo, ", ")+"\n"+
			"Subject: You're invited: the Nova X launch evening\n"+
			"Date: Fri, 20 Nov 2026 09:00:00 +0000\n"+
			"Message-ID: <launch-2026@brand.example>\n"+
			"\n"+
			"Join us on 3 December for the launch of the Nova X.\n"))
	var rcpts []string
	var to []string
	for _, x := range surveyRecipients {
		rcpts = append(rcpts, x.addr)
		to = append(to, fmt.Sprintf("%s <%s>", mime.QEncoding.Encode("utf-8", x.name), x.addr))
	}
	survey := harness.CRLF("From: Brand Customer Care <crm@brand.example>\n" +
		"To: " + strings.Join(to, ",\n ") + "\n" +
		"Subject: " + mime.QEncoding.Encode("utf-8", surveySubject) + "\n" +
		"Date: Sat, 21 Nov 2026 10:00:00 +0000\n" +
		"Message-ID: <survey-2026-11@brand.example>\n" +
		"MIME-Version: 1.0\n" +
		"Content-Type: text/plain; charset=utf-8\n" +
		"Content-Transfer-Encoding: 8bit\n" +
		"\n" +
		"Hi there,\n\n" +
		"thank you for choosing the Nova X! We would love to hear how your first weeks with it went.\n" +
		"The survey takes two minutes: https://survey.brand.example/nova-x\n\n" +
		"As a thank-you, everyone who answers gets 20% off their next accessory.\n\n" +
		"Your Brand Customer Care team\n")
	reply := harness.Send(t, r.Addr(), "crm@brand.example", rcpts, survey)
	if !strings.Contains(strings.ToLower(reply), "held") {
		t.Fatalf("the survey was not held: end of DATA reply %q", reply)
	}
	if n := sink.Count(); n != 0 {
		t.Fatalf("the upstream received %d messages before any release", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), browserBudget)
	defer cancel()
	b := harness.NewBrowser(t, ctx)
	origin := "http://" + r.AdminAddr()
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(b.Ctx, steps...); err != nil {
			t.Fatalf("browser: %s: %v (the browser's budget is %v)", what, err, browserBudget)
		}
	}
	text := func(what, sel string) string {
		t.Helper()
		s, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("browser: %s: %v", what, err)
		}
		return s
	}
	location := func() string {
		t.Helper()
		u, err := chromedp.Run(b.Ctx, chromedp.Location())
		if err != nil {
			t.Fatalf("browser: location: %v", err)
		}
		return u
	}

	// Sign in: the list sends an unauthenticated browser to the form.
	run("viewport", chromedp.EmulateViewport(1360, 860))
	run("open the quarantine", chromedp.Navigate(origin+"/quarantine"), chromedp.WaitVisible(chromedp.CSS("#user")))
	if u := location(); !strings.HasPrefix(u, origin+"/quarantine/signin") {
		t.Fatalf("an unauthenticated browser is at %s, want the sign-in page", u)
	}
	run("sign in",
		chromedp.SendKeys(chromedp.CSS("#user"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), pass),
		chromedp.Click(chromedp.CSS(`form[action="/quarantine/signin"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("table.holds")))

	// The list: three held messages, counted by rule; the survey first.
	list := text("the list", "main")
	for _, want := range []string{"3 messages are held", "crm-mailing", "customer-list-in-body", surveySubject, "the customer list you asked for", user} {
		if !strings.Contains(list, want) && !strings.Contains(text("the page", "body"), want) {
			t.Errorf("the list page does not show %q:\n%s", want, list)
		}
	}
	screenshot(t, b, "quarantine-list.png", true)

	// Open the survey.
	run("open the held survey",
		chromedp.Click(`//table[contains(@class,"holds")]//a[contains(., "Nova X phone")]`),
		chromedp.WaitVisible(chromedp.CSS("#why")))
	why, exposed := text("why", ".why"), text("exposed", ".expose")
	for _, want := range []string{"crm-mailing", "8", "visible recipients"} {
		if !strings.Contains(why, want) {
			t.Errorf("\"Why it was held\" does not show %q:\n%s", want, why)
		}
	}
	for _, want := range []string{"8 addresses shown to every recipient", "4 domains", "example.com"} {
		if !strings.Contains(exposed, want) {
			t.Errorf("\"Whom it would have exposed\" does not show %q:\n%s", want, exposed)
		}
	}
	detail := text("the detail page", "main")
	for _, want := range []string{"Chloé Martin", "hiro.tanaka@example.org", "crm@brand.example", "thank you for choosing the Nova X"} {
		if !strings.Contains(detail, want) {
			t.Errorf("the detail page does not show %q", want)
		}
	}
	screenshot(t, b, "quarantine-detail.png", true)

	// Release as explode (the default), through the confirmation page.
	checked, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`document.querySelector('input[name="rewrite"][value="explode"]').checked`))
	if err != nil || !checked {
		t.Fatalf("the release form does not default to explode (checked=%v, err=%v)", checked, err)
	}
	run("release",
		chromedp.Click(chromedp.CSS(`form[action$="/release"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(".confirm-form")))
	if c := text("the confirmation", ".confirm"); !strings.Contains(c, "Release this message?") || !strings.Contains(c, "8 copies will be sent") {
		t.Fatalf("the confirmation page says:\n%s", c)
	}
	if n := sink.Count(); n != 0 {
		t.Fatalf("the upstream received %d messages before the release was confirmed", n)
	}
	run("confirm the release",
		chromedp.Click(chromedp.CSS(`.confirm-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(".flash-ok")))
	if f := text("the result", ".flash-ok"); !strings.Contains(f, "Released as explode to 8 recipients: 8 copies queued.") {
		t.Errorf("after the release the page says %q", f)
	}
	if s := text("the state", ".page-head .badge"); !strings.EqualFold(s, "released") {
		t.Errorf("after the release the state badge says %q", s)
	}

	// The copies: one per recipient, each showing only its own.
	ms := sink.WaitUntil(t, deliverTimeout, "the 8 exploded copies of the survey", func(ms []*smtptest.Message) bool {
		n := 0
		for _, m := range ms {
			if strings.Contains(string(m.Header), "survey-2026-11@brand.example") {
				n++
			}
		}
		return n >= len(rcpts)
	})
	var got []string
	for _, m := range ms {
		if !strings.Contains(string(m.Header), "survey-2026-11@brand.example") {
			t.Errorf("the upstream received a message that was not released: %s", m.Header)
			continue
		}
		if len(m.Rcpts) != 1 {
			t.Errorf("an exploded copy went to %v, want one recipient", m.RcptAddrs())
			continue
		}
		own := m.Rcpts[0].Addr
		got = append(got, own)
		var toField string
		for _, f := range harness.Fields(m.Header) {
			switch strings.ToLower(f.Name) {
			case "to":
				toField = string(f.Raw)
			case "cc", "bcc":
				t.Errorf("the copy to %s has a %s: field", own, f.Name)
			}
		}
		if !strings.Contains(toField, own) {
			t.Errorf("the copy to %s has %q, want its own address in To:", own, toField)
		}
		for _, x := range rcpts {
			if x != own && strings.Contains(string(m.Header), x) {
				t.Errorf("the copy to %s shows %s", own, x)
			}
		}
	}
	slices.Sort(got)
	want := slices.Clone(rcpts)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("copies went to %v, want one to each of %v", got, want)
	}

	// The audit log has the release, done via the web by rita.
	run("audit log", chromedp.Navigate(origin+"/quarantine/audit"), chromedp.WaitVisible(chromedp.CSS("table.audit")))
	if a := text("the audit log", "table.audit"); !strings.Contains(a, "release-explode") || !strings.Contains(a, "via web") || !strings.Contains(a, user) {
		t.Errorf("the audit log does not show rita's release via web:\n%s", a)
	}
	// Nothing the pages loaded came from anywhere but the admin listener.
	if f := b.Foreign(origin); len(f) > 0 {
		t.Errorf("the browser requested URLs outside %s: %v", origin, f)
	}
	if reqs := b.Requests(); !slices.ContainsFunc(reqs, func(u string) bool { return strings.HasSuffix(u, "/quarantine/static/app.css") }) {
		t.Errorf("the stylesheet was never loaded; requests: %v", reqs)
	}
}

// screenshot writes the page to docs/NAME when BCCGUARD_SCREENSHOTS=1; full
// takes the whole page, otherwise the window (a laptop screen).
func screenshot(t *testing.T, b *harness.Browser, name string, full bool) {
	t.Helper()
	if os.Getenv(ScreenshotsEnv) != "1" {
		return
	}
	action := chromedp.CaptureScreenshot()
	if full {
		action = chromedp.FullScreenshot(100)
	}
	png, err := chromedp.Run(b.Ctx, action)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "docs", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}
