package relay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
)

// TestMetricsLintAndNoAddresses relays and explodes a mailing, then checks
// the relay's registry: GatherAndLint finds nothing, no label value looks
// like an address, and the operations metrics carry the right values.
func TestMetricsLintAndNoAddresses(t *testing.T) {
	sink := smtptest.NewSink(t)
	r := startTestRelay(t, sink.Addr(), []byte("0123456789abcdef0123456789abcdef"))
	rcpts := []string{"ann@customers.example", "ben@customers.example", "cy@customers.example"}
	sendTestMail(t, r.srv.Addrs()["smtp"].String(), "crm@brand.example", rcpts)
	sink.WaitUntil(t, 20*time.Second, "3 deliveries", func(ms []*smtptest.Message) bool { return len(ms) == 3 })
	harness.Eventually(t, waitTimeout, "the delivery metrics", func() bool {
		v, _ := metricValue(t, r.reg, "bccguard_deliveries_total", map[string]string{"result": "delivered"})
		return v == 3
	})
	// Outcomes are committed after the upstream's 250, in the background:
	// wait until the queue has recorded them.
	harness.Eventually(t, waitTimeout, "the queue to empty", func() bool {
		v, _ := metricValue(t, r.reg, "bccguard_queue_deliveries", map[string]string{"state": "queued"})
		return v == 0
	})

	problems, err := testutil.GatherAndLint(r.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "bccguard_") {
			t.Errorf("metric %s lacks the bccguard_ prefix", mf.GetName())
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if strings.Contains(lp.GetValue(), "@") {
					t.Errorf("metric %s: label %s=%q looks like an address", mf.GetName(), lp.GetName(), lp.GetValue())
				}
			}
		}
	}

	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"bccguard_policy_decisions_total", map[string]string{"action": "explode", "rule": "many-visible", "mode": "enforce"}, 1},
		{"bccguard_recipients_protected_total", map[string]string{"action": "explode"}, 3},
		{"bccguard_recipients_protected_total", map[string]string{"action": "bcc"}, 0},
		{"bccguard_messages_accepted_total", map[string]string{"listener": "smtp"}, 1},
		{"bccguard_messages_accepted_total", map[string]string{"listener": "submission"}, 0},
		{"bccguard_deliveries_total", map[string]string{"result": "delivered", "reply_class": "2xx"}, 3},
		{"bccguard_deliveries_total", map[string]string{"result": "bounced", "reply_class": "5xx"}, 0},
		{"bccguard_queue_deliveries", map[string]string{"state": "queued"}, 0},
		{"bccguard_queue_deliveries", map[string]string{"state": "deferred"}, 0},
		{"bccguard_queue_oldest_age_seconds", nil, 0},
		{"bccguard_policy_reload_total", map[string]string{"result": "failure"}, 0},
		{"bccguard_policy_last_reload_successful", nil, 1},
		{"bccguard_upstream_up", nil, 1},
		{"bccguard_tls_certificate_expiry_timestamp_seconds", map[string]string{"listener": "submission"}, float64(r.cert.NotAfter.Unix())},
		{"bccguard_sessions_active", map[string]string{"listener": "submission"}, 0},
		{"bccguard_auth_failures_total", map[string]string{"listener": "submission"}, 0},
	}
	for _, c := range checks {
		got, ok := metricValue(t, r.reg, c.name, c.labels)
		if !ok {
			t.Errorf("%s%v: no such series", c.name, c.labels)
		} else if got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if _, ok := metricValue(t, r.reg, "bccguard_sessions_active", map[string]string{"listener": "smtp"}); !ok {
		t.Error("bccguard_sessions_active{listener=smtp}: no such series")
	}
	if _, ok := metricValue(t, r.reg, "bccguard_config_info", nil); !ok {
		t.Error("bccguard_config_info: no series")
	}
}

// TestSessionsActive counts an open client connection while it lasts.
func TestSessionsActive(t *testing.T) {
	r := startTestRelay(t, "127.0.0.1:1", nil)
	c, err := smtp.Dial(r.srv.Addrs()["smtp"].String())
	if err != nil {
		t.Fatal(err)
	}
	active := func() float64 {
		v, _ := metricValue(t, r.reg, "bccguard_sessions_active", map[string]string{"listener": "smtp"})
		return v
	}
	harness.Eventually(t, waitTimeout, "one active session", func() bool { return active() == 1 })
	_ = c.Quit()
	harness.Eventually(t, waitTimeout, "no active session", func() bool { return active() == 0 })
}

// TestPolicyReloadMetrics: a refused reload is counted and leaves the hash
// of the configuration in force; a good one updates it.
func TestPolicyReloadMetrics(t *testing.T) {
	r := startTestRelay(t, "127.0.0.1:1", nil)
	hash := func() string {
		mfs, _ := r.reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "bccguard_config_info" {
				if len(mf.GetMetric()) != 1 {
					t.Fatalf("bccguard_config_info has %d series, want 1", len(mf.GetMetric()))
				}
				return mf.GetMetric()[0].GetLabel()[0].GetValue()
			}
		}
		t.Fatal("no bccguard_config_info")
		return ""
	}
	first := hash()
	if len(first) != 16 {
		t.Errorf("config hash %q: want 16 hex digits", first)
	}
	r.srv.PolicyReloaded(r.cfg.File, errors.New("bad rule"))
	if v, _ := metricValue(t, r.reg, "bccguard_policy_last_reload_successful", nil); v != 0 {
		t.Errorf("last reload successful = %v after a failure", v)
	}
	if hash() != first {
		t.Error("a refused reload changed the config hash")
	}
	f, err := os.OpenFile(r.cfg.File, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "# edited")
	f.Close()
	r.srv.PolicyReloaded(r.cfg.File, nil)
	if hash() == first {
		t.Error("a successful reload of a changed file kept the old config hash")
	}
	for res, want := range map[string]float64{"success": 1, "failure": 1} {
		if v, _ := metricValue(t, r.reg, "bccguard_policy_reload_total", map[string]string{"result": res}); v != want {
			t.Errorf("bccguard_policy_reload_total{result=%s} = %v, want %v", res, v, want)
		}
	}
	if v, _ := metricValue(t, r.reg, "bccguard_policy_last_reload_successful", nil); v != 1 {
		t.Errorf("last reload successful = %v after a success", v)
	}
}

// TestReadinessChecks: policy and listeners are checked, the upstream is
// only reported.
func TestReadinessChecks(t *testing.T) {
	r := startTestRelay(t, "127.0.0.1:1", nil) // nothing listens on port 1
	ctx := context.Background()
	if err := r.srv.PolicyReady(ctx); err != nil {
		t.Errorf("PolicyReady: %v", err)
	}
	if err := r.srv.ListenersReady(ctx); err != nil {
		t.Errorf("ListenersReady: %v", err)
	}
	harness.Eventually(t, waitTimeout, "the upstream probe", func() bool { return strings.HasPrefix(r.srv.UpstreamStatus(ctx), "down since") })
	if v, _ := metricValue(t, r.reg, "bccguard_upstream_up", nil); v != 0 {
		t.Errorf("bccguard_upstream_up = %v with nothing listening", v)
	}
	for _, l := range r.srv.listeners {
		if l.cfg.Name == "submission" {
			_ = l.ln.Close()
		}
	}
	harness.Eventually(t, waitTimeout, "the listener to be seen down", func() bool {
		err := r.srv.ListenersReady(ctx)
		return err != nil && strings.Contains(err.Error(), "submission")
	})
}

func TestUpstreamProbeUp(t *testing.T) {
	sink := smtptest.NewSink(t)
	r := startTestRelay(t, sink.Addr(), nil)
	harness.Eventually(t, waitTimeout, "the upstream probe", func() bool { return strings.HasPrefix(r.srv.UpstreamStatus(context.Background()), "up since") })
	if v, _ := metricValue(t, r.reg, "bccguard_upstream_up", nil); v != 1 {
		t.Errorf("bccguard_upstream_up = %v", v)
	}
}

// TestUpstreamReplyRedacted: an upstream reply that quotes the recipient
// reaches the log redacted.
func TestUpstreamReplyRedacted(t *testing.T) {
	sink := smtptest.NewSink(t)
	sink.RejectRcpt("gone@customers.example", smtptest.SMTPErr(550, "5.1.1", "<gone@customers.example>: Recipient address rejected: User unknown"))
	r := startTestRelay(t, sink.Addr(), []byte("0123456789abcdef0123456789abcdef"))
	sendTestMail(t, r.srv.Addrs()["smtp"].String(), "crm@brand.example", []string{"gone@customers.example"})
	harness.Eventually(t, waitTimeout, "the bounce to be logged", func() bool { return strings.Contains(r.logs.String(), "Recipient address rejected") })
	if logs := r.logs.String(); strings.Contains(logs, "@customers.example") || strings.Contains(logs, "crm@brand.example") {
		t.Errorf("an address reached the log:\n%s", logs)
	}
}

func TestRedactText(t *testing.T) {
	s := &Server{redactKey: []byte("k")}
	for _, tc := range []struct{ in, leak string }{
		{"550 5.1.1 <bob@example.net>: Recipient address rejected", "bob@example.net"},
		{"to bob@example.net.", "bob@example.net"},
		{`550 "john doe"@example.net unknown`, "doe"},
		{"Bücher@münchen.example, x@y.example", "münchen"},
		{`550 <"zq \"x\""@qq.example>: rejected`, "zq"},
		{`550 <"victim@evil.example"@c.example>`, "evil"},
		{"550 <victim@evil.example@c.example>", "c.example"},
		{"550 <lit@[192.0.2.77]> unknown", "192.0.2.77"},
		{"550 <v6@[IPv6:2001:db8::7]> unknown", "2001:db8"},
	} {
		out := s.redactText(tc.in)
		if strings.Contains(out, tc.leak) || strings.Count(out, "addr:") == 0 {
			t.Errorf("redactText(%q) = %q", tc.in, out)
		}
	}
	if got := s.redactText("to bob@example.net."); got != "to "+s.redact("bob@example.net")+"." {
		t.Errorf("token not stable or trailing dot eaten: %q", got)
	}
	if got := (&Server{}).redactText("bob@example.net"); got != "bob@example.net" {
		t.Errorf("redaction off changed the text: %q", got)
	}
}
