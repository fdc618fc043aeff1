package policy

import (
	"io"
	"mime"
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"golang.org/x/net/idna"
)

// addrParser parses address lists as go-message's mail.ParseAddressList does
// (net/mail with go-message's charsets), except that an unknown charset in
// an encoded-word does not fail the whole list: a display name is only
// cosmetic, the address next to it is what matters.
var addrParser = mail.AddressParser{WordDecoder: wordDecoder}

var wordDecoder = &mime.WordDecoder{CharsetReader: func(cs string, r io.Reader) (io.Reader, error) {
	if d, err := charset.Reader(cs, r); err == nil {
		return d, nil
	}
	return r, nil
}}

// parseAddressList parses the value of one To: or Cc: field. A blank value
// (or one holding only a comment) shows nobody and is not an error.
//
// net/mail implements RFC 5322's current syntax. The obsolete syntax of
// section 4.4, which receivers must still accept and some mailers still
// write, is handled by retrying with relaxObsolete; anything else is an
// error, and the caller fails closed.
func parseAddressList(s string) ([]*mail.Address, error) {
	if blankField(s) {
		return nil, nil
	}
	list, err := addrParser.ParseList(s)
	if err == nil {
		return list, nil
	}
	if alt, ok := relaxObsolete(s); ok {
		if list, err2 := addrParser.ParseList(alt); err2 == nil {
			return list, nil
		}
	}
	return nil, err
}

// blankField reports whether s holds only white space and comments.
func blankField(s string) bool {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0 && c != ' ' && c != '\t' && c != '\r' && c != '\n':
			return false
		}
	}
	return true
}

// relaxObsolete rewrites the obsolete forms net/mail rejects into current
// syntax, leaving quoted strings alone:
//   - source routes: <@a.example,@b.example:user@example.com>
//   - white space inside angle brackets, around "@", and around the dots of
//     a bare addr-spec (obs-local-part, obs-domain): john . doe @ example . com
//   - comments in front of a display name: (Sales) John <john@example.com>
//   - an unquoted "@" in a display name: Mikel@Lindsaar <mikel@example.com>
//   - ";" as list separator outside a group (written by some mailers)
//   - raw 8-bit display names (read as ISO-8859-1)
//   - local parts with leading, trailing or doubled dots (s..palmer@),
//     which Exchange wrote and mail readers show: quoted to be valid
//
// It reports false when there was nothing to rewrite.
func relaxObsolete(orig string) (string, bool) {
	s := orig
	if !utf8.ValidString(s) {
		s = latin1ToUTF8(s)
	}
	out := make([]byte, 0, len(s)+8)
	inAngle, inGroup := false, false
	bare := elementIsBare(s, 0)
	elem := 0 // where the current element starts in out
	last := func() byte {
		if len(out) == 0 {
			return 0
		}
		return out[len(out)-1]
	}
	nextNonSpace := func(i int) byte {
		for ; i < len(s); i++ {
			if s[i] != ' ' && s[i] != '\t' {
				return s[i]
			}
		}
		return 0
	}
	newElement := func(i int) {
		bare = elementIsBare(s, i)
		elem = len(out)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '(':
			end := skipComments(s, i)
			switch nextNonSpace(end) {
			case 0, ',', ':', '>', '<':
				out = append(out, s[i:end]...) // names a bare address, or harmless
			default:
				out = append(out, ' ') // before a word: net/mail cannot take it there
			}
			i = end - 1
		case c == '"':
			end := skipQuoted(s, i)
			out = append(out, s[i:end]...)
			i = end - 1
		case c == '<':
			if phrase := string(out[elem:]); !inAngle && strings.Contains(phrase, "@") && !strings.ContainsAny(phrase, `"\`) {
				// An unquoted "@" in a display name (Mikel@Lindsaar <...>).
				out = append(append(append(out[:elem], '"'), strings.TrimSpace(phrase)...), '"', ' ')
			}
			inAngle = true
			out = append(out, c)
			if nextNonSpace(i+1) == '@' {
				// obs-route: drop everything up to and including the ":".
				if j := strings.IndexByte(s[i:], ':'); j > 0 && !strings.ContainsAny(s[i:i+j], ">\"") {
					i += j
				}
			}
		case c == '>':
			inAngle = false
			out = append(out, c)
		case c == ' ' || c == '\t':
			n := nextNonSpace(i)
			switch l := last(); {
			case inAngle, l == '@', n == '@':
			case bare && (l == '.' || n == '.'):
			default:
				out = append(out, c)
			}
		case c == ':' && !inAngle:
			inGroup = true
			out = append(out, c)
			newElement(i + 1)
		case c == ';' && !inAngle:
			if inGroup {
				inGroup = false
				out = append(out, c)
			} else {
				out = append(out, ',')
			}
			newElement(i + 1)
		case c == ',' && !inAngle:
			out = append(out, c)
			newElement(i + 1)
		default:
			out = append(out, c)
		}
	}
	res := dottedLocal.ReplaceAllStringFunc(string(out), func(m string) string {
		i := strings.IndexAny(m, dotAtext)
		lead, local := m[:i], m[i:len(m)-1]
		if !strings.Contains(local, "..") && !strings.HasPrefix(local, ".") && !strings.HasSuffix(local, ".") {
			return m
		}
		return lead + `"` + local + `"@`
	})
	return res, res != orig
}

const dotAtext = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~.-"

// dottedLocal finds a bare local part (atext and dots) and its "@".
var dottedLocal = regexp.MustCompile("(?:^|[\\s,<:])[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@")

// elementIsBare reports whether the list element starting at i is a bare
// addr-spec (no angle brackets), whose dots may carry obsolete spaces; in
// a display name, "John Q. Public", they are words.
func elementIsBare(s string, i int) bool {
	for i < len(s) {
		switch s[i] {
		case '(':
			i = skipComment(s, i)
			continue
		case '"':
			i = skipQuoted(s, i)
			continue
		case '<':
			return false
		case ',', ';', ':':
			return true
		}
		i++
	}
	return true
}

// skipComments returns the index after the comments (and the white space
// between them) starting at i.
func skipComments(s string, i int) int {
	for {
		i = skipComment(s, i)
		j := i
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		if j >= len(s) || s[j] != '(' {
			return i
		}
		i = j
	}
}

// skipComment returns the index after the (nested) comment starting at i.
func skipComment(s string, i int) int {
	depth := 0
	for ; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return i + 1
			}
		}
	}
	return len(s)
}

// skipQuoted returns the index after the quoted string starting at i.
func skipQuoted(s string, i int) int {
	for i++; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(s)
}

func latin1ToUTF8(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		b.WriteRune(rune(s[i]))
	}
	return b.String()
}

// splitAddress splits an addr-spec at its last "@" (a quoted local part may
// hold another).
func splitAddress(a string) (local, domain string, ok bool) {
	i := strings.LastIndexByte(a, '@')
	if i <= 0 || i == len(a)-1 {
		return "", "", false
	}
	return a[:i], a[i+1:], true
}

// normDomain lowercases a domain and brings IDNs to one form (Unicode), so
// that "Bücher.example" and "xn--bcher-kva.example" are the same domain.
func normDomain(d string) string {
	d = strings.TrimSuffix(strings.TrimSpace(d), ".")
	if strings.HasPrefix(d, "[") {
		return strings.ToLower(d) // address literal
	}
	if isASCII(d) && !strings.Contains(d, "xn--") && !strings.Contains(d, "XN--") {
		return strings.ToLower(d)
	}
	if u, err := idna.Lookup.ToUnicode(d); err == nil && u != "" && !strings.ContainsAny(u, "@ ") {
		return u
	}
	return strings.ToLower(d)
}

// addrKey is the form in which addresses are compared: domain normalized,
// and the local part lowercased too. RFC 5321 lets a local part be case
// sensitive, but practically no mailbox is, and a CRM that writes
// "Jane.Doe@" in To: and "jane.doe@" in RCPT TO must not make her look like
// a Bcc recipient.
func addrKey(a string) string {
	a = strings.TrimSpace(a)
	a = strings.TrimSuffix(strings.TrimPrefix(a, "<"), ">")
	local, domain, ok := splitAddress(a)
	if !ok {
		return strings.ToLower(a)
	}
	if len(local) >= 2 && local[0] == '"' && local[len(local)-1] == '"' {
		local = unquote(local[1 : len(local)-1])
	}
	return strings.ToLower(local) + "@" + normDomain(domain)
}

func unquote(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// domainOf returns the normalized domain of an address ("" if it has none).
func domainOf(a string) string {
	_, d, ok := splitAddress(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(a), "<"), ">"))
	if !ok {
		return ""
	}
	return normDomain(d)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// safeParseError reduces a library's parse error to its kind: net/mail
// and go-message repeat the offending input after it (quoted, or after a
// last colon), and that input is someone's address or header line, which
// must not reach logs or replies.
func safeParseError(err error) string {
	m := err.Error()
	for _, kind := range []string{"malformed MIME header line", "malformed MIME header key", "malformed MIME header initial line"} {
		if i := strings.Index(m, kind); i >= 0 {
			return m[:i+len(kind)]
		}
	}
	if i := strings.IndexByte(m, '"'); i >= 0 {
		m = m[:i]
	}
	if i := strings.Index(m, ": '"); i >= 0 {
		m = m[:i]
	}
	return strings.TrimRight(m, " :;")
}
