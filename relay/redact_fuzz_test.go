package relay

import (
	"testing"

	"github.com/bccguard/bccguard/internal/smtpaddr"
)

// FuzzRedactAcceptedAddresses: every address the relay accepts, written as
// an upstream would quote it back, is redacted whole: nothing of its local
// part or domain stays readable in the log.
func FuzzRedactAcceptedAddresses(f *testing.F) {
	for _, s := range []string{
		"bob@example.net", `"victim@evil.example"@c.example`, `"zq \"x\""@qq.example`, `"u\\"@c.example`,
		"lit@[192.0.2.77]", "v6@[IPv6:2001:db8::7]", "zoé@exämple.example", `"a b,c"@d.example`,
	} {
		f.Add(s)
	}
	s := &Server{redactKey: []byte("k")}
	f.Fuzz(func(t *testing.T, in string) {
		m, err := smtpaddr.Parse(in, true)
		if err != nil {
			return
		}
		w := m.Wire()
		for _, frame := range [][2]string{{"550 5.1.1 <", ">: Recipient address rejected"}, {"to ", " now"}} {
			text := frame[0] + w + frame[1]
			want := frame[0] + s.redact(w) + frame[1]
			if got := s.redactText(text); got != want {
				t.Fatalf("redactText(%q) = %q, want %q", text, got, want)
			}
		}
	})
}
