package relay

import (
	"bytes"
	"strings"
)

// rawField is one header field exactly as received: its name (as written)
// and every byte of it, continuation lines and line ends included.
type rawField struct {
	name string
	raw  []byte
}

// is reports whether the field's name is name, ignoring case.
func (f rawField) is(name string) bool { return strings.EqualFold(f.name, name) }

// value is the field body unfolded (line ends removed), as go-message's
// parsers expect it.
func (f rawField) value() string {
	v := f.raw[len(f.name):]
	v = bytes.TrimLeft(v, " \t")
	v = bytes.TrimPrefix(v, []byte(":"))
	s := strings.NewReplacer("\r\n", "", "\n", "", "\r", "").Replace(string(v))
	return strings.TrimSpace(s)
}

// splitHeader cuts a header block into fields, keeping every byte.
//
// go-message's textproto.ReadHeader is not used here because it rewrites
// line ends to CRLF and drops malformed lines; bccguard promises that a copy
// differs from the original only by its documented edits, so the fields it
// does not edit must be written back byte for byte. The separator (the empty
// line, if any) is returned as tail.
func splitHeader(block []byte) (fields []rawField, tail []byte) {
	for len(block) > 0 {
		end := lineEnd(block, 0)
		line := block[:end]
		if isBlankLine(line) {
			return fields, block
		}
		// A field runs until the next line that does not start with
		// white space (a continuation line).
		for end < len(block) && (block[end] == ' ' || block[end] == '\t') {
			end = lineEnd(block, end)
		}
		name := line
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			name = line[:i]
		}
		fields = append(fields, rawField{name: strings.TrimRight(string(name), " \t"), raw: block[:end]})
		block = block[end:]
	}
	return fields, nil
}

// lineEnd returns the index just past the line starting at i.
func lineEnd(b []byte, i int) int {
	if j := bytes.IndexByte(b[i:], '\n'); j >= 0 {
		return i + j + 1
	}
	return len(b)
}
