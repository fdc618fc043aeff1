package config

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestNotifyDefaults: channels get their defaults (every event, json,
// timeout, from), the section its retry schedule; admin.public_url loses a
// trailing slash.
func TestNotifyDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(`
hostname: relay.example
admin: {public_url: "https://review.example/"}
notify:
  channels:
    - {name: siem, type: webhook, url: "https://siem.example/hook", secret_env: HOOK_SECRET}
    - {name: sec, type: email, to: security@example.com, events: [held], digest: daily}
`))
	if err != nil {
		t.Fatal(err)
	}
	n := c.Notify
	if n.RetryFirst.D() != DefaultNotifyRetryFirst || n.RetryMax.D() != DefaultNotifyRetryMax || n.Lifetime.D() != DefaultNotifyLifetime || n.Workers != DefaultNotifyWorkers {
		t.Errorf("defaults %+v", n)
	}
	w, e := n.Channels[0], n.Channels[1]
	if strings.Join(w.Events, ",") != strings.Join(NotifyEvents, ",") || w.Format != FormatJSON || w.Timeout.D() != 10*time.Second {
		t.Errorf("webhook defaults %+v", w)
	}
	if e.From != "bccguard@relay.example" || e.DigestAt != DefaultDigestAt {
		t.Errorf("email defaults %+v", e)
	}
	if c.Admin.PublicURL != "https://review.example" {
		t.Errorf("public_url %q", c.Admin.PublicURL)
	}
}

// TestNotifyErrors: each mistake is reported on its line.
func TestNotifyErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"name", "notify:\n  channels:\n    - {name: Big Name, type: email, to: a@example.com}\n", "t.yaml:3: notify channel 1: name \"Big Name\""},
		{"reserved", "notify:\n  channels:\n    - {name: sender, type: email, to: a@example.com}\n", "t.yaml:3: notify channel name \"sender\" is reserved"},
		{"twice", "notify:\n  channels:\n    - {name: a, type: email, to: a@example.com}\n    - {name: a, type: email, to: b@example.com}\n", "t.yaml:4: notify channel name \"a\" is used twice"},
		{"type", "notify:\n  channels:\n    - {name: a, type: pager}\n", "t.yaml:3: notify a: type must be webhook or email"},
		{"event", "notify:\n  channels:\n    - name: a\n      type: email\n      to: a@example.com\n      events: [held, relased]\n", "t.yaml:6: notify a: unknown event \"relased\""},
		{"url", "notify:\n  channels:\n    - {name: a, type: webhook, url: \"ftp://x\", secret_env: S}\n", "t.yaml:3: notify a: url \"ftp://x\""},
		{"unsigned", "notify:\n  channels:\n    - {name: a, type: webhook, url: \"https://x.example\"}\n", "notify a: a json webhook is signed: it needs secret_file or secret_env"},
		{"format", "notify:\n  channels:\n    - {name: a, type: webhook, url: \"https://x.example\", format: xml}\n", "notify a: format must be json or text"},
		{"to", "notify:\n  channels:\n    - {name: a, type: email, to: \"Security <s@example.com>\"}\n", "notify a: to \"Security <s@example.com>\": expected one address"},
		{"wrong type's key", "notify:\n  channels:\n    - {name: a, type: email, to: s@example.com, url: \"https://x.example\"}\n", "notify a: url is for channels of type webhook"},
		{"digest", "notify:\n  channels:\n    - {name: a, type: email, to: s@example.com, digest: weekly}\n", "notify a: digest must be hourly or daily"},
		{"digest_at", "notify:\n  channels:\n    - {name: a, type: email, to: s@example.com, digest: daily, digest_at: \"8am\"}\n", "notify a: digest_at is the time of day"},
		{"silent", "notify:\n  channels:\n    - {name: a, type: email, to: s@example.com, events: []}\n", "notify a: no events and no digest"},
		{"retries", "notify:\n  retry_first: 1h\n  retry_max: 1m\n", "t.yaml:1: notify: need retry_first <= retry_max"},
		{"public_url", "admin:\n  public_url: review.example\n", "t.yaml:2: admin.public_url \"review.example\""},
	} {
		_, err := Parse("t.yaml", []byte(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestREADMENotifyExample: the configuration README's Notifications
// section shows is valid.
func TestREADMENotifyExample(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)## Notifications.*?```yaml\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md's Notifications section has no yaml block")
	}
	c, err := Parse("README.md", m[1])
	if err != nil {
		t.Fatalf("README's notify example: %v", err)
	}
	if len(c.Notify.Channels) != 3 {
		t.Fatalf("%d channels in README's example", len(c.Notify.Channels))
	}
}
