package mailhdr

import (
	"bytes"
	"encoding/base64"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// maxEncodedWord bounds the text of one encoded word; RFC 2047 allows 75
// octets for the whole word, clients take more, nothing needs this much.
const maxEncodedWord = 4096

// Decode decodes the RFC 2047 encoded words in s (an unfolded field body, or
// a phrase of one) as mail clients show them, which is more than RFC 2047
// asks (see the package comment for why mime.WordDecoder is not used):
//   - an encoded word anywhere, also inside a quoted string or a word
//     ("abc=?utf-8?q?d?="), and with spaces in its text;
//   - adjacent encoded words (only white space between them) are joined
//     before their charset is decoded, so a character split over two words
//     comes out whole;
//   - B text with missing padding or stray characters, Q text with a stray
//     "=";
//   - an unknown charset: the bytes as UTF-8 where they are, else Latin-1.
//
// Raw 8-bit text outside encoded words is taken as UTF-8 where it is valid
// and as Latin-1 otherwise. The result is valid UTF-8; it may hold any
// character the words encode, line breaks and controls included, which
// callers must treat as data.
func Decode(s string) string {
	if !strings.Contains(s, "=?") {
		return toUTF8(s)
	}
	var out strings.Builder
	pendCS, pendBuf := "", []byte(nil) // encoded words waiting to be joined
	flush := func() {
		if pendCS != "" {
			out.WriteString(convert(pendCS, pendBuf))
		}
		pendCS, pendBuf = "", pendBuf[:0]
	}
	for {
		i := strings.Index(s, "=?")
		if i < 0 {
			break
		}
		cs, data, n, ok := encodedWord(s[i:])
		if !ok {
			flush()
			out.WriteString(toUTF8(s[:i+2]))
			s = s[i+2:]
			continue
		}
		// White space between two encoded words is dropped (RFC 2047
		// 6.2); words of one charset are joined, so that a character split
		// over two of them comes out whole.
		if lit := s[:i]; pendCS != "" && isWSP(lit) {
			if !strings.EqualFold(pendCS, cs) {
				flush()
			}
		} else {
			flush()
			out.WriteString(toUTF8(lit))
		}
		if pendCS == "" {
			pendCS = cs
		}
		pendBuf = append(pendBuf, data...)
		s = s[i+n:]
	}
	flush()
	out.WriteString(toUTF8(s))
	return out.String()
}

// encodedWord reads "=?charset?e?text?=" at the start of s and returns the
// charset (without an RFC 2231 language), the decoded octets and the length
// read.
func encodedWord(s string) (cs string, data []byte, n int, ok bool) {
	rest := s[2:]
	q := strings.IndexByte(rest, '?')
	if q <= 0 || q > 64 || strings.ContainsAny(rest[:q], " \t=") {
		return "", nil, 0, false
	}
	cs = rest[:q]
	if star := strings.IndexByte(cs, '*'); star >= 0 {
		cs = cs[:star]
	}
	rest = rest[q+1:]
	if len(rest) < 2 || rest[1] != '?' {
		return "", nil, 0, false
	}
	enc := rest[0]
	rest = rest[2:]
	end := strings.Index(rest, "?=")
	if end < 0 || end > maxEncodedWord {
		return "", nil, 0, false
	}
	text := rest[:end]
	switch enc {
	case 'B', 'b':
		data = decodeB(text)
	case 'Q', 'q':
		data = decodeQ(text)
	default:
		return "", nil, 0, false
	}
	if cs == "" {
		return "", nil, 0, false
	}
	return cs, data, 2 + q + 1 + 2 + end + 2, true
}

// decodeB decodes base64 as clients do: white space and stray characters
// are skipped, padding may be missing.
func decodeB(text string) []byte {
	clean := make([]byte, 0, len(text))
	for i := 0; i < len(text); i++ {
		c := text[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' {
			clean = append(clean, c)
		}
	}
	if len(clean)%4 == 1 {
		clean = clean[:len(clean)-1] // one sextet is no octet
	}
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
	n, _ := base64.RawStdEncoding.Decode(out, clean)
	return out[:n]
}

// decodeQ decodes RFC 2047's Q encoding: "_" is a space, "=XX" an octet; a
// "=" without two hex digits stays as it is.
func decodeQ(text string) []byte {
	out := make([]byte, 0, len(text))
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '_':
			out = append(out, ' ')
		case c == '=' && i+2 < len(text) && isHex(text[i+1]) && isHex(text[i+2]):
			out = append(out, unhex(text[i+1])<<4|unhex(text[i+2]))
			i += 2
		default:
			out = append(out, c)
		}
	}
	return out
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// convert decodes octets in charset cs to UTF-8 (go-message's charset
// tables); an unknown charset or a failure gives toUTF8's guess.
func convert(cs string, b []byte) string {
	switch strings.ToLower(cs) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return toUTF8(string(b))
	}
	r, err := charset.Reader(cs, bytes.NewReader(b))
	if err != nil {
		return toUTF8(string(b))
	}
	d, err := io.ReadAll(io.LimitReader(r, int64(8*len(b)+16)))
	if err != nil {
		return toUTF8(string(b))
	}
	return strings.ToValidUTF8(string(d), "\uFFFD")
}

// toUTF8 returns s if it is valid UTF-8, else s read as Latin-1, as mail
// clients show raw 8-bit header text without a charset.
func toUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		b.WriteRune(rune(s[i]))
	}
	return b.String()
}

func isWSP(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' && s[i] != '\t' {
			return false
		}
	}
	return true
}
