package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay/notify"
	"github.com/bccguard/bccguard/relay/store"
	"github.com/bccguard/bccguard/relay/store/embedded"
	"github.com/bccguard/bccguard/tests/harness"
)

var ctx = context.Background()

const secret = "s3cr3t-webhook-key"

// recipients of the test hold: no notification may name any of them.
var recipients = []string{"ann@one.example", "bob@two.example", "cem@three.example"}

func heldMessage(id, sender string) store.Message {
	var env []store.Recipient
	var vis []store.VisibleRecipient
	for _, r := range recipients {
		env = append(env, store.Recipient{Addr: r})
		vis = append(vis, store.VisibleRecipient{Name: "Name of " + r, Address: r, Field: "to"})
	}
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	return store.Message{
		ID: id, Envelope: store.Envelope{Sender: sender, Recipients: env},
		Client: store.Client{Listener: "submission", IP: "192.0.2.7", User: "crm"}, ReceivedAt: at,
		Quarantine: &store.Quarantine{
			Rule: "many-visible", Reason: "rule many-visible: visible.external >= 2 (visible.external=3)",
			Figures: map[string]int{"visible.count": 3, "visible.external": 3, "body.addresses": 0},
			Visible: vis, ExpiresAt: at.Add(30 * 24 * time.Hour),
		},
	}
}

// hostile is a subject with a bidirectional override, control characters
// and a length no chat line should carry.
var hostile = "Spring \u202esale\u202c\x07 " + strings.Repeat("x", 300)

func parseConfig(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("bccguard.yaml", []byte(text))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, text)
	}
	return cfg
}

func secretFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestNotices: each channel gets the events it chose, with keys of
// message, event and channel; the sender is told when the rule asks (not in
// monitor mode, never the null sender); nothing names a recipient.
func TestNotices(t *testing.T) {
	cfg := parseConfig(t, `
hostname: relay.example
admin: {public_url: "https://review.example/"}
notify:
  channels:
    - {name: all, type: webhook, url: "https://hooks.example/a", secret_file: /dev/null}
    - {name: holds, type: email, to: security@example.com, events: [held]}
`)
	n := notify.NewNotifier(cfg)
	m := heldMessage("Q1", "news@brand.example")
	m.Quarantine.NotifySender = true
	hdr := notify.HeaderInfo{Subject: hostile, Date: "Mon, 2 Mar 2026 10:00:00 +0100", MessageID: "<m1@brand.example>"}
	keys := func(ns []store.NewNotification) []string {
		var out []string
		for _, x := range ns {
			out = append(out, x.Key)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		c    notify.Change
		want []string
	}{
		{"held", notify.Change{Event: notify.EventHeld, Msg: m}, []string{"Q1/held/all", "Q1/held/holds", "Q1/held/sender"}},
		{"monitor", notify.Change{Event: notify.EventHeld, Msg: m, Monitor: true}, []string{"Q1/would-hold/all", "Q1/would-hold/holds"}},
		{"four-eyes", notify.Change{Event: notify.EventNeedsSecondReviewer, Msg: m, Actor: "rita", Action: "approve", Approvals: 1},
			[]string{"Q1/needs_second_reviewer/rita/approve/all"}},
		{"released", notify.Change{Event: notify.EventReleased, Msg: m, Actor: "rob", Action: "release-explode"}, []string{"Q1/released/all", "Q1/released/sender"}},
		{"deleted", notify.Change{Event: notify.EventDeleted, Msg: m, Actor: "rob", Action: "delete"}, []string{"Q1/deleted/all", "Q1/deleted/sender"}},
		{"expired", notify.Change{Event: notify.EventExpired, Msg: m, Actor: "system:expiry", Action: "expire-delete"}, []string{"Q1/expired/all", "Q1/expired/sender"}},
	} {
		tc.c.Quarantine, tc.c.Header = m.Quarantine, hdr
		ns := n.Notices(tc.c)
		if got := keys(ns); strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s: keys %v, want %v", tc.name, got, tc.want)
		}
		for _, x := range ns {
			for _, r := range recipients {
				if strings.Contains(string(x.Payload), r) {
					t.Errorf("%s: the %s notification names recipient %s: %s", tc.name, x.Channel, r, x.Payload)
				}
			}
			if x.Channel == "sender" {
				continue
			}
			var ev notify.Event
			if err := json.Unmarshal(x.Payload, &ev); err != nil {
				t.Fatal(err)
			}
			if s := ev.Message.Subject; strings.ContainsAny(s, "\u202e\u202c\x07") || len([]rune(s)) > notify.MaxSubject || !strings.HasPrefix(s, "Spring sale x") {
				t.Errorf("%s: subject %q is not made safe", tc.name, s)
			}
			wantLink := "https://review.example/quarantine/m/Q1"
			if tc.c.Monitor {
				wantLink = ""
			}
			if ev.Link != wantLink || ev.Monitor != tc.c.Monitor || ev.Message.Sender != "news@brand.example" || ev.Message.AuthUser != "crm" || ev.Message.Rule != "many-visible" || ev.Message.Recipients != 3 {
				t.Errorf("%s: event %+v %+v", tc.name, ev, ev.Message)
			}
		}
	}

	// The sender notices: the template for held, released, expired; the
	// delete notice for a deletion (also when only the reviewer asks).
	d := notify.Change{Event: notify.EventDeleted, Msg: m, Quarantine: &store.Quarantine{Rule: "r"}, Header: hdr, Actor: "rob", TellSender: true}
	var p notify.SenderPayload
	ns := n.Notices(d)
	if err := json.Unmarshal(ns[len(ns)-1].Payload, &p); err != nil || p.To != "news@brand.example" || p.Text != cfg.Quarantine.DeleteNotice || p.Orig.MessageID != "<m1@brand.example>" {
		t.Errorf("delete notice %+v %v", p, err)
	}
	d.Quarantine.NotifySender, d.TellSender, d.Event = true, false, notify.EventHeld
	ns = n.Notices(d)
	if err := json.Unmarshal(ns[len(ns)-1].Payload, &p); err != nil || !strings.HasPrefix(p.Text, `Your message "Spring sale x`) || !strings.Contains(p.Text, "to 3 recipients was held for review because") {
		t.Errorf("held notice %+v %v", p, err)
	}
	null := heldMessage("Q2", "")
	null.Quarantine.NotifySender = true
	for _, ev := range []string{notify.EventHeld, notify.EventReleased, notify.EventDeleted} {
		for _, x := range n.Notices(notify.Change{Event: ev, Msg: null, Quarantine: null.Quarantine, TellSender: true}) {
			if x.Channel == "sender" {
				t.Errorf("%s: a notice to the null sender", ev)
			}
		}
	}
	quiet := heldMessage("Q3", "news@brand.example")
	for _, x := range n.Notices(notify.Change{Event: notify.EventHeld, Msg: quiet, Quarantine: quiet.Quarantine}) {
		if x.Channel == "sender" {
			t.Error("a sender notice for a rule without notify_sender")
		}
	}
}

// TestSignature: what Sign makes, Verify accepts; a changed body, another
// key or an old timestamp is refused.
func TestSignature(t *testing.T) {
	body := []byte(`{"id":"1","event":"held"}`)
	now := time.Now()
	sig := notify.Sign([]byte(secret), now, body)
	if !regexp.MustCompile(`^t=\d+,v1=[0-9a-f]{64}$`).MatchString(sig) {
		t.Fatalf("signature header %q", sig)
	}
	if err := notify.Verify([]byte(secret), sig, body, now, 5*time.Minute); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for name, err := range map[string]error{
		"changed body": notify.Verify([]byte(secret), sig, append(body, ' '), now, 5*time.Minute),
		"other key":    notify.Verify([]byte("other"), sig, body, now, 5*time.Minute),
		"replayed":     notify.Verify([]byte(secret), sig, body, now.Add(10*time.Minute), 5*time.Minute),
		"malformed":    notify.Verify([]byte(secret), "v1=00", body, now, 5*time.Minute),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestOpenSSLVerifiesSignature runs the shell lines README gives for
// checking a signature, with openssl, on a real request body.
func TestOpenSSLVerifiesSignature(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is not installed (scripts/install-test-deps.sh installs it)")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- verify-signature -->\n```sh\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no <!-- verify-signature --> shell block")
	}
	dir := t.TempDir()
	sf := filepath.Join(dir, "webhook-secret")
	os.WriteFile(sf, []byte(secret+"\n"), 0o600)
	script := strings.ReplaceAll(string(m[1]), "/etc/bccguard/webhook-secret", sf)
	body, _ := json.Marshal(notify.Event{ID: "7", Event: "held", At: time.Now(), Host: "relay.example", Text: "Held for review: \"Été\" from <>"})
	os.WriteFile(filepath.Join(dir, "body.json"), body, 0o600)
	run := func(sig string) (string, error) {
		cmd := exec.Command("sh", "-c", script)
		cmd.Dir, cmd.Env = dir, append(os.Environ(), "SIG="+sig)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(notify.Sign([]byte(secret), time.Now(), body)); err != nil || !strings.Contains(out, "signature ok") {
		t.Fatalf("README's lines reject a good signature: %v\n%s", err, out)
	}
	if out, err := run(notify.Sign([]byte("wrong"), time.Now(), body)); err == nil || strings.Contains(out, "signature ok") {
		t.Fatalf("README's lines accept a wrong signature: %s", out)
	}
	if out, err := run(notify.Sign([]byte(secret), time.Now().Add(-time.Hour), body)); err == nil || strings.Contains(out, "signature ok") {
		t.Fatalf("README's lines accept an hour-old signature: %s", out)
	}
}

// TestSafeText: one line, no invisible or control characters, capped.
func TestSafeText(t *testing.T) {
	for in, want := range map[string]string{
		"Hello\r\n\tworld":           "Hello world",
		"pay\u202egnp.exe\u202c":     "paygnp.exe",
		"zero\u200bwidth\ufeff":      "zerowidth",
		"bell\x07 \x1b[31mred":       "bell [31mred",
		"bad \xff utf8":              "bad \ufffd utf8",
		strings.Repeat("é", 250):     strings.Repeat("é", 199) + "…",
		"  spaced   out  ":           "spaced out",
		"line\u2028separator":        "lineseparator",
		"arabic \u061c mark":         "arabic mark",
		"mixed \u2066isolate\u2069.": "mixed isolate.",
	} {
		if got := notify.SafeText(in, 200); got != want {
			t.Errorf("SafeText(%q) = %q, want %q", in, got, want)
		}
	}
}

// receiver is a webhook endpoint that verifies each request's signature
// and can be made to fail.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	fail   int // answer 503 to this many more requests
	bodies [][]byte
	ids    []string
	tries  int
}

func newReceiver(t *testing.T, fail int) *receiver {
	r := &receiver{t: t, fail: fail}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.tries++
		if r.fail > 0 {
			r.fail--
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		if err := notify.Verify([]byte(secret), req.Header.Get(notify.SignatureHeader), body, time.Now(), time.Minute); err != nil {
			t.Errorf("request with a bad signature: %v", err)
		}
		r.bodies = append(r.bodies, body)
		r.ids = append(r.ids, req.Header.Get(notify.IDHeader))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() ([][]byte, []string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...), append([]string(nil), r.ids...), r.tries
}

// waitTimeout bounds harness.Eventually in these tests.
const waitTimeout = 20 * time.Second

func schema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	s, err := jsonschema.NewCompiler().Compile("../../docs/notification.schema.json")
	if err != nil {
		t.Fatalf("docs/notification.schema.json: %v", err)
	}
	return s
}

// validate checks a webhook body against the published schema.
func validate(t *testing.T, s *jsonschema.Schema, body []byte) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(v); err != nil {
		t.Errorf("body does not match docs/notification.schema.json: %v\n%s", err, body)
	}
}

type svcEnv struct {
	st    *embedded.Store
	svc   *notify.Service
	reg   *prometheus.Registry
	wakes int
}

func startService(t *testing.T, cfgText string, held func(context.Context) (*notify.Digest, error)) *svcEnv {
	t.Helper()
	st, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &svcEnv{st: st, reg: prometheus.NewRegistry()}
	e.svc, err = notify.New(notify.Options{Config: parseConfig(t, cfgText), Store: st, Logger: slog.New(slog.DiscardHandler),
		Registerer: e.reg, WakeDelivery: func() { e.wakes++ }, Held: held})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Start(ctx)
	t.Cleanup(e.svc.Stop)
	return e
}

// commitHold commits a hold with its notices, as the relay does.
func (e *svcEnv) commitHold(t *testing.T, m store.Message, hdr notify.HeaderInfo) string {
	t.Helper()
	sp, id, err := e.st.NewSpool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Abort()
	io.WriteString(sp, "Subject: x\r\n\r\nbody\r\n")
	m.ID = id
	if _, err := sp.Commit(ctx, m, nil, e.svc.Notices(notify.Change{Event: notify.EventHeld, Msg: m, Quarantine: m.Quarantine, Header: hdr})...); err != nil {
		t.Fatal(err)
	}
	e.svc.Wake()
	return id
}

func (e *svcEnv) outbox(t *testing.T) []store.Notification {
	t.Helper()
	ns, err := e.st.Notifications(ctx, store.NotificationFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// TestServiceWebhookRetries: a receiver that is down gets the event once it
// is back, once, signed, in the published schema; the metrics count the
// failed attempts and the one that went through.
func TestServiceWebhookRetries(t *testing.T) {
	rcv := newReceiver(t, 3)
	e := startService(t, `
hostname: relay.example
admin: {public_url: "https://review.example"}
notify:
  retry_first: 50ms
  retry_max: 100ms
  channels:
    - {name: siem, type: webhook, url: "`+rcv.srv.URL+`", secret_file: "`+secretFile(t)+`"}
`, nil)
	id := e.commitHold(t, heldMessage("", "news@brand.example"), notify.HeaderInfo{Subject: "=?utf-8?q?not_decoded_here?= Été"})
	harness.Eventually(t, waitTimeout, "the event to arrive", func() bool { b, _, _ := rcv.got(); return len(b) == 1 })
	harness.Eventually(t, waitTimeout, "the outcome to be recorded", func() bool {
		ns := e.outbox(t)
		return len(ns) == 1 && ns[0].State == store.NotificationSent
	})
	bodies, ids, tries := rcv.got()
	n := e.outbox(t)[0]
	if tries != 4 || n.Attempts != 4 || ids[0] != n.ID {
		t.Fatalf("%d requests, %d attempts recorded, ID header %q (notification %s); want 4, 4, the same ID", tries, n.Attempts, ids[0], n.ID)
	}
	validate(t, schema(t), bodies[0])
	var ev notify.Event
	json.Unmarshal(bodies[0], &ev)
	if ev.ID != n.ID || ev.Event != "held" || ev.Message.QueueID != id || ev.Link != "https://review.example/quarantine/m/"+id || ev.Message.Subject != "=?utf-8?q?not_decoded_here?= Été" {
		t.Fatalf("event %+v", ev)
	}
	for _, r := range recipients {
		if bytes.Contains(bodies[0], []byte(r)) {
			t.Errorf("the webhook body names recipient %s", r)
		}
	}
	if got := value(t, e.reg, "bccguard_notifications_failed_total", "siem"); got != 3 {
		t.Errorf("failed_total{siem} = %v, want 3", got)
	}
	if got := value(t, e.reg, "bccguard_notifications_sent_total", "siem"); got != 1 {
		t.Errorf("sent_total{siem} = %v, want 1", got)
	}
	if problems, err := testutil.GatherAndLint(e.reg); err != nil || len(problems) > 0 {
		t.Errorf("metrics lint: %v %+v", err, problems)
	}
	if err := testutil.GatherAndCompare(e.reg, strings.NewReader(`
# HELP bccguard_notifications_queued Notifications waiting to be sent (due or retrying), by channel; read from the store at scrape time.
# TYPE bccguard_notifications_queued gauge
bccguard_notifications_queued{channel="sender"} 0
bccguard_notifications_queued{channel="siem"} 0
`), "bccguard_notifications_queued"); err != nil {
		t.Error(err)
	}
}

// value reads one channel's series of a counter in reg.
func value(t *testing.T, reg *prometheus.Registry, name, channel string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == name && m.GetLabel()[0].GetValue() == channel {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{channel=%q}", name, channel)
	return 0
}

// TestServiceGivesUp: after notify.lifetime of failures a notification is
// failed for good, counted, and not tried again.
func TestServiceGivesUp(t *testing.T) {
	rcv := newReceiver(t, 1<<30)
	e := startService(t, `
notify:
  retry_first: 20ms
  retry_max: 20ms
  lifetime: 200ms
  channels:
    - {name: siem, type: webhook, url: "`+rcv.srv.URL+`", secret_file: "`+secretFile(t)+`"}
`, nil)
	e.commitHold(t, heldMessage("", "news@brand.example"), notify.HeaderInfo{})
	harness.Eventually(t, waitTimeout, "the notification to be given up", func() bool {
		ns := e.outbox(t)
		return len(ns) == 1 && ns[0].State == store.NotificationFailed
	})
	n := e.outbox(t)[0]
	if !strings.Contains(n.LastError, "503") || !strings.Contains(n.LastError, "down for maintenance") {
		t.Errorf("last error %q", n.LastError)
	}
	if _, _, tries := rcv.got(); tries != n.Attempts {
		t.Errorf("%d requests, %d attempts recorded", tries, n.Attempts)
	}
	if got := value(t, e.reg, "bccguard_notifications_given_up_total", "siem"); got != 1 {
		t.Errorf("given_up_total{siem} = %v, want 1", got)
	}
}

// TestServiceEmail: an email channel and a sender notice are queued as
// messages with one pass-through delivery from the null sender, naming
// the message but no recipient.
func TestServiceEmail(t *testing.T) {
	e := startService(t, `
hostname: relay.example
notify:
  channels:
    - {name: security, type: email, to: security@example.com}
`, nil)
	m := heldMessage("", "news@brand.example")
	m.Quarantine.NotifySender = true
	e.commitHold(t, m, notify.HeaderInfo{Subject: "Spring sale", Date: "Mon, 2 Mar 2026 10:00:00 +0100", MessageID: "<m1@brand.example>"})
	harness.Eventually(t, waitTimeout, "both notifications to be sent", func() bool {
		ns := e.outbox(t)
		return len(ns) == 2 && ns[0].State == store.NotificationSent && ns[1].State == store.NotificationSent
	})
	cs, err := e.st.Claim(ctx, "test", time.Now().Add(time.Second), 10, time.Minute)
	if err != nil || len(cs) != 2 {
		t.Fatalf("claimed %d deliveries (%v), want the two emails", len(cs), err)
	}
	texts := map[string]string{}
	for _, c := range cs {
		if c.Message.Envelope.Sender != "" || len(c.Delivery.Recipients) != 1 || c.Delivery.Rewrite != store.RewritePass || c.Message.Quarantine != nil {
			t.Errorf("email %+v delivery %+v: want one pass-through delivery from <>", c.Message, c.Delivery)
		}
		rc, _ := e.st.Open(ctx, c.Message.ID)
		b, _ := io.ReadAll(rc)
		rc.Close()
		texts[c.Message.Client.Listener+" "+c.Delivery.Recipients[0].Addr] = readable(t, b)
	}
	sec, snd := texts["bccguard-notify security@example.com"], texts["bccguard-notice news@brand.example"]
	for _, want := range []string{"From: \"bccguard\" <bccguard@relay.example>", "To: <security@example.com>", "Auto-Submitted: auto-generated",
		"Subject: [bccguard] Held for review: \"Spring sale\" from news@brand.example (AUTH crm) to 3 recipients, rule many-visible",
		"Reason:     rule many-visible: visible.external >= 2 (visible.external=3)"} {
		if !strings.Contains(sec, want) {
			t.Errorf("security email lacks %q:\n%s", want, sec)
		}
	}
	for _, want := range []string{"From: \"Mail Delivery System\" <MAILER-DAEMON@relay.example>", "To: <news@brand.example>",
		"Auto-Submitted: auto-replied", "Subject: Your message is held for review",
		"Your message \"Spring sale\" to 3 recipients was held for review because", "Message-ID: <m1@brand.example>"} {
		if !strings.Contains(snd, want) {
			t.Errorf("sender notice lacks %q:\n%s", want, snd)
		}
	}
	for _, r := range recipients {
		if strings.Contains(sec+snd, r) {
			t.Errorf("an email names recipient %s", r)
		}
	}
	if e.wakes < 2 {
		t.Errorf("delivery woken %d times, want 2", e.wakes)
	}
}

// readable is a stored message with its header unfolded and its
// quoted-printable body decoded.
func readable(t *testing.T, b []byte) string {
	t.Helper()
	head, body, ok := bytes.Cut(b, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("no body in %q", b)
	}
	dec, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(head), "\r\n ", " ") + "\r\n\r\n" + string(dec)
}

// TestTextWebhook: the text format is one JSON object with a text field,
// as Slack's and Teams' incoming webhooks take it.
func TestTextWebhook(t *testing.T) {
	var (
		mu   sync.Mutex
		body []byte
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		body, _ = io.ReadAll(r.Body)
	}))
	defer srv.Close()
	e := startService(t, `
admin: {public_url: "https://review.example"}
notify:
  channels:
    - {name: chat, type: webhook, format: text, url: "`+srv.URL+`"}
`, nil)
	id := e.commitHold(t, heldMessage("", "news@brand.example"), notify.HeaderInfo{Subject: "Spring sale"})
	harness.Eventually(t, waitTimeout, "the chat message", func() bool { mu.Lock(); defer mu.Unlock(); return body != nil })
	var msg map[string]string
	if err := json.Unmarshal(body, &msg); err != nil || len(msg) != 1 {
		t.Fatalf("body %s: %v", body, err)
	}
	want := `Held for review: "Spring sale" from news@brand.example (AUTH crm) to 3 recipients, rule many-visible (body.addresses=0, visible.count=3, visible.external=3) https://review.example/quarantine/m/` + id
	if msg["text"] != want {
		t.Fatalf("text %q\nwant %q", msg["text"], want)
	}
}

// TestDigest: a digest goes to its channel once per period, with the
// counts and the newest holds, however many services share the store.
func TestDigest(t *testing.T) {
	rcv := newReceiver(t, 0)
	var (
		mu    sync.Mutex
		held  = 0
		calls = 0
	)
	source := func(context.Context) (*notify.Digest, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		d := &notify.Digest{Held: held, ByRule: map[string]int{"many-visible": held}, Items: []notify.DigestItem{}}
		if held > 0 {
			d.Oldest = time.Now().Add(-3 * time.Hour)
			d.Items = append(d.Items, notify.DigestItem{QueueID: "Q9", ReceivedAt: d.Oldest, Rule: "many-visible", Sender: "news@brand.example", Subject: "\u202eSale", Recipients: 214})
		}
		return d, nil
	}
	held = 2
	e := startService(t, `
admin: {public_url: "https://review.example"}
notify:
  channels:
    - {name: daily, type: webhook, url: "`+rcv.srv.URL+`", secret_file: "`+secretFile(t)+`", events: [], digest: hourly}
`, source)
	harness.Eventually(t, waitTimeout, "the digest", func() bool { b, _, _ := rcv.got(); return len(b) == 1 })
	bodies, _, _ := rcv.got()
	validate(t, schema(t), bodies[0])
	var ev notify.Event
	json.Unmarshal(bodies[0], &ev)
	if ev.Event != "digest" || ev.Digest.Period != "hourly" || ev.Digest.Held != 2 || len(ev.Digest.Items) != 1 ||
		ev.Digest.Items[0].Subject != "Sale" || ev.Digest.Items[0].Link != "https://review.example/quarantine/m/Q9" || ev.Link != "https://review.example/quarantine" ||
		!strings.HasPrefix(ev.Text, "Still held for review: 2 messages (many-visible: 2), the oldest for 3 h") {
		t.Fatalf("digest %+v %+v", ev, ev.Digest)
	}
	// A second Service on the same store in the same period (a replica,
	// or a restart) queues none: the key names channel and period.
	svc2, err := notify.New(notify.Options{Config: parseConfig(t, `
notify:
  channels:
    - {name: daily, type: webhook, url: "`+rcv.srv.URL+`", secret_file: "`+secretFile(t)+`", events: [], digest: hourly}
`), Store: e.st, Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry(), Held: source})
	if err != nil {
		t.Fatal(err)
	}
	svc2.Start(ctx)
	harness.Eventually(t, waitTimeout, "the second service to look", func() bool { mu.Lock(); defer mu.Unlock(); return calls >= 2 })
	svc2.Stop()
	if ns := e.outbox(t); len(ns) != 1 {
		t.Fatalf("%d digests in the outbox for one period, want 1", len(ns))
	}
}
