package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/relay/store/postgres/pgtest"
	"github.com/bccguard/bccguard/tests/harness"
)

const hookSecret = "e2e-webhook-secret"

// hook is a webhook receiver that checks each request's signature itself
// (HMAC-SHA256 of "t.body", as README describes it, not with bccguard's
// code) and can be taken down: then it answers 503 and keeps nothing.
type hook struct {
	t       *testing.T
	srv     *httptest.Server
	down    atomic.Bool
	refused atomic.Int32
	mu      sync.Mutex
	byID    map[string]int // notification ID -> requests accepted
	events  []hookEvent
}

// hookEvent is what the receiver kept of one accepted request.
type hookEvent struct {
	ID, Event, QueueID, Actor, Action, Link, Subject, Text string
	Monitor                                                bool
	Body                                                   string
}

func newHook(t *testing.T, tls bool) *hook {
	h := &hook{t: t, byID: map[string]int{}}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if h.down.Load() {
			h.refused.Add(1)
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if err := checkSignature(r.Header.Get("X-Bccguard-Signature"), body); err != nil {
			t.Errorf("webhook request with a bad signature (%v): %s", err, body)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var ev struct {
			ID, Event, Link, Text string
			Monitor               bool
			Message               *struct {
				QueueID string `json:"queue_id"`
				Subject string `json:"subject"`
			} `json:"message"`
			Review *struct{ Actor, Action string } `json:"review"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("webhook body: %v: %s", err, body)
		}
		if ev.ID != r.Header.Get("X-Bccguard-Id") || ev.Event != r.Header.Get("X-Bccguard-Event") {
			t.Errorf("headers %v do not match the body %s", r.Header, body)
		}
		he := hookEvent{ID: ev.ID, Event: ev.Event, Link: ev.Link, Text: ev.Text, Monitor: ev.Monitor, Body: string(body)}
		if ev.Message != nil {
			he.QueueID, he.Subject = ev.Message.QueueID, ev.Message.Subject
		}
		if ev.Review != nil {
			he.Actor, he.Action = ev.Review.Actor, ev.Review.Action
		}
		h.mu.Lock()
		h.byID[ev.ID]++
		h.events = append(h.events, he)
		h.mu.Unlock()
	})
	if tls {
		h.srv = httptest.NewTLSServer(handler)
	} else {
		h.srv = httptest.NewServer(handler)
	}
	t.Cleanup(h.srv.Close)
	return h
}

// checkSignature verifies "t=<unix>,v1=<hex>" over "<t>.<body>".
func checkSignature(header string, body []byte) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return fmt.Errorf("malformed header %q", header)
	}
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %v away", d)
	}
	m := hmac.New(sha256.New, []byte(hookSecret))
	fmt.Fprintf(m, "%s.%s", ts, body)
	want := hex.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return fmt.Errorf("signature %s, want %s", sig, want)
	}
	return nil
}

func (h *hook) got() []hookEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookEvent(nil), h.events...)
}

// find returns the received event of a message, or false.
func (h *hook) find(queueID, event string) (hookEvent, bool) {
	for _, e := range h.got() {
		if e.QueueID == queueID && e.Event == event {
			return e, true
		}
	}
	return hookEvent{}, false
}

func (h *hook) wait(t *testing.T, queueID, event string) hookEvent {
	t.Helper()
	harness.Eventually(t, deliverTimeout, fmt.Sprintf("the %s notification of %s", event, queueID), func() bool {
		_, ok := h.find(queueID, event)
		return ok
	})
	e, _ := h.find(queueID, event)
	return e
}

// once checks that no notification was accepted twice and no message had
// two of one event.
func (h *hook) once(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := map[string]bool{}
	for _, e := range h.events {
		if n := h.byID[e.ID]; n != 1 {
			t.Errorf("notification %s (%s of %s) arrived %d times", e.ID, e.Event, e.QueueID, n)
		}
		k := e.QueueID + "/" + e.Event + "/" + e.Actor
		if seen[k] && e.Event != "digest" {
			t.Errorf("two %s notifications of %s", e.Event, e.QueueID)
		}
		seen[k] = true
	}
}

// writeHookFiles puts the webhook's secret and (for TLS) CA into dir.
func writeHookFiles(t *testing.T, dir string, h *hook) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte(hookSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c := h.srv.Certificate(); c != nil {
		p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		if err := os.WriteFile(filepath.Join(dir, "ca.pem"), p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// apiPost calls the review API with a bearer token and returns the status
// and body.
func apiPost(t *testing.T, r *harness.Relay, token, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+r.AdminAddr()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func heldID(t *testing.T, reply string) string {
	t.Helper()
	m := heldAs.FindStringSubmatch(reply)
	if m == nil {
		t.Fatalf("reply %q: want \"held for review as ID\"", reply)
	}
	return m[1]
}

var notifyRcpts = []string{"bob@example.net", "carol@example.org"}

func notifyMessage(from, subject string) []byte {
	return harness.CRLF(fmt.Sprintf("From: %s\nTo: Bob <bob@example.net>, Carol <carol@example.org>\nSubject: %s\nMessage-ID: <%s@example.com>\n\nthe list\n",
		from, subject, strings.ReplaceAll(subject, " ", "-")))
}

// TestNotifyWebhookEvents: a signed webhook over TLS (its CA in ca_file)
// gets, from the real binary, a hold, the four-eyes wait, the release and
// an expiry. The receiver is down while the first three happen (the
// released copies are delivered meanwhile): each arrives once it is back,
// and none arrives twice, a restart included.
func TestNotifyWebhookEvents(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	h := newHook(t, true)
	dir := t.TempDir()
	writeHookFiles(t, dir, h)
	r := harness.Start(t, `
admin:
  listen: {{addr "admin"}}
  public_url: https://review.example
  tokens:
    - {name: rita, sha256: `+sha256Hex("tok-rita")+`, role: reviewer}
    - {name: rob, sha256: `+sha256Hex("tok-rob")+`, role: reviewer}
quarantine:
  retention: 8s
  four_eyes_rules: [hold-for-review]
notify:
  retry_first: 200ms
  retry_max: 1s
  channels:
    - name: siem
      type: webhook
      url: `+h.srv.URL+`/hooks/bccguard
      secret_file: {{.Dir}}/secret
      ca_file: {{.Dir}}/ca.pem
policy:
  rules:
    - name: hold-for-review
      when: 'sender == "hold@example.com"'
      action: quarantine
  default_action: pass
`, harness.WithUpstream(sink.Addr()), harness.InDir(dir))

	h.down.Store(true)
	first := heldID(t, harness.Send(t, r.Addr(), "hold@example.com", notifyRcpts, notifyMessage("hold@example.com", "spring \u202esurvey")))
	if code, body := apiPost(t, r, "tok-rita", "/api/v1/quarantine/"+first+"/release", `{}`); code != 202 || !strings.Contains(body, "needs_second_reviewer") {
		t.Fatalf("rita's release: %d %s", code, body)
	}
	if code, body := apiPost(t, r, "tok-rob", "/api/v1/quarantine/"+first+"/release", `{}`); code != 200 || !strings.Contains(body, `"released"`) {
		t.Fatalf("rob's release: %d %s", code, body)
	}
	second := heldID(t, harness.Send(t, r.Addr(), "hold@example.com", notifyRcpts, notifyMessage("hold@example.com", "left to expire")))
	secondAt := time.Now()
	harness.Eventually(t, queueTimeout, "the receiver to refuse several attempts", func() bool { return h.refused.Load() >= 6 })
	if n := len(h.got()); n != 0 {
		t.Fatalf("%d notifications accepted while the receiver was down", n)
	}
	// Mail does not wait for the receiver: the released copies go out.
	sink.WaitFor(t, 2, deliverTimeout)
	h.down.Store(false)

	held := h.wait(t, first, "held")
	wait := h.wait(t, first, "needs_second_reviewer")
	rel := h.wait(t, first, "released")
	h.wait(t, second, "held")
	if held.Link != "https://review.example/quarantine/m/"+first || held.Subject != "spring survey" || held.Monitor {
		t.Errorf("hold notification %+v", held)
	}
	if wait.Actor != "rita" || wait.Action != "approve" || rel.Actor != "rob" || rel.Action != "release-explode" {
		t.Errorf("review notifications %+v, %+v", wait, rel)
	}

	// The second hold expires; expiry runs at start, so a restart after
	// its retention (8s) has passed expires it.
	harness.Eventually(t, queueTimeout, "the second hold's retention to pass", func() bool { return time.Since(secondAt) > 9*time.Second })
	r.Restart()
	exp := h.wait(t, second, "expired")
	if exp.Actor != "system:expiry" || exp.Action != "expire-delete" {
		t.Errorf("expiry notification %+v", exp)
	}
	if n := len(h.got()); n != 5 {
		t.Errorf("%d notifications, want 5: %+v", n, h.got())
	}
	h.once(t)
	for _, e := range h.got() {
		for _, a := range notifyRcpts {
			if strings.Contains(e.Body, a) {
				t.Errorf("the %s notification names recipient %s: %s", e.Event, a, e.Body)
			}
		}
	}
	if v := metric(t, r, `bccguard_notifications_sent_total{channel="siem"}`); v != "1" {
		// One since the restart: the expiry.
		t.Errorf("sent_total{siem} after the restart = %q, want 1", v)
	}
}

// TestNotifyEmailAndSender: the email channel and the notices to the
// sender go to the upstream as ordinary one-recipient messages, although
// the policy holds everything: they never meet it. The sender is told of
// the hold and of the release; the null sender is told nothing.
func TestNotifyEmailAndSender(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	r := harness.Start(t, `
notify:
  channels:
    - {name: security, type: email, to: security@example.com, events: [held, released]}
policy:
  rules:
    - name: hold-everything
      when: "true"
      action: quarantine
      notify_sender: true
`, harness.WithUpstream(sink.Addr()))
	to := func(addr string) func([]*smtptest.Message) []*smtptest.Message {
		return func(ms []*smtptest.Message) []*smtptest.Message {
			var out []*smtptest.Message
			for _, m := range ms {
				if len(m.Rcpts) == 1 && m.Rcpts[0].Addr == addr {
					out = append(out, m)
				}
			}
			return out
		}
	}
	security, sender := to("security@example.com"), to("crm@example.com")

	id := heldID(t, harness.Send(t, r.Addr(), "crm@example.com", notifyRcpts, notifyMessage("crm@example.com", "Spring sale")))
	ms := sink.WaitUntil(t, deliverTimeout, "the security email and the sender notice", func(ms []*smtptest.Message) bool {
		return len(security(ms)) == 1 && len(sender(ms)) == 1
	})
	sec, snd := string(security(ms)[0].Data), string(sender(ms)[0].Data)
	for _, m := range []*smtptest.Message{security(ms)[0], sender(ms)[0]} {
		if m.From != "" {
			t.Errorf("a notice from <%s>, want the null sender", m.From)
		}
	}
	for _, want := range []string{"From: \"bccguard\" <bccguard@" + harness.Hostname + ">", "To: <security@example.com>", "Auto-Submitted: auto-generated", "[bccguard] Held for review"} {
		if !strings.Contains(sec, want) {
			t.Errorf("security email lacks %q:\n%s", want, sec)
		}
	}
	for _, want := range []string{"To: <crm@example.com>", "Auto-Submitted: auto-replied", "Subject: Your message is held for review", "to 2 recipients was held for review because"} {
		if !strings.Contains(strings.ReplaceAll(snd, "=\r\n", ""), want) {
			t.Errorf("sender notice lacks %q:\n%s", want, snd)
		}
	}
	for _, a := range notifyRcpts {
		if strings.Contains(sec+snd, a) {
			t.Errorf("a notice names recipient %s", a)
		}
	}

	// The null sender: the security email, and no notice.
	id2 := heldID(t, harness.Send(t, r.Addr(), "", notifyRcpts, notifyMessage("nobody@example.com", "Bounce")))
	ms = sink.WaitUntil(t, deliverTimeout, "the second security email", func(ms []*smtptest.Message) bool { return len(security(ms)) == 2 })
	if sec2 := string(security(ms)[1].Data); !strings.Contains(sec2, id2) || !strings.Contains(sec2, "from <>") {
		t.Errorf("the null sender's hold %s: security email\n%s", id2, sec2)
	}
	harness.Eventually(t, queueTimeout, "the outbox to be empty", func() bool {
		return metric(t, r, `bccguard_notifications_queued{channel="sender"}`) == "0" && metric(t, r, `bccguard_notifications_queued{channel="security"}`) == "0"
	})
	waitQueue(t, r, "nothing pending", func(q []harness.QueueEntry) bool { return pending(q) == 0 })
	if v := metric(t, r, `bccguard_notifications_sent_total{channel="sender"}`); v != "1" {
		t.Errorf("sender notices sent: %s, want 1 (none for the null sender)", v)
	}

	// Only the two messages were held and decided: the notices never met
	// the policy.
	var page struct{ Items []struct{ ID string } }
	out := r.MustCLI("quarantine", "list", "--json", "--data-dir", r.DataDir())
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Items) != 2 {
		t.Fatalf("quarantine list: %v\n%s", err, out)
	}
	if v := metric(t, r, `bccguard_policy_decisions_total{action="quarantine",mode="enforce",rule="hold-everything"}`); v != "2" {
		t.Errorf("policy decisions %q, want 2", v)
	}

	// Released: two exploded copies, a second notice to the sender, a
	// security email; and nothing for the null sender's hold.
	r.MustCLI("quarantine", "release", id, "--data-dir", r.DataDir())
	ms = sink.WaitUntil(t, deliverTimeout, "the release's copies and notices", func(ms []*smtptest.Message) bool {
		return len(sender(ms)) == 2 && len(security(ms)) == 3 && len(to("bob@example.net")(ms)) == 1 && len(to("carol@example.org")(ms)) == 1
	})
	if rel := strings.ReplaceAll(string(sender(ms)[1].Data), "=\r\n", ""); !strings.Contains(rel, "Subject: Your message was released") {
		t.Errorf("release notice:\n%s", rel)
	}
}

// TestNotifyMonitorMode: a policy on trial relays the message and still
// notifies, marked as what would have been held, with no review link.
func TestNotifyMonitorMode(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	h := newHook(t, false)
	dir := t.TempDir()
	writeHookFiles(t, dir, h)
	r := harness.Start(t, `
admin:
  listen: {{addr "admin"}}
  public_url: https://review.example
notify:
  channels:
    - {name: siem, type: webhook, url: "`+h.srv.URL+`", secret_file: "{{.Dir}}/secret"}
policy:
  mode: monitor
  rules:
    - name: many-visible
      when: visible.count >= 2
      action: quarantine
      notify_sender: true
`, harness.WithUpstream(sink.Addr()), harness.InDir(dir))
	id := queueID(t, harness.Send(t, r.Addr(), "crm@example.com", notifyRcpts, notifyMessage("crm@example.com", "Trial run")))
	sink.WaitFor(t, 1, deliverTimeout)
	e := h.wait(t, id, "held")
	if !e.Monitor || e.Link != "" || !strings.HasPrefix(e.Text, "Would have been held") {
		t.Errorf("monitor-mode notification %+v", e)
	}
	waitQueue(t, r, "nothing pending", func(q []harness.QueueEntry) bool { return pending(q) == 0 })
	if v := metric(t, r, `bccguard_notifications_sent_total{channel="sender"}`); v != "0" {
		t.Errorf("a sender was told of a trial: %s", v)
	}
}

// TestNotifyPostgresReplicas: two replicas on one PostgreSQL database, both
// sending notifications: each hold, whichever replica took it, gives one
// notification.
func TestNotifyPostgresReplicas(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t, "bccguard_e2e_notify")
	sink := harness.NewSink(t)
	h := newHook(t, false)
	config := func(helo string) string {
		return fmt.Sprintf(`
store: {backend: postgres, dsn: %q, lease: 3s}
upstream: {address: %q, tls: none, helo: %s}
notify:
  retry_first: 200ms
  retry_max: 1s
  channels:
    - {name: siem, type: webhook, url: %q, secret_file: "{{.Dir}}/secret"}
policy:
  rules:
    - {name: hold-for-review, when: 'sender == "hold@example.com"', action: quarantine}
`, dsn, sink.Addr(), helo, h.srv.URL)
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	writeHookFiles(t, dirA, h)
	writeHookFiles(t, dirB, h)
	a := harness.Start(t, config("a.relay.test"), harness.InDir(dirA))
	b := harness.Start(t, config("b.relay.test"), harness.InDir(dirB))

	// While the receiver is down both replicas try, and neither may send
	// what the other has.
	h.down.Store(true)
	var ids []string
	for i := range 6 {
		r := a
		if i%2 == 1 {
			r = b
		}
		ids = append(ids, heldID(t, harness.Send(t, r.Addr(), "hold@example.com", notifyRcpts, notifyMessage("hold@example.com", fmt.Sprintf("replica test %d", i)))))
	}
	harness.Eventually(t, queueTimeout, "attempts while the receiver is down", func() bool { return h.refused.Load() >= 6 })
	h.down.Store(false)
	for _, id := range ids {
		h.wait(t, id, "held")
	}
	sum := func() int {
		n := 0
		for _, r := range []*harness.Relay{a, b} {
			v, _ := strconv.Atoi(metric(t, r, `bccguard_notifications_sent_total{channel="siem"}`))
			n += v
		}
		return n
	}
	harness.Eventually(t, queueTimeout, "both replicas to record what they sent", func() bool { return sum() >= len(ids) })
	if n := sum(); n != len(ids) {
		t.Errorf("the replicas sent %d notifications for %d holds", n, len(ids))
	}
	if n := len(h.got()); n != len(ids) {
		t.Errorf("the receiver got %d notifications for %d holds", n, len(ids))
	}
	h.once(t)
}

// TestNotifyTestCommand: `bccguard notify test` sends a test notification
// to each channel without a running relay (the webhook signed, the email
// straight to the upstream) and exits 1 when one fails, naming it.
func TestNotifyTestCommand(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	h := newHook(t, true)
	dir := t.TempDir()
	writeHookFiles(t, dir, h)
	cfg := filepath.Join(dir, "bccguard.yaml")
	write := func(extra string) {
		text := fmt.Sprintf(`hostname: %s
data_dir: %s
upstream: {address: %q, tls: none}
notify:
  channels:
    - {name: siem, type: webhook, url: %q, secret_file: %q, ca_file: %q}
    - {name: security, type: email, to: security@example.com}
%s`, harness.Hostname, filepath.Join(dir, "data"), sink.Addr(), h.srv.URL, filepath.Join(dir, "secret"), filepath.Join(dir, "ca.pem"), extra)
		if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	res := harness.RunCLI(t, "notify", "test", "--config", cfg)
	if !res.OK() || !strings.Contains(res.Stdout, "siem (webhook): ok") || !strings.Contains(res.Stdout, "security (email): ok") {
		t.Fatalf("notify test:\n%s", res)
	}
	if e := h.got(); len(e) != 1 || e[0].Event != "test" {
		t.Fatalf("the webhook got %+v, want one test event", e)
	}
	ms := sink.WaitFor(t, 1, deliverTimeout)
	if ms[0].Rcpts[0].Addr != "security@example.com" || !strings.Contains(string(ms[0].Data), "Test notification from bccguard") {
		t.Fatalf("the upstream got %+v", ms[0])
	}

	// One channel only; then a receiver that refuses.
	if res := harness.RunCLI(t, "notify", "test", "--config", cfg, "--channel", "siem", "--json"); !res.OK() || !strings.Contains(res.Stdout, `"channel": "siem"`) || strings.Contains(res.Stdout, "security") {
		t.Fatalf("notify test --channel siem:\n%s", res)
	}
	h.down.Store(true)
	res = harness.RunCLI(t, "notify", "test", "--config", cfg, "--channel", "siem")
	if res.ExitCode != 1 || !strings.Contains(res.Stdout, "siem (webhook): FAILED") || !strings.Contains(res.Stdout, "503") {
		t.Fatalf("notify test against a receiver that is down:\n%s", res)
	}
	if res := harness.RunCLI(t, "notify", "test", "--config", cfg, "--channel", "nope"); res.ExitCode != 2 || !strings.Contains(res.Stderr, `no notify channel named "nope"`) {
		t.Fatalf("notify test --channel nope:\n%s", res)
	}
}
