package harness

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"strings"
)

// CRLF turns a message written with "\n" in Go source into one with CRLF
// line endings, as SMTP carries it.
func CRLF(s string) []byte {
	return []byte(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n"))
}

// SplitMessage splits raw at the end of its header block: header includes
// the empty line; body is the rest. With no empty line all of raw is header.
func SplitMessage(raw []byte) (header, body []byte) {
	if bytes.HasPrefix(raw, []byte("\r\n")) {
		return raw[:2], raw[2:]
	}
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		return raw[:i+4], raw[i+4:]
	}
	return raw, nil
}

// Field is one header field, as its raw bytes (name, colon, value and any
// continuation lines, with their CRLFs).
type Field struct {
	Name string
	Raw  []byte
}

// Fields splits a header block (as from SplitMessage) into its fields, in
// order; the empty line that ends the block is not a field.
func Fields(header []byte) []Field {
	var out []Field
	rest := header
	for len(rest) > 0 {
		if bytes.HasPrefix(rest, []byte("\r\n")) {
			break
		}
		end := 0
		for {
			i := bytes.Index(rest[end:], []byte("\r\n"))
			if i < 0 {
				end = len(rest)
				break
			}
			end += i + 2
			if end >= len(rest) || (rest[end] != ' ' && rest[end] != '\t') {
				break
			}
		}
		raw := rest[:end]
		name, _, _ := bytes.Cut(raw, []byte(":"))
		out = append(out, Field{Name: string(bytes.TrimSpace(name)), Raw: raw})
		rest = rest[end:]
	}
	return out
}

// HasField reports whether the header block has a field called name
// (case-insensitive).
func HasField(header []byte, name string) bool {
	for _, f := range Fields(header) {
		if strings.EqualFold(f.Name, name) {
			return true
		}
	}
	return false
}

// Body is a deterministic message body of exactly Size bytes (at least 2):
// CRLF-ended lines of printable text, some starting with "." to exercise
// dot-stuffing, the last one padded to fit. Reading it twice gives the same
// bytes, so a test can hash what it sent without keeping it.
type Body struct {
	Size int64
	off  int64
	line []byte
	pos  int
	n    int
}

// NewBody returns a body reader of size bytes.
func NewBody(size int64) *Body { return &Body{Size: max(size, 2)} }

func (b *Body) next() {
	b.n++
	b.line = fmt.Appendf(b.line[:0], "line %08d the quick brown fox jumps over the lazy dog 0123456789\r\n", b.n)
	if b.n%97 == 0 {
		b.line = append([]byte("."), b.line...)
	}
	rem := b.Size - b.off
	if left := rem - int64(len(b.line)); left < 0 || left == 1 {
		// The last line: pad (or cut) it to end exactly at Size with CRLF.
		b.line = append(bytes.Repeat([]byte("x"), int(rem-2)), '\r', '\n')
	}
	b.pos = 0
}

func (b *Body) Read(p []byte) (int, error) {
	if b.off >= b.Size {
		return 0, io.EOF
	}
	total := 0
	for len(p) > 0 && b.off < b.Size {
		if b.pos >= len(b.line) {
			b.next()
		}
		c := copy(p, b.line[b.pos:])
		p = p[c:]
		b.pos += c
		b.off += int64(c)
		total += c
	}
	return total, nil
}

// BodySum is the SHA-256 of NewBody(size)'s bytes.
func BodySum(size int64) [32]byte {
	h := sha256.New()
	io.Copy(h, NewBody(size))
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}
