package policy

import (
	"strings"
	"testing"
)

// TestSenderNoticeOption: notify_sender and sender_notice load on a
// quarantine rule and are refused, with their line, elsewhere or broken.
func TestSenderNoticeOption(t *testing.T) {
	p := mustLoad(t, `policy:
  rules:
    - name: tell
      when: visible.count > 1
      action: quarantine
      notify_sender: true
      sender_notice: 'Held: "{{.Subject}}" to {{.Recipients}} ({{.Event}}) because {{.Reason}}'
    - name: tell-default
      when: visible.count > 1
      action: quarantine
      notify_sender: true
    - name: quiet
      when: visible.count > 1
      action: quarantine
`)
	if tmpl, ok := p.SenderNotice("tell"); !ok || !strings.Contains(tmpl, "{{.Subject}}") {
		t.Errorf("tell: %q %v", tmpl, ok)
	}
	if tmpl, ok := p.SenderNotice("tell-default"); !ok || tmpl != "" {
		t.Errorf("tell-default: %q %v, want the default", tmpl, ok)
	}
	for _, r := range []string{"quiet", "no-such-rule"} {
		if _, ok := p.SenderNotice(r); ok {
			t.Errorf("%s tells the sender", r)
		}
	}
	for _, tc := range []struct{ name, rule, want string }{
		{"not a quarantine rule", "action: explode\n      notify_sender: true", "bccguard.yaml:6: rule \"r\": notify_sender is for rules that quarantine"},
		{"not a bool", "action: quarantine\n      notify_sender: often", "bccguard.yaml:6: rule \"r\": notify_sender must be true or false"},
		{"template without notify_sender", "action: quarantine\n      sender_notice: hi", "bccguard.yaml:6: rule \"r\": sender_notice is used only with notify_sender: true"},
		{"template that does not parse", "action: quarantine\n      notify_sender: true\n      sender_notice: '{{.Subject'", "bccguard.yaml:7: rule \"r\": sender_notice:"},
		{"unknown field", "action: quarantine\n      notify_sender: true\n      sender_notice: '{{.Recipient}}'", "bccguard.yaml:7: rule \"r\": sender_notice: for a held message"},
		{"empty text", "action: quarantine\n      notify_sender: true\n      sender_notice: '{{if false}}x{{end}}'", "the notice is empty"},
	} {
		_, err := loadYAML(t, "policy:\n  rules:\n    - name: r\n      when: visible.count > 1\n      "+tc.rule+"\n")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestDefaultSenderNotice: the default text for each event says what
// happened, with the figures and reason, and nothing else.
func TestDefaultSenderNotice(t *testing.T) {
	d := NoticeData{Subject: "Spring sale", Recipients: 214, Reason: "rule many-visible: visible.external >= 2 (visible.external=214)"}
	for ev, want := range map[string]string{
		"held":     `Your message "Spring sale" to 214 recipients was held for review because rule many-visible: visible.external >= 2 (visible.external=214).`,
		"released": `Your message "Spring sale" to 214 recipients, held for review, was released and is being delivered.`,
		"expired":  `Your message "Spring sale" to 214 recipients, held for review, was not delivered: it was not released in time`,
	} {
		d.Event = ev
		got, err := RenderSenderNotice("", d)
		if err != nil || !strings.HasPrefix(got, want) {
			t.Errorf("%s: %q %v, want it to start %q", ev, got, err, want)
		}
	}
	if _, err := RenderSenderNotice(`{{range .Subject}}{{end}}`, d); err == nil {
		t.Error("a template that fails to execute rendered")
	}
	if _, err := RenderSenderNotice(strings.Repeat("{{.Reason}}", 400), d); err == nil {
		t.Error("a notice over the size limit rendered")
	}
}
