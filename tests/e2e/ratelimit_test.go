package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
)

const crmPassword = "a rate limited passphrase"

// startLimitedRelay runs a relay whose "submission" listener takes STARTTLS
// and AUTH for the users crm-a and crm-b, with the rate limits given.
func startLimitedRelay(t *testing.T, sink *smtptest.Sink, limits string) (*harness.Relay, harness.TLSFiles) {
	t.Helper()
	dir := t.TempDir()
	tlsFiles := harness.WriteTLSCert(t, dir)
	hash := bcryptHash(t, crmPassword)
	r := harness.Start(t, fmt.Sprintf(`
listeners:
  - name: smtp
    address: {{addr "smtp"}}
  - name: submission
    address: {{addr "submission"}}
    tls: starttls
    tls_cert: {{.Dir}}/cert.pem
    tls_key: {{.Dir}}/key.pem
    allow_networks: [192.0.2.0/24]
auth:
  users:
    - {name: crm-a, password_hash: %q}
    - {name: crm-b, password_hash: %q}
rate_limits:
%s`, hash, hash, limits), harness.WithUpstream(sink.Addr()), harness.InDir(dir))
	return r, tlsFiles
}

// sendAs submits one message as a CRM user over STARTTLS + AUTH.
func sendAs(r *harness.Relay, tlsFiles harness.TLSFiles, user, marker string, rcpts ...string) (string, error) {
	msg := harness.CRLF(fmt.Sprintf("From: news@%s.example\nTo: %s\nSubject: offer\nMessage-ID: <%s@example.com>\n\nHello.\n",
		user, strings.Join(rcpts, ", "), marker))
	return harness.TrySend(r.AddrOf("submission"), "news@"+user+".example", rcpts, bytesReader(string(msg)),
		&harness.SendOptions{StartTLS: tlsFiles.Client, Auth: sasl.NewPlainClient("", user, crmPassword)})
}

var markerOf = regexp.MustCompile(`(?i)\r\nMessage-ID: <([^@>]+)@`)

// copies counts the copies the sink got per message marker and recipient.
func copies(ms []*smtptest.Message) map[string]int {
	got := map[string]int{}
	for _, m := range ms {
		mk := markerOf.FindSubmatch(m.Header)
		if mk == nil {
			continue
		}
		for _, rc := range m.RcptAddrs() {
			got[string(mk[1])+" "+rc]++
		}
	}
	return got
}

// TestRateLimitDefersOneCRM: a CRM over its limit of messages per window
// gets 451 4.7.0 at MAIL FROM while another CRM is served, and its mail is
// accepted again once the window has passed.
func TestRateLimitDefersOneCRM(t *testing.T) {
	t.Parallel()
	const window = 3 * time.Second
	sink := harness.NewSink(t)
	r, tlsFiles := startLimitedRelay(t, sink, "  - {name: crm-burst, key: user, per: 3s, messages: 3}\n")

	start := time.Now()
	for i := range 3 {
		if _, err := sendAs(r, tlsFiles, "crm-a", fmt.Sprintf("a-%d", i), "ann@example.net"); err != nil {
			t.Fatalf("crm-a message %d of its 3: %v", i+1, err)
		}
	}
	_, err := sendAs(r, tlsFiles, "crm-a", "a-over", "ann@example.net")
	code, enhanced := harness.Code(err)
	if code != 451 || enhanced != "4.7.0" || !strings.Contains(err.Error(), "crm-burst") {
		t.Fatalf("crm-a's 4th message within %v: %v, want 451 4.7.0 naming the limit", window, err)
	}
	if !strings.Contains(err.Error(), "MAIL FROM") {
		t.Fatalf("refused at %v, want at MAIL FROM", err)
	}
	for i := range 2 {
		if _, err := sendAs(r, tlsFiles, "crm-b", fmt.Sprintf("b-%d", i), "bob@example.org"); err != nil {
			t.Fatalf("crm-b while crm-a is over its limit: %v", err)
		}
	}
	// crm-a retries, as its MTA would, until it is let in.
	var admitted time.Time
	for deadline := time.Now().Add(queueTimeout); ; {
		_, err := sendAs(r, tlsFiles, "crm-a", "a-over", "ann@example.net")
		if err == nil {
			admitted = time.Now()
			break
		}
		if code, _ := harness.Code(err); code != 451 || time.Now().After(deadline) {
			t.Fatalf("crm-a retrying: %v", err)
		}
		time.Sleep(harness.PollInterval)
	}
	if d := admitted.Sub(start); d < window {
		t.Fatalf("crm-a was admitted again %v after its first message, before its %v window had passed", d, window)
	}
	got := copies(sink.WaitFor(t, 6, deliverTimeout))
	for _, k := range []string{"a-0 ann@example.net", "a-1 ann@example.net", "a-2 ann@example.net", "a-over ann@example.net",
		"b-0 bob@example.org", "b-1 bob@example.org"} {
		if got[k] != 1 {
			t.Errorf("%s delivered %d times, want once (all: %v)", k, got[k], got)
		}
	}
	if v := metric(t, r, `bccguard_rate_limited_total{action="defer",limit="crm-burst"}`); v == "" || v == "0" {
		t.Errorf("bccguard_rate_limited_total{crm-burst,defer} = %q, want the refusals counted", v)
	}
}

// TestRateLimitSmtplibLosesNothing: Python's smtplib as a client that
// retries 451 at MAIL FROM and 452 at RCPT TO gets every message to every
// recipient exactly once through limits on messages and on recipients.
func TestRateLimitSmtplibLosesNothing(t *testing.T) {
	t.Parallel()
	const py = "/usr/bin/python3" // Debian's: smtplib is in the standard library
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("%s: %v (Debian's python3 is installed by scripts/install-test-deps.sh)", py, err)
	}
	sink := harness.NewSink(t)
	r, _ := startLimitedRelay(t, sink, `  - {name: msgs, key: user, per: 2s, messages: 3}
  - {name: rcpts, key: user, per: 2s, recipients: 5}
`)
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	const messages = 8
	rcpts := []string{"ann@example.net", "bob@example.org"}
	args := []string{filepath.Join(root, "tests", "smtplib", "retry_send.py"),
		"--port", fmt.Sprint(r.Port("submission")), "--user", "crm-a", "--password-env", "SMTP_PASSWORD",
		"--from", "news@brand.example", "--messages", fmt.Sprint(messages), "--marker", "py",
		"--deadline", fmt.Sprint(deliverTimeout.Seconds())}
	for _, rc := range rcpts {
		args = append(args, "--rcpt", rc)
	}
	cmd := exec.Command(py, args...)
	cmd.Env = append(os.Environ(), "SMTP_PASSWORD="+crmPassword)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("retry_send.py: %v\n%s\n%s", err, out, stderr)
	}
	var stats struct {
		Sent         int      `json:"sent"`
		MailDeferred int      `json:"mail_deferred"`
		RcptDeferred int      `json:"rcpt_deferred"`
		Codes        []string `json:"codes"`
	}
	if err := json.Unmarshal(out, &stats); err != nil {
		t.Fatalf("retry_send.py output: %v\n%s", err, out)
	}
	if stats.Sent != messages || stats.MailDeferred == 0 || stats.RcptDeferred == 0 {
		t.Fatalf("smtplib: %+v; want all %d sent after both 451s at MAIL FROM and 452s at RCPT TO", stats, messages)
	}
	for _, c := range stats.Codes {
		if !strings.HasPrefix(c, "451 4.7.0") && !strings.HasPrefix(c, "452 4.5.3") {
			t.Errorf("smtplib saw %q, want only 451 4.7.0 and 452 4.5.3", c)
		}
	}
	want := messages * len(rcpts)
	ms := sink.WaitUntil(t, deliverTimeout, "a copy of every message for every recipient", func(ms []*smtptest.Message) bool {
		return len(copies(ms)) == want
	})
	got := copies(ms)
	for i := 1; i <= messages; i++ {
		for _, rc := range rcpts {
			if k := fmt.Sprintf("py-%d %s", i, rc); got[k] != 1 {
				t.Errorf("%s delivered %d times, want once", k, got[k])
			}
		}
	}
}

// TestRateLimitQuarantineHoldsBurst: a quarantine limit accepts the burst
// and holds what is over it, with the rule rate-limit:NAME, as the review
// pages show.
func TestRateLimitQuarantineHoldsBurst(t *testing.T) {
	t.Parallel()
	const user, pass = "sam", "review passphrase of the test"
	sink := harness.NewSink(t)
	r := harness.Start(t, `
rate_limits:
  - {name: domain-burst, key: sender_domain, per: hour, messages: 2, action: quarantine}
admin:
  listen: "{{addr "admin"}}"
  users:
    - {name: `+user+`, password_hash: "`+bcryptHash(t, pass)+`", role: reviewer}
`, harness.WithUpstream(sink.Addr()))
	var held []string
	for i := range 5 {
		msg := harness.CRLF(fmt.Sprintf("From: news@brand.example\nTo: ann@example.net\nSubject: burst %d\nMessage-ID: <burst-%d@brand.example>\n\nHi.\n", i, i))
		reply := harness.Send(t, r.Addr(), "news@brand.example", []string{"ann@example.net"}, msg)
		switch m := heldAs.FindStringSubmatch(reply); {
		case i < 2 && m != nil:
			t.Fatalf("message %d of 2 was held: %q", i+1, reply)
		case i < 2:
			queueID(t, reply)
		case m == nil:
			t.Fatalf("message %d over the limit: %q, want held for review", i+1, reply)
		default:
			held = append(held, m[1])
		}
	}
	// Another sender domain is not part of the burst.
	queueID(t, harness.Send(t, r.Addr(), "news@other.example", []string{"ann@example.net"},
		harness.CRLF("From: news@other.example\nTo: ann@example.net\nSubject: other\n\nHi.\n")))
	sink.WaitFor(t, 3, deliverTimeout)

	var page struct {
		Items []struct{ ID, Rule, State string }
	}
	out := r.MustCLI("quarantine", "list", "--json", "--data-dir", r.DataDir())
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 3 {
		t.Fatalf("quarantine list: %s, want the 3 held", out)
	}
	for _, it := range page.Items {
		if it.Rule != "rate-limit:domain-burst" || it.State != "held" {
			t.Errorf("hold %+v, want rule rate-limit:domain-burst", it)
		}
	}
	c := r.SignIn(user, pass)
	list := r.ReviewPage(c, "")
	if !strings.Contains(list, "rate-limit:domain-burst") {
		t.Fatalf("the review list does not show the rule:\n%s", list)
	}
	detail := r.ReviewPage(c, "/m/"+held[0])
	for _, want := range []string{"rate-limit:domain-burst", "rate limit domain-burst: 3 messages in the last hour (limit 2)", "rate_limit.count"} {
		if !strings.Contains(detail, want) {
			t.Errorf("the review page of %s does not show %q", held[0], want)
		}
	}
	if v := metric(t, r, `bccguard_rate_limited_total{action="quarantine",limit="domain-burst"}`); v != "3" {
		t.Errorf("bccguard_rate_limited_total{domain-burst,quarantine} = %q, want 3", v)
	}
}
