package policy

import "testing"

// TestBuildInputSeesBareCRLines: a Cc: hidden behind a bare CR in the
// Subject: is a field of its own for `policy test`, as it is for a listener
// with bare_newlines: normalize (and a listener with reject refuses the
// message): the policy counts what a CR-sensitive reader would show.
func TestBuildInputSeesBareCRLines(t *testing.T) {
	for _, raw := range []string{
		"To: ann@example.com\r\nSubject: hello\rCc: Chen <chen@c.example>\r\n\r\nbody\r\n",
		"To: ann@example.com\nSubject: hello\rCc: Chen <chen@c.example>\n\nbody\n",
	} {
		in := BuildInput([]byte(raw), Envelope{Sender: "crm@brand.example", Recipients: []string{"ann@example.com"}}, Client{})
		v := ParseVisible(in.Header, nil)
		if v.Count != 2 || v.ParseError != "" {
			t.Errorf("%q: visible %+v, want ann and chen", raw, v.Recipients)
		}
	}
}
