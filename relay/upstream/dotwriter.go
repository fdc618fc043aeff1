package upstream

import (
	"bytes"
	"io"
)

// bufWriter is what the dot writer writes to: *bufio.Writer on a Conn,
// *bytes.Buffer in tests. WriteString avoids converting the short
// insertions to []byte (and allocating).
type bufWriter interface {
	io.Writer
	io.StringWriter
}

// States of the dot writer, as in net/textproto's dotWriter.
const (
	dotBegin     = iota // nothing written yet
	dotBeginLine        // just after a line end
	dotCR               // just after a "\r" that may start a line end
	dotData             // inside a line
)

// dotWriter writes a DATA body: it doubles a "." that starts a line, makes
// a bare "\n" into "\r\n", and Close ends the data with ".\r\n" (after a
// "\r\n" if the body did not end with a line end). Its output is the same
// as net/textproto's DotWriter's for any input split into any writes, but
// that one handles the body a byte at a time (a state switch and a
// WriteByte for each); this one looks only at the line ends, with
// bytes.IndexByte, and passes the text between them on in one Write, so a
// body already in CRLF lines without leading dots goes through in one call
// per Write.
//
// The state after a run of text depends only on its trailing "\r"s: a "\r"
// read inside a line makes the next byte a candidate line end, and any
// byte read in that state, even another "\r", returns to the inside of a
// line. So a line end is "\r\n" already exactly when the "\n" follows an odd
// number of "\r"s (counted from the start of the line or of the Write,
// where the state is known).
type dotWriter struct {
	w     bufWriter
	state int
	err   error // the first error from w, kept: the body's fate is sealed
}

func (d *dotWriter) reset(w bufWriter) {
	*d = dotWriter{w: w}
}

// Write implements io.Writer; it reports len(b) unless w failed.
func (d *dotWriter) Write(b []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	start := 0 // b[start:i] is the text still to pass on unchanged
	i := 0
	for i < len(b) {
		switch d.state {
		case dotBegin, dotBeginLine:
			if b[i] == '.' {
				d.write(b[start:i])
				d.writeString(".")
				start = i // the original "." follows
			}
			d.state = dotData
		case dotCR:
			d.state = dotData
			if b[i] == '\n' {
				d.state = dotBeginLine
			}
			i++
		default: // dotData
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				if oddTrailingCR(b[i:]) {
					d.state = dotCR
				}
				i = len(b)
				continue
			}
			j += i
			if !oddTrailingCR(b[i:j]) {
				// A bare "\n": pass the line on without it, then "\r\n".
				d.write(b[start:j])
				d.writeString("\r\n")
				start = j + 1
			}
			i = j + 1
			d.state = dotBeginLine
		}
	}
	d.write(b[start:])
	if d.err != nil {
		return 0, d.err
	}
	return len(b), nil
}

// oddTrailingCR reports whether b, read from inside a line, ends in the
// state just after a line-end "\r".
func oddTrailingCR(b []byte) bool {
	n := 0
	for n < len(b) && b[len(b)-1-n] == '\r' {
		n++
	}
	return n%2 == 1
}

// Close writes the end of the data; the caller flushes.
func (d *dotWriter) Close() error {
	switch d.state {
	case dotBeginLine:
		d.writeString(".\r\n")
	case dotCR:
		d.writeString("\n.\r\n")
	default:
		// Also for an empty body, as textproto does: "\r\n.\r\n".
		d.writeString("\r\n.\r\n")
	}
	return d.err
}

func (d *dotWriter) write(b []byte) {
	if d.err == nil && len(b) > 0 {
		_, d.err = d.w.Write(b)
	}
}

func (d *dotWriter) writeString(s string) {
	if d.err == nil {
		_, d.err = d.w.WriteString(s)
	}
}
