package mailhdr

import (
	"strings"
	"testing"
)

// show writes a list compactly: "Name <addr> (comments) [group]".
func show(l List) string {
	var parts []string
	for _, mb := range l.Boxes {
		s := mb.Name + " <" + mb.Addr + ">"
		if len(mb.Comments) > 0 {
			s += " (" + strings.Join(mb.Comments, "|") + ")"
		}
		if mb.Group != "" {
			s += " [" + mb.Group + "]"
		}
		parts = append(parts, strings.TrimSpace(s))
	}
	for _, g := range l.Groups {
		parts = append(parts, "group:"+g)
	}
	for _, n := range l.Names {
		parts = append(parts, "name:"+n)
	}
	return strings.Join(parts, ", ")
}

// ParseList reads RFC 5322's grammar, its obsolete syntax (section 4 and
// Appendix A.6) and what mailers write and clients show.
func TestParseList(t *testing.T) {
	cases := []struct {
		in    string
		want  string
		clean bool
	}{
		// RFC 5322 Appendix A.1
		{`John Doe <jdoe@machine.example>`, `John Doe <jdoe@machine.example>`, true},
		{`Mary Smith <mary@example.net>`, `Mary Smith <mary@example.net>`, true},
		{`"Joe Q. Public" <john.q.public@example.com>`, `Joe Q. Public <john.q.public@example.com>`, true},
		{`Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>`, `Mary Smith <mary@x.test>, <jdoe@example.org>, Who? <one@y.test>`, true},
		{`<boss@nil.test>, "Giant; \"Big\" Box" <sysservices@example.net>`, `<boss@nil.test>, Giant; "Big" Box <sysservices@example.net>`, true},
		{`A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;`, `Ed Jones <c@a.test> [A Group], <joe@where.test> [A Group], John <jdoe@one.test> [A Group], group:A Group`, true},
		{`Undisclosed recipients:;`, `group:Undisclosed recipients`, true},
		// A.5: comments everywhere
		{`Pete(A nice \) chap) <pete(his account)@silly.test(his host)>`, `Pete <pete@silly.test> (A nice ) chap|his account|his host)`, true},
		// A.6: obsolete syntax
		{`Mary Smith <@node.test:mary@example.net>, , jdoe@test  . example`, `Mary Smith <mary@example.net>, <jdoe@test.example>`, true},
		{`John Doe <jdoe@machine(comment).  example>`, `John Doe <jdoe@machine.example> (comment)`, true},
		{`Ann <@a.example,@b.example:ann@example.com>`, `Ann <ann@example.com>`, true},
		{`john . doe @ example . com`, `<john.doe@example.com>`, true},
		{`Joe Q. Public <jq@example.com>`, `Joe Q. Public <jq@example.com>`, true},
		// Encoded words, also split, inside quotes and in group names
		{`=?utf-8?q?Zo=C3=A9?= <zoe@a.example>`, `Zoé <zoe@a.example>`, true},
		{`"=?utf-8?q?Zo=C3=A9?=" <zoe@a.example>`, `Zoé <zoe@a.example>`, true},
		{`=?utf-8?b?w6k=?= =?utf-8?q?t=C3=A9?= <e@a.example>`, `été <e@a.example>`, true},
		{`=?iso-8859-1?q?J=FCrgen?= <j@a.example>`, `Jürgen <j@a.example>`, true},
		{`=?utf-8?q?Kunden?=:;`, `group:Kunden`, true},
		// What mailers write and clients accept
		{`anna@example.com; bob@example.org`, `<anna@example.com>, <bob@example.org>`, true},
		{`Mikel@Lindsaar <mikel@example.com>`, `Mikel@Lindsaar <mikel@example.com>`, true},
		{`s..palmer@example.com, .lead@example.org`, `<s..palmer@example.com>, <.lead@example.org>`, true},
		{"Andr\xe9 <andre@example.com>", `André <andre@example.com>`, true},
		{`baz`, `<baz>`, true},
		{`Mary Smith`, `name:Mary Smith`, true},
		{`jane@example.com (Jane Doe)`, `<jane@example.com> (Jane Doe)`, true},
		// Not fully understood: still read
		{`tim@example.com concierge@example.com`, `<tim@example.com>, <concierge@example.com>`, false},
		{`Jane Doe jane@example.com`, `Jane Doe <jane@example.com>`, false},
		{`"Unterminated <bob@example.org>, carol@example.net`, `name:Unterminated <bob@example.org>, carol@example.net`, false},
		{`<Undisclosed-Recipient:@mailman.example;>`, `<Undisclosed-Recipient>`, false},
		{`a@example.com <b@example.org>`, `a@example.com <b@example.org>`, true},
	}
	for _, c := range cases {
		l := ParseList(c.in)
		if got := show(l); got != c.want || l.Clean != c.clean {
			t.Errorf("%q:\n got  %s (clean %v)\n want %s (clean %v)", c.in, got, l.Clean, c.want, c.clean)
		}
	}
}

// FuzzParseList: whatever the text, the parse ends, and every address it
// returns is in the text (or in its decoded form).
func FuzzParseList(f *testing.F) {
	f.Add(`g: a@example.com, (c) <@r.example:b@example.org>;, c . d @ example . net`)
	f.Add(`"x\"y" <z@example.com>; w@example.com, =?utf-8?b?w7w=?= <u@example.com>`)
	f.Fuzz(func(t *testing.T, s string) {
		l := ParseList(s)
		for _, mb := range l.Boxes {
			local, _, _ := strings.Cut(mb.Addr, "@")
			if mb.Addr != "" && !strings.Contains(toUTF8(s), strings.Trim(local, ".")) && !strings.Contains(s, local) {
				// quoted pairs and obsolete spaces may change the local
				// part's bytes; its text is still there.
				if strings.ContainsAny(s, "\"\\ \t(") {
					continue
				}
				t.Fatalf("address %q not in %q", mb.Addr, s)
			}
		}
	})
}
