// Package leakcheck is the tests' own check that a copy bccguard made shows
// no other recipient in its header: an address or a name, raw, RFC
// 2047-decoded or percent-encoded, in any field but the trace fields. It is
// written apart from internal/mailhdr on purpose, plainly and strictly (any
// occurrence counts, wherever in a field), so that the tests of the reader
// and the rewrite do not grade themselves; only the rule of which fields
// are trace fields is mailhdr's. It also reads the golden leak
// cases' index (relay/rewrite/testdata/leaks/CASES).
package leakcheck

import (
	"bufio"
	"fmt"
	"io"
	"mime"
	"net/url"
	"strings"
	"unicode"

	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"

	"github.com/bccguard/bccguard/internal/mailhdr"
	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// Person is a recipient and a name the header may give them ("" for none).
type Person struct {
	Addr string
	Name string
}

// Case is one golden leak case.
type Case struct {
	File    string
	Rcpts   []string // the envelope recipients
	Copies  string   // "clean" or "held"
	Builtin string   // the built-in policy's decision, action/rule
	Name    string   // the display name of the explode copy to Rcpts[0] ("" for none)
}

// ReadCases reads a CASES index: "person ADDR NAME" lines and
// "FILE RCPTS COPIES BUILTIN [NAME]" lines; "#" starts a comment line and
// "-" is an empty name.
func ReadCases(r io.Reader) ([]Case, []Person, error) {
	var cases []Case
	var people []Person
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if f[0] == "person" && len(f) >= 3 {
			people = append(people, Person{Addr: f[1], Name: dash(strings.Join(f[2:], " "))})
			continue
		}
		if len(f) < 4 {
			return nil, nil, fmt.Errorf("CASES line %d: want FILE RCPTS COPIES BUILTIN [NAME]", n)
		}
		cases = append(cases, Case{File: f[0], Rcpts: strings.Split(f[1], ","), Copies: f[2], Builtin: f[3], Name: dash(strings.Join(f[4:], " "))})
	}
	return cases, people, sc.Err()
}

func dash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

// Header returns a description of every other recipient that the header
// block head of a copy shows: a copy to own alone (rcpts 1), for whom the
// others are everyone else in people, or to several (rcpts > 1), for whom
// everyone is another's. An address counts in every form (raw, decoded,
// percent-decoded, punycode or Unicode domain); a name counts as whole
// words, unless it is also a name of the copy's own recipient.
func Header(head []byte, people []Person, own string, rcpts int) []string {
	ownNames := map[string]bool{}
	if rcpts == 1 {
		for _, p := range people {
			if sameAddr(p.Addr, own) && p.Name != "" {
				ownNames[nameKey(p.Name)] = true
			}
		}
	}
	var leaks []string
	for _, f := range fields(head) {
		text := f.texts()
		for _, p := range people {
			if rcpts == 1 && sameAddr(p.Addr, own) {
				continue
			}
			for _, form := range addrForms(p.Addr) {
				if containsAddr(text, form) {
					leaks = append(leaks, fmt.Sprintf("the address %s in %s", p.Addr, f.label()))
					break
				}
			}
			if k := nameKey(p.Name); k != "" && !ownNames[k] && strings.Contains(" "+nameKey(text)+" ", " "+k+" ") {
				leaks = append(leaks, fmt.Sprintf("the name %q in %s", p.Name, f.label()))
			}
		}
	}
	return leaks
}

// ToName returns the display name the To: field of head shows ("" for
// none, or when there is no single parsable To:).
func ToName(head []byte) string {
	for _, f := range fields(head) {
		if f.name == "to" {
			l, err := mail.ParseAddressList(strings.TrimSpace(f.value))
			if err != nil || len(l) != 1 {
				return ""
			}
			return l[0].Name
		}
	}
	return ""
}

type field struct{ name, value string }

func (f field) label() string {
	if f.name == "" {
		return "a line that is not a field"
	}
	return f.name + ":"
}

// texts is the value as every reader may show it, lowercased: raw,
// RFC 2047-decoded, percent-decoded.
func (f field) texts() string {
	dec := mime.WordDecoder{CharsetReader: charset.Reader}
	d, err := dec.DecodeHeader(f.value)
	if err != nil {
		d = f.value
	}
	all := f.value + "\n" + d
	if u, err := url.PathUnescape(all); err == nil {
		all += "\n" + u
	} else {
		all += "\n" + strings.ReplaceAll(strings.ReplaceAll(all, "%40", "@"), "%2C", ",")
	}
	return strings.ToLower(norm.NFC.String(all))
}

// fields cuts a header block into its fields (outside the trace fields),
// unfolded: a line that starts with white space continues the field before.
func fields(head []byte) []field {
	var out []field
	for _, line := range strings.Split(strings.ReplaceAll(string(head), "\r\n", "\n"), "\n") {
		if line == "" {
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			out[len(out)-1].value += " " + strings.TrimSpace(line)
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || strings.ContainsAny(strings.TrimRight(name, " \t"), " \t") {
			name, value = "", line
		}
		out = append(out, field{strings.ToLower(strings.TrimSpace(name)), value})
	}
	kept := out[:0]
	for _, f := range out {
		// Trace fields (Received:, Message-ID:, ...) are not people to
		// mail clients: the product's rule, not its parsing, so it is
		// taken from mailhdr.
		if mailhdr.RoleOf(f.name) != mailhdr.Trace {
			kept = append(kept, f)
		}
	}
	return kept
}

// addrForms are the lowercased forms of an address: as given, and with its
// domain in the other IDN form.
func addrForms(a string) []string {
	a = strings.ToLower(a)
	forms := []string{a}
	local, domain, ok := strings.Cut(a, "@")
	if !ok {
		return forms
	}
	if u, err := idna.ToUnicode(domain); err == nil && u != domain {
		forms = append(forms, local+"@"+u)
	}
	if p, err := idna.ToASCII(domain); err == nil && p != domain {
		forms = append(forms, local+"@"+p)
	}
	return forms
}

func sameAddr(a, b string) bool {
	for _, x := range addrForms(a) {
		for _, y := range addrForms(b) {
			if x == y {
				return true
			}
		}
	}
	return false
}

// nameKey is the lowercased words of s, NFC, joined by single spaces.
func nameKey(s string) string {
	return strings.Join(strings.FieldsFunc(strings.ToLower(norm.NFC.String(s)), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r)
	}), " ")
}

// containsAddr reports whether text holds addr as a whole address: not
// preceded by a character that could be part of a local part, nor followed
// by one that could continue the domain.
func containsAddr(text, addr string) bool {
	for i := 0; ; {
		j := strings.Index(text[i:], addr)
		if j < 0 {
			return false
		}
		at := i + j
		end := at + len(addr)
		// In a URL query ("?subject=bob@example.com") "=", "?", "&"
		// and "/" end the word before the address.
		before := at == 0 || !isLocal(text[at-1]) || strings.IndexByte("=?&/", text[at-1]) >= 0
		after := end == len(text) || !isDomain(text[end]) || text[end] == '.' && (end+1 == len(text) || !isDomain(text[end+1]))
		if before && after {
			return true
		}
		i = at + 1
	}
}

func isLocal(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c >= 0x80 ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0
}

func isDomain(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c >= 0x80 || c == '-' || c == '.'
}
