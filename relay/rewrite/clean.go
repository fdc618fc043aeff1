package rewrite

import (
	"strings"
	"unicode"

	"github.com/emersion/go-message/mail"

	"github.com/bccguard/bccguard/internal/mailhdr"
	"github.com/bccguard/bccguard/relay/rewrite/edits"
)

// cleaned is entry i of the header (an address list the table cleans) for
// a copy whose own recipient is own: keep when it shows no other recipient
// and stays as it is; else raw is the list without the other recipients'
// mailboxes and without display names that show them (comments and group
// names go too), nil when nothing is left. A list that did not parse
// cleanly and shows another recipient cannot be cleaned; the policy holds
// such a message (see Unsafe), and a copy made anyway (a reviewer's
// release, on_unsafe_copy: allow) leaves the field out rather than show
// them.
func (s *Source) cleaned(i int, own string) (raw []byte, keep bool) {
	p := s.People()
	if !edits.ShowsOther(p, p.Shows(i), own) {
		return nil, true
	}
	e := &s.hdr.Entries[i]
	if !e.List.Clean {
		return nil, false
	}
	var kept []*mail.Address
	for _, mb := range e.List.Boxes {
		if mb.Addr == "" {
			continue
		}
		j, known := p.Index(mb.Addr)
		if known && edits.Other(p, j, own) {
			continue
		}
		name := mb.Name
		if name != "" && !s.safeName(name, j, known, own) {
			name = ""
		}
		kept = append(kept, &mail.Address{Name: name, Address: mb.Addr})
	}
	if len(kept) == 0 {
		return nil, false
	}
	return formatList(e.Name, kept), false
}

// formatList writes an address list field, folded between its addresses.
func formatList(name string, list []*mail.Address) []byte {
	var b strings.Builder
	b.WriteString(name)
	b.WriteString(": ")
	line := len(name) + 2
	for i, a := range list {
		s := a.String()
		if i > 0 {
			if line+len(s)+2 > 78 {
				b.WriteString(",\r\n ")
				line = 1
			} else {
				b.WriteString(", ")
				line += 2
			}
		}
		b.WriteString(s)
		line += len(s)
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// OwnName is the display name the copy to addr shows in its To:: the
// first name the original's addressee fields give that address (compared as
// mailhdr.Key: case, quoting and IDN forms aside) that is safe (see
// safeName), else "" and the copy shows the bare address.
func (s *Source) OwnName(addr string) string {
	p := s.People()
	i, ok := p.Index(addr)
	if !ok {
		return ""
	}
	own := mailhdr.Key(addr)
	for _, n := range p.AddresseeNames(i) {
		if s.safeName(n, i, true, own) {
			return n
		}
	}
	return ""
}

// safeName reports whether a display name, decoded, may be shown in a copy
// whose own recipient is own: it holds no address (nor anything a reader
// would take for one), no line break or other control character, and no
// name of another recipient, short names included, as whole words ("Zoé
// c/o Bob Barker" names Bob). self is the index of the person the name is
// given to (when known). Comments are never names (the parser never takes
// one as a display name), so no comment text can get in either.
func (s *Source) safeName(name string, self int, known bool, own string) bool {
	for _, r := range name {
		switch {
		case unicode.IsControl(r), r == '\u2028', r == '\u2029', r == '\u0085':
			return false
		case r == '@', r == '\uFF20', r == '\uFE6B':
			return false
		}
	}
	if len(mailhdr.Find(name)) > 0 {
		return false
	}
	p := s.People()
	for _, j := range p.NamesIn(name) {
		if (!known || j != self) && edits.Other(p, j, own) {
			return false
		}
	}
	return true
}
