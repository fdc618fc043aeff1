package mailhdr

import (
	"bytes"
	"strings"
)

// Field is one header field exactly as received: every byte of it,
// continuation lines and line ends included. A line that is not a field (an
// mbox "From " line, a stray word, a first line that starts with white
// space) is a Field too, with an empty Name, so that no byte of the block is
// lost and what such a line shows is still read.
type Field struct {
	// Name is the field name as written, without the white space that the
	// obsolete syntax allows before the colon ("Subject :"); "" for a line
	// that is not a field.
	Name string
	Raw  []byte
	// AfterCR is set when the field starts after a bare CR: a reader that
	// splits lines at LF only reads it as part of the field before.
	AfterCR bool

	key string // Name lowercased, set by Split
}

// Is reports whether the field's name is name, ignoring case.
func (f Field) Is(name string) bool { return f.Name != "" && strings.EqualFold(f.Name, name) }

// Key is the lowercased name ("" for a line that is not a field).
func (f Field) Key() string {
	if f.key == "" && f.Name != "" {
		return strings.ToLower(f.Name)
	}
	return f.key
}

// Body is the field body unfolded: what follows the colon with every line
// end (CRLF, LF or a bare CR) removed and the white space around it
// trimmed. For a line that is not a field it is the whole line, unfolded.
// It is not decoded (see Decode).
func (f Field) Body() string {
	v := f.Raw
	if f.Name != "" {
		v = v[bytes.IndexByte(v, ':')+1:]
	}
	return strings.TrimSpace(unfold(v))
}

// unfold removes line ends (CRLF, LF and a bare CR are all line ends
// here) and reads a fold, with the white space that starts the next line,
// as one space, as mail clients show it.
func unfold(b []byte) string {
	if bytes.IndexByte(b, '\r') < 0 && bytes.IndexByte(b, '\n') < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\r' && c != '\n' {
			out = append(out, c)
			continue
		}
		j := i
		for j < len(b) && (b[j] == '\r' || b[j] == '\n') {
			j++
		}
		if j < len(b) && (b[j] == ' ' || b[j] == '\t') {
			for j < len(b) && (b[j] == ' ' || b[j] == '\t') {
				j++
			}
			if n := len(out); n == 0 || out[n-1] != ' ' && out[n-1] != '\t' {
				out = append(out, ' ')
			}
		}
		i = j - 1
	}
	return string(out)
}

// Header is a header block cut into fields. Fields and Tail, written one
// after the other, are the block byte for byte.
type Header struct {
	Fields []Field
	// Tail is the empty line that ends the block, and anything after it;
	// nil when the block has none (a message without a body).
	Tail []byte
}

// Split cuts a header block into fields, keeping every byte. block is the
// header block as bccguard's ingress reads it: up to and including the first
// empty line (a lone CRLF or LF), or the whole message when there is none.
//
// Line ends are LF, CRLF and also a bare CR: a bare CR splits a line for some
// mail clients and not for others, so both readings must see the same
// fields, and here a bare CR ends a line. ("Subject: hi\rCc: <a@example.com>"
// is two fields, and the Cc: is edited like any other.) An empty line that
// exists only under that reading (the CR LF of "X: y\r\r\n") belongs to the
// line before it, as it does for a reader that splits at LF only, so it
// never ends the block early.
//
// A line that starts with white space continues the field before it; with no
// field before it, it starts a Field with no name. A line whose text before
// the first colon is not a field name starts a Field with no name.
func Split(block []byte) Header {
	var h Header
	afterLF := true // the previous line ended with LF (or there was none)
	for len(block) > 0 {
		end, lf := lineEnd(block, 0)
		if afterLF && isBlank(block[:end]) {
			h.Tail = block
			return h
		}
		startAfterCR := !afterLF
		afterLF = lf
		// The field runs until the next line that does not start with
		// white space, taking along the empty lines that only a bare CR
		// makes.
		for end < len(block) {
			c := block[end]
			crEmpty := !afterLF && (c == '\r' || c == '\n')
			if c != ' ' && c != '\t' && !crEmpty {
				break
			}
			end, afterLF = lineEnd(block, end)
		}
		name := fieldName(block[:end])
		h.Fields = append(h.Fields, Field{Name: name, Raw: block[:end], AfterCR: startAfterCR, key: strings.ToLower(name)})
		block = block[end:]
	}
	return h
}

// lineEnd returns the index just past the line starting at i, and whether
// the line ended with LF (CRLF or LF) rather than a bare CR or the end of b.
func lineEnd(b []byte, i int) (int, bool) {
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '\n':
			return j + 1, true
		case '\r':
			if j+1 < len(b) && b[j+1] == '\n' {
				return j + 2, true
			}
			return j + 1, false
		}
	}
	return len(b), false
}

func isBlank(l []byte) bool {
	return len(l) == 1 && l[0] == '\n' || len(l) == 2 && l[0] == '\r' && l[1] == '\n'
}

// fieldName is the name of the field that starts raw, "" if raw does not
// start with one: RFC 5322's ftext (printable ASCII but the colon), with
// the white space obs-optional allows before the colon.
func fieldName(raw []byte) string {
	i := bytes.IndexByte(raw, ':')
	if i <= 0 {
		return ""
	}
	name := bytes.TrimRight(raw[:i], " \t")
	if len(name) == 0 {
		return ""
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return ""
		}
	}
	return string(name)
}

// Has reports whether a field named name is in the header.
func (h Header) Has(name string) bool {
	for _, f := range h.Fields {
		if f.Is(name) {
			return true
		}
	}
	return false
}
