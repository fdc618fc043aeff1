package policy

import (
	"context"
	"strings"
	"testing"
)

// An explode or bcc whose copies would still show another recipient is
// not carried out: on_unsafe_copy decides, in enforce and monitor mode.
func TestUnsafeCopy(t *testing.T) {
	ctx := context.Background()
	leaky := msgInput("From: survey@brand.example\nTo: zoe@alpha.example, bob@beta.example\nSubject: for zoe@alpha.example",
		"zoe@alpha.example", "bob@beta.example")
	clean := msgInput("From: survey@brand.example\nTo: zoe@alpha.example, bob@beta.example\nReply-To: bob@beta.example\nSubject: hi",
		"zoe@alpha.example", "bob@beta.example")
	rules := "  rules:\n    - {name: all, when: 'true', action: explode}\n"
	cases := []struct {
		name, policy string
		in           *Input
		want         Action
		rule         string
		monitor      bool
		recorded     bool // the guard among Monitored
	}{
		{"held by default", "policy:\n" + rules, leaky, Quarantine, UnsafeCopyRule, false, false},
		{"a cleanable field is no reason", "policy:\n" + rules, clean, Explode, "all", false, false},
		{"reject", "policy:\n  on_unsafe_copy: reject\n" + rules, leaky, Reject, UnsafeCopyRule, false, false},
		{"allow makes the copies and records it", "policy:\n  on_unsafe_copy: allow\n" + rules, leaky, Explode, "all", false, true},
		{"monitor records what would happen", "policy:\n  mode: monitor\n" + rules, leaky, Quarantine, UnsafeCopyRule, true, false},
		{"bcc too", "policy:\n  rules:\n    - {name: all, when: 'true', action: bcc}\n", leaky, Quarantine, UnsafeCopyRule, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, _ := mustLoad(t, c.policy).Evaluate(ctx, c.in)
			if d.Action != c.want || d.Rule != c.rule || d.Monitor != c.monitor {
				t.Fatalf("got %+v, want %s by %s (monitor %v)", d, c.want, c.rule, c.monitor)
			}
			if d.Rule == UnsafeCopyRule && (!strings.Contains(d.Reason, "Subject:") || strings.Contains(d.Reason, "zoe@")) {
				t.Errorf("reason %q: want the field named and no address quoted", d.Reason)
			}
			if d.Action == Reject && !printableASCII(d.Message) {
				t.Errorf("reject message %q", d.Message)
			}
			recorded := false
			for _, m := range d.Monitored {
				recorded = recorded || m.Rule == UnsafeCopyRule
			}
			if recorded != c.recorded {
				t.Errorf("guard recorded in Monitored: %v, want %v (%+v)", recorded, c.recorded, d.Monitored)
			}
		})
	}
	if _, err := loadYAML(t, "policy:\n  on_unsafe_copy: explode\n"); err == nil || !strings.Contains(err.Error(), "bccguard.yaml:2") {
		t.Errorf("a bad on_unsafe_copy: %v, want an error with its line", err)
	}
}

// Consumer mailbox domains: each address an organisation of its own; the
// configuration adds to the list.
func TestConsumerDomains(t *testing.T) {
	in := msgInput("From: crm@brand.example\nTo: a@gmail.com, b@gmail.com, c@isp.example, d@isp.example")
	f := mustLoad(t, "policy:\n  rules: []\n").facts(in)
	if f.vis.Consumer != 2 || f.vis.Organisations != 3 || f.envOrgs != 3 {
		t.Errorf("built in: consumer %d, organisations %d, envelope %d; want 2, 3, 3", f.vis.Consumer, f.vis.Organisations, f.envOrgs)
	}
	in.Visible = nil
	f = mustLoad(t, "policy:\n  consumer_domains: [isp.example]\n  rules: []\n").facts(in)
	if f.vis.Consumer != 4 || f.vis.Organisations != 4 || f.envConsumer != 4 {
		t.Errorf("extended: consumer %d, organisations %d, envelope consumer %d; want 4, 4, 4", f.vis.Consumer, f.vis.Organisations, f.envConsumer)
	}
	if _, err := loadYAML(t, "policy:\n  consumer_domains: [not a domain]\n"); err == nil || !strings.Contains(err.Error(), "consumer_domains") {
		t.Errorf("a bad consumer domain: %v", err)
	}
}
