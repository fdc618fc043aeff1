package mailhdr

import (
	"strings"
	"sync"
)

// Token kinds of an address list (RFC 5322 3.2). Specials are their own
// byte: '<', '>', '@', ',', ';', ':', '.'.
const (
	tAtom    = 'a' // a run of atext (and 8-bit bytes, RFC 6532)
	tQuoted  = 'q' // a quoted string; text is its content, quoted pairs undone
	tComment = 'c' // a comment; text is its content, quoted pairs undone
	tSpace   = 'w' // white space
	tLiteral = 'l' // a domain literal, brackets included
)

type token struct {
	kind byte
	text string
}

// lex cuts an unfolded field body into tokens. It never fails: an
// unterminated quoted string, comment or domain literal runs to the end
// (and ok is false), and a stray ")", "]" or "\" is taken as text, as
// lenient readers do.
func lex(s string, toks []token) ([]token, bool) {
	ok := true
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			j := i + 1
			for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
				j++
			}
			toks = append(toks, token{tSpace, " "})
			i = j
		case c == '"':
			text, n, closed := quoted(s[i:])
			ok = ok && closed
			toks = append(toks, token{tQuoted, text})
			i += n
		case c == '(':
			text, n, closed := comment(s[i:])
			ok = ok && closed
			toks = append(toks, token{tComment, text})
			i += n
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				j, ok = len(s)-i-1, false
			}
			toks = append(toks, token{tLiteral, s[i : i+j+1]})
			i += j + 1
		case strings.IndexByte("<>@,;:.", c) >= 0:
			toks = append(toks, token{c, s[i : i+1]})
			i++
		default:
			j := i + 1
			for j < len(s) && isAtext(s[j]) {
				j++
			}
			toks = append(toks, token{tAtom, s[i:j]})
			i = j
		}
	}
	return toks, ok
}

// tokenBufs recycles lex's token slices: a mailing's To: of 500 entries
// is some 3,000 tokens, and growing a fresh slice to that size for each
// of a message's readings was the largest allocation of the explode path.
var tokenBufs = sync.Pool{New: func() any { b := make([]token, 0, 64); return &b }}

// maxPooledTokens bounds what is kept for reuse (24 bytes a token).
const maxPooledTokens = 1 << 14

// putTokens returns b to the pool, its strings cleared so that the pool
// does not keep a message's header alive.
func putTokens(b *[]token) {
	if cap(*b) > maxPooledTokens {
		return
	}
	clear(*b) // entries past len were cleared when they were last used
	*b = (*b)[:0]
	tokenBufs.Put(b)
}

// isAtext reports whether c continues an atom: anything but white space,
// the specials and the starts of quoted strings, comments and literals.
func isAtext(c byte) bool {
	switch c {
	case ' ', '\t', '"', '(', '[', '<', '>', '@', ',', ';', ':', '.', '\r', '\n':
		return false
	}
	return true
}

// quoted reads the quoted string at the start of s and returns its
// content, its length and whether it was closed.
func quoted(s string) (string, int, bool) {
	if end := strings.IndexAny(s[1:], "\\\""); end >= 0 && s[1+end] == '"' {
		return s[1 : 1+end], end + 2, true // no quoted pair: a substring
	}
	var b []byte
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
			}
			b = append(b, s[i])
		case '"':
			return string(b), i + 1, true
		default:
			b = append(b, s[i])
		}
	}
	return string(b), len(s), false
}

// comment reads the (nested) comment at the start of s and returns its
// content, nested parentheses kept, its length and whether it was closed.
func comment(s string) (string, int, bool) {
	var b []byte
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) {
				i++
			}
			b = append(b, s[i])
		case '(':
			if depth > 0 {
				b = append(b, c)
			}
			depth++
		case ')':
			if depth--; depth == 0 {
				return string(b), i + 1, true
			}
			b = append(b, c)
		default:
			b = append(b, c)
		}
	}
	return string(b), len(s), false
}
