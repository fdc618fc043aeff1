package edits

import (
	"fmt"
	"strings"

	"github.com/bccguard/bccguard/internal/mailhdr"
	"github.com/bccguard/bccguard/relay/store"
)

// Unsafe says why the copies that rewrite rw makes of a message with this
// header (read as h, its people p worked out with the message's envelope)
// for the envelope recipients rcpts would still show another recipient in
// their header: "" when every copy can be made clean. That is so when a
// field the table keeps as it is (Hold), or an address list it cannot clean
// because it does not parse, shows a recipient other than the copy's own.
// A pass copy is never checked: it shows what the original shows.
//
// The reason names the fields (their names only, sanitized) and counts the
// recipients; it never quotes an address or a name.
func Unsafe(h *mailhdr.Reading, p *mailhdr.People, rw store.Rewrite, rcpts []string) string {
	if rw == store.RewritePass || len(rcpts) == 0 {
		return ""
	}
	if p.Truncated {
		return fmt.Sprintf("the header shows more than %d addresses, too many to check every copy", mailhdr.MaxPeople)
	}
	own := ""
	if distinct(rcpts) == 1 {
		own = mailhdr.Key(rcpts[0]) // the one copy's own recipient
	}
	exposed := map[int]bool{}
	var fields []string
	for i := range h.Entries {
		e := &h.Entries[i]
		switch For(rw, e.Name, e.Role) {
		case Hold:
		case Clean:
			if e.List == nil || e.List.Clean {
				continue
			}
		default:
			continue
		}
		n := 0
		for _, j := range p.Shows(i) {
			if Other(p, j, own) {
				exposed[j] = true
				n++
			}
		}
		if n > 0 {
			fields = append(fields, fieldLabel(e.Name))
		}
	}
	if len(exposed) == 0 {
		return ""
	}
	return fmt.Sprintf("the header shows %d other %s in %s, which the %s rewrite cannot remove without breaking the field",
		len(exposed), plural(len(exposed), "recipient", "recipients"), listFields(fields), rw)
}

func distinct(addrs []string) int {
	seen := map[string]bool{}
	for _, a := range addrs {
		seen[mailhdr.Key(a)] = true
	}
	return len(seen)
}

// fieldLabel is a field name safe to quote: letters, digits and hyphens,
// at most 40 of them ("a line that is not a field" for none).
func fieldLabel(name string) string {
	if name == "" {
		return "a line that is not a header field"
	}
	b := make([]byte, 0, len(name))
	for i := 0; i < len(name) && len(b) < 40; i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' {
			b = append(b, c)
		}
	}
	return string(b) + ":"
}

func listFields(fields []string) string {
	seen := map[string]bool{}
	var out []string
	for _, f := range fields {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	if len(out) > 3 {
		out = append(out[:3], fmt.Sprintf("%d more fields", len(out)-3))
	}
	return strings.Join(out, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Other reports whether person i is another recipient for a copy whose own
// recipient has key own ("" for a copy to several recipients, for whom
// every recipient is another's): anyone but the copy's own recipient and
// the originator.
func Other(p *mailhdr.People, i int, own string) bool {
	who := p.List[i]
	return !who.Own && (own == "" || who.Key != own)
}

// ShowsOther reports whether any of the people in shown is another
// recipient for the copy.
func ShowsOther(p *mailhdr.People, shown []int, own string) bool {
	for _, i := range shown {
		if Other(p, i, own) {
			return true
		}
	}
	return false
}
