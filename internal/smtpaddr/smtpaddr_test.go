package smtpaddr

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, local, domain, wire string
		utf8                    bool
	}{
		{in: "ann@example.com", local: "ann", domain: "example.com", wire: "ann@example.com"},
		{in: "first.last+tag@sub.example.org", local: "first.last+tag", domain: "sub.example.org", wire: "first.last+tag@sub.example.org"},
		{in: `"victim@evil.example"@c.example`, local: "victim@evil.example", domain: "c.example", wire: `"victim@evil.example"@c.example`},
		{in: `"u,v"@c.example`, local: "u,v", domain: "c.example", wire: `"u,v"@c.example`},
		{in: `"u\\"@c.example`, local: `u\`, domain: "c.example", wire: `"u\\"@c.example`},
		{in: `"a\"b"@c.example`, local: `a"b`, domain: "c.example", wire: `"a\"b"@c.example`},
		{in: `"with space"@c.example`, local: "with space", domain: "c.example", wire: `"with space"@c.example`},
		{in: `"a>b"@c.example`, local: "a>b", domain: "c.example", wire: `"a>b"@c.example`},
		// Needless quotes name the same mailbox and are not kept.
		{in: `"abc"@c.example`, local: "abc", domain: "c.example", wire: "abc@c.example"},
		{in: `"a\b"@c.example`, local: "ab", domain: "c.example", wire: "ab@c.example"},
		{in: `".lead"@c.example`, local: ".lead", domain: "c.example", wire: `".lead"@c.example`},
		{in: "x@[192.0.2.1]", local: "x", domain: "[192.0.2.1]", wire: "x@[192.0.2.1]"},
		{in: "x@[IPv6:2001:db8::1]", local: "x", domain: "[IPv6:2001:db8::1]", wire: "x@[IPv6:2001:db8::1]"},
		{in: "x@localhost", local: "x", domain: "localhost", wire: "x@localhost"},
		{in: "zoé@exämple.example", local: "zoé", domain: "exämple.example", wire: "zoé@exämple.example", utf8: true},
		{in: `"zo é"@example.com`, local: "zo é", domain: "example.com", wire: `"zo é"@example.com`, utf8: true},
		{in: strings.Repeat("a", 64) + "@example.com", local: strings.Repeat("a", 64), domain: "example.com", wire: strings.Repeat("a", 64) + "@example.com"},
	} {
		m, err := Parse(tc.in, tc.utf8)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if m.Local != tc.local || m.Domain != tc.domain || m.Wire() != tc.wire {
			t.Errorf("Parse(%q) = %q @ %q, wire %q; want %q @ %q, wire %q", tc.in, m.Local, m.Domain, m.Wire(), tc.local, tc.domain, tc.wire)
		}
		back, err := FromString(m.String())
		if err != nil || back != m {
			t.Errorf("FromString(%q) = %+v, %v; want %+v", m.String(), back, err, m)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct {
		in, why string
		utf8    bool
	}{
		{in: "u@c.example\x00@evil.example", why: "control character"},
		{in: "u\x00@c.example", why: "control character"},
		{in: "\"u\x01\"@c.example", why: "control character"},
		{in: "u@c.exam\tple", why: "control character"},
		{in: "u\x7f@c.example", why: "control character"},
		{in: "u@c.example@evil.example", why: "an @ outside quotes"},
		{in: `"u"@c.example@evil.example`, why: "an @ outside quotes"},
		{in: "a..b@c.example", why: "not a dot-string"},
		{in: ".a@c.example", why: "not a dot-string"},
		{in: "a.@c.example", why: "not a dot-string"},
		{in: "a,b@c.example", why: "not a dot-string"},
		{in: `""@c.example`, why: "empty local part"},
		{in: "@c.example", why: "not a dot-string"},
		{in: `"open@c.example`, why: "malformed quoted"},
		{in: `"a"b@c.example`, why: "no @ after"},
		{in: `"a\é"@c.example`, why: "malformed quoted", utf8: true},
		{in: "u", why: "no @domain"},
		{in: "u@", why: "empty domain"},
		{in: "u@c..example", why: "not a valid domain"},
		{in: "u@-c.example", why: "not a valid domain"},
		{in: "u@c_d.example", why: "not a valid domain"},
		{in: "u@c.example.", why: "not a valid domain"},
		{in: "u@[300.1.1.1]", why: "address literal"},
		{in: "u@[IPv6:1.2.3.4]", why: "address literal"},
		{in: "u@[tag:content]", why: "address literal"},
		{in: strings.Repeat("a", 65) + "@example.com", why: "longer than 64"},
		{in: "a@" + strings.Repeat("b.", 130) + "example", why: "longer than 254"},
		{in: "a@" + strings.Repeat("b", 64) + ".example", why: "not a valid domain"},
		{in: "zo\xe9@example.com", why: "invalid UTF-8", utf8: true},
		{in: "zo\u202eé@example.com", why: "invisible formatting", utf8: true},
		{in: "zo\u0085@example.com", why: "control character", utf8: true},
	} {
		m, err := Parse(tc.in, tc.utf8)
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(e.Reason, tc.why) {
			t.Errorf("Parse(%q) = %+v, %v; want an error saying %q", tc.in, m, err, tc.why)
		}
	}
	if _, err := Parse("zoé@example.com", false); !errors.Is(err, ErrNeedsSMTPUTF8) {
		t.Errorf("non-ASCII without SMTPUTF8: %v, want ErrNeedsSMTPUTF8", err)
	}
}

// TestFromStringRefusesUnsendable: addresses stored by older versions,
// before Parse existed, are checked before they are written.
func TestFromStringRefusesUnsendable(t *testing.T) {
	for _, addr := range []string{"u@c.example\x00@evil.example", "u\r\nRCPT TO:<x@y>@c.example", "nodomain", "@c.example", "u@c.example>"} {
		if w, err := Wire(addr); err == nil {
			t.Errorf("Wire(%q) = %q, want an error", addr, w)
		}
	}
}

// FuzzParse: whatever Parse accepts, its Wire form is a valid path that
// parses back to the same mailbox and its String form splits back to it:
// what a command would carry is exactly what was accepted, and nothing in it
// could end a command line.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"ann@example.com", `"victim@evil.example"@c.example`, `"u,v"@c.example`, `"u\\"@c.example`,
		"u@c.example\x00@evil.example", `"a\"b"@c.example`, "x@[IPv6:::1]", "zoé@exämple.example",
	} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, in string, utf8ok bool) {
		m, err := Parse(in, utf8ok)
		if err != nil {
			return
		}
		w := m.Wire()
		if strings.ContainsAny(w, "\x00\r\n") || strings.ContainsFunc(w, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("Parse(%q): wire form %q holds a control character", in, w)
		}
		again, err := Parse(w, utf8ok)
		if err != nil || again != m {
			t.Fatalf("Parse(%q) = %+v; its wire form %q parses as %+v, %v", in, m, w, again, err)
		}
		back, err := FromString(m.String())
		if err != nil || back != m {
			t.Fatalf("Parse(%q) = %+v; FromString(%q) = %+v, %v", in, m, m.String(), back, err)
		}
		if ws, err := Wire(m.String()); err != nil || ws != w {
			t.Fatalf("Wire(%q) = %q, %v; want %q", m.String(), ws, err, w)
		}
	})
}
