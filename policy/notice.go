package policy

import (
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"
)

// A rule with notify_sender: true tells the envelope sender when it holds
// a message, and again when the hold ends. The text comes from the rule's
// sender_notice, a Go text/template over NoticeData, or DefaultSenderNotice.
// It is checked when the policy loads (it must parse and render on sample
// data) and rendered when the event happens; the relay keeps the rule's
// template with the hold, so a reload does not change what a hold's later
// notices say.

// NoticeData is what a sender notice template can use.
type NoticeData struct {
	// Event is "held", "released" (by a reviewer, or at expiry) or
	// "expired" (not released in time, and deleted).
	Event string
	// Subject is the message's subject (decoded, made safe, shortened).
	Subject string
	// Recipients is the number of envelope recipients; Visible the number
	// of addresses its To:/Cc: showed.
	Recipients int
	Visible    int
	// Rule and Reason say why it was held.
	Rule   string
	Reason string
	// QueueID is bccguard's ID of the message; ReceivedAt when it came.
	QueueID    string
	ReceivedAt time.Time
}

// DefaultSenderNotice is the sender notice of a rule that gives none.
const DefaultSenderNotice = `{{if eq .Event "held" -}}
Your message "{{.Subject}}" to {{.Recipients}} recipients was held for review because {{.Reason}}.

A reviewer will release or delete it, and you will be told which. Please do not send it again meanwhile.
{{- else if eq .Event "released" -}}
Your message "{{.Subject}}" to {{.Recipients}} recipients, held for review, was released and is being delivered.
{{- else -}}
Your message "{{.Subject}}" to {{.Recipients}} recipients, held for review, was not delivered: it was not released in time and has been deleted.
{{- end}}
`

// maxNoticeText bounds a rendered notice.
const maxNoticeText = 16 << 10

// RenderSenderNotice renders a sender notice template ("" for the
// default) for d.
func RenderSenderNotice(tmpl string, d NoticeData) (string, error) {
	if tmpl == "" {
		tmpl = DefaultSenderNotice
	}
	t, err := template.New("sender_notice").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&limitedBuilder{b: &b, max: maxNoticeText}, d); err != nil {
		return "", err
	}
	s := strings.TrimSpace(b.String())
	if s == "" {
		return "", errors.New("the notice is empty")
	}
	return s, nil
}

// checkSenderNotice renders tmpl for each event on sample data.
func checkSenderNotice(tmpl string) error {
	for _, ev := range []string{"held", "released", "expired"} {
		d := NoticeData{Event: ev, Subject: "Spring sale", Recipients: 214, Visible: 214, Rule: "many-visible",
			Reason: "rule many-visible: visible.external >= 2 (visible.external=214)", QueueID: "06H3MDMFNTN9PL9N", ReceivedAt: time.Now()}
		if _, err := RenderSenderNotice(tmpl, d); err != nil {
			return fmt.Errorf("for a %s message: %w", ev, err)
		}
	}
	return nil
}

// limitedBuilder fails a template that writes more than max bytes.
type limitedBuilder struct {
	b   *strings.Builder
	max int
}

func (l *limitedBuilder) Write(p []byte) (int, error) {
	if l.b.Len()+len(p) > l.max {
		return 0, fmt.Errorf("the notice is longer than %d bytes", l.max)
	}
	return l.b.Write(p)
}

// SenderNotice reports whether rule tells the sender (notify_sender) and
// with which template ("" for DefaultSenderNotice).
func (p *Policy) SenderNotice(rule string) (string, bool) {
	for _, r := range p.rules {
		if r.name == rule {
			return r.senderNotice, r.notifySender
		}
	}
	return "", false
}
