package content_test

import (
	"fmt"
	"mime/quotedprintable"
	"slices"
	"strings"
	"testing"

	"github.com/bccguard/bccguard/policy/content"
	ct "github.com/bccguard/bccguard/policy/content/contenttest"
)

// Issue 13's body leak classes: each shows the recipients, and the scan
// says which watched recipients it saw, by address or by name.
func TestRecipientsShown(t *testing.T) {
	people := ct.People(4)
	w := content.Watch{}
	var to []string
	for _, p := range people {
		w.Keys = append(w.Keys, p.Email)
		w.Names = append(w.Names, []string{p.Name})
		to = append(to, fmt.Sprintf("%s <%s>", p.Name, p.Email))
	}
	list := strings.Join(to, ", ")
	var mailto, entities, names, qp strings.Builder
	for _, p := range people {
		fmt.Fprintf(&mailto, `<a href="mailto:%s">write</a> `, strings.NewReplacer("c", "%63", "@", "%40").Replace(p.Email))
		for _, r := range p.Email {
			fmt.Fprintf(&entities, "&#%d;", r)
		}
		entities.WriteString("<br>")
		fmt.Fprintf(&names, "<p>%s</p>\r\n", strings.ToUpper(p.Name))
	}
	qw := quotedprintable.NewWriter(&qp)
	fmt.Fprintf(qw, "Participants: %s — thanks all, see you there!", list)
	qw.Close()
	inner := "From: Sales <sales@brand.example>\r\nTo: " + list + "\r\nSubject: survey\r\n\r\nHello all.\r\n"
	tests := []struct {
		name        string
		msg         []byte
		byAddr, byN int
	}{
		{"attached message", ct.Message("fwd", "see below", ct.Attachment{Name: "original.eml", Type: "message/rfc822", Data: []byte(inner), Raw: true}), 4, 4},
		{"rfc822-headers", ct.Message("report", "", ct.Attachment{Name: "headers.txt", Type: "text/rfc822-headers", Data: []byte("To: " + list + "\r\n")}), 4, 4},
		{"part header", []byte("Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
			"Content-Type: text/plain\r\nTo: " + list + "\r\n\r\nhello\r\n--b--\r\n"), 4, 4},
		{"mailto percent-encoded", ct.Message("x", "", ct.Attachment{Name: "", Type: "text/html", Data: []byte(mailto.String())}), 4, 0},
		{"entity-encoded", ct.Message("x", "", ct.Attachment{Type: "text/html", Data: []byte("<p>" + entities.String() + "</p>")}), 4, 0},
		{"names in html", ct.Message("x", "", ct.Attachment{Type: "text/html", Data: []byte(names.String())}), 0, 4},
		{"calendar attendees", ct.Message("invite", "", ct.Attachment{Name: "invite.ics", Type: "text/calendar", Data: ct.ICal(people)}), 4, 4},
		{"quoted-printable", []byte("Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n" +
			"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + qp.String() + "\r\n"), 4, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := scan(t, tc.msg, w)
			if r.RecipientsByAddress != tc.byAddr || r.RecipientsByName != tc.byN {
				t.Errorf("by address %d, by name %d; want %d, %d", r.RecipientsByAddress, r.RecipientsByName, tc.byAddr, tc.byN)
			}
			if !slices.Equal(r.RecipientsShown, []int{0, 1, 2, 3}) {
				t.Errorf("shown %v, want all four", r.RecipientsShown)
			}
		})
	}
}

// Names match as a client shows them, and only names that say who.
func TestNameRule(t *testing.T) {
	w := content.Watch{Keys: []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com"},
		Names: [][]string{{"Ann"}, {"Customer Service"}, {"Zoé Müller"}, {"Bartholomew"}}}
	tests := []struct {
		text string
		want []int
	}{
		{"Dear Ann, Ann's order is ready.", nil},
		{"Contact Customer Service today.", nil},
		{"Thanks, ZOÉ\r\n   MÜLLER!", []int{2}},
		{"Zoé Müllerová wrote", nil},
		{"bartholomew said hi", []int{3}},
	}
	for _, tc := range tests {
		r := scan(t, ct.Message("x", tc.text), w)
		if !slices.Equal(r.RecipientsShown, tc.want) {
			t.Errorf("%q: shown %v, want %v", tc.text, r.RecipientsShown, tc.want)
		}
	}
}
