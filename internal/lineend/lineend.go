// Package lineend decides, once, what happens to the line ends of message
// content as it comes in: in SMTP a line ends with CRLF, and a bare CR or a
// bare LF is where readers disagree (one ends the line there, another does
// not: SMTP smuggling, a Bcc: hidden behind a CR in a Subject:). Everything
// downstream (the header reader, the policy, the spool and so the upstream)
// sees what this reader returns, so they all see the same lines.
//
// It also bounds the length of a line. Hand-written: it is one pass over
// the bytes, between go-smtp's DATA reader and the spool, and no library
// offers it.
package lineend

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Mode is what to do with a bare CR or LF.
type Mode string

const (
	// Reject fails the read at the first bare CR or LF (the relay refuses
	// the message at its end: 550 5.6.0). The default, as Postfix's
	// smtpd_forbid_bare_newline = reject.
	Reject Mode = "reject"
	// Normalize makes each bare CR and each bare LF a CRLF: a line ends
	// there for every reader alike. Nothing else changes.
	Normalize Mode = "normalize"
)

// ErrBareCR and ErrBareLF are the errors of a Reject reader.
var (
	ErrBareCR = errors.New("bare CR in message content")
	ErrBareLF = errors.New("bare LF in message content")
)

// LineTooLongError is returned when a line is longer than the bound.
type LineTooLongError struct{ Max int }

func (e *LineTooLongError) Error() string {
	return fmt.Sprintf("a line is longer than %d octets", e.Max)
}

// Reader applies a Mode, and a line length bound, to message content. The
// line length is counted without the CRLF that ends the line. Content that
// does not end in a line end (possible with BDAT) gets a CRLF at its end in
// either mode: the upstream's DATA could not carry it otherwise.
type Reader struct {
	src     io.Reader
	mode    Mode
	maxLine int // 0: no bound

	line  int  // octets in the current line so far
	cr    bool // the last byte seen was a CR whose LF is still to come
	bare  int  // bare CRs and LFs seen (made CRLF in Normalize mode)
	err   error
	buf   []byte // Normalize: what was read
	obuf  []byte // Normalize: what it became
	out   []byte // the part of obuf not yet returned
	ended bool   // src reported an error (io.EOF included)
	// mid is whether the content so far ends inside a line; tail is the
	// CRLF still to return after it at the end.
	mid  bool
	tail []byte
}

// NewReader returns a Reader over src. maxLine 0 leaves lines unbounded.
func NewReader(src io.Reader, mode Mode, maxLine int) *Reader {
	r := &Reader{src: src, mode: mode, maxLine: maxLine}
	if mode == Normalize {
		r.buf = make([]byte, 16<<10)
	}
	return r
}

// Bare is the number of bare CRs and LFs seen so far.
func (r *Reader) Bare() int { return r.bare }

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if r.mode == Normalize {
		return r.readNormalize(p)
	}
	if r.err != nil {
		return 0, r.err
	}
	if r.ended {
		n := copy(p, r.tail)
		r.tail = r.tail[n:]
		if len(r.tail) == 0 {
			return n, io.EOF
		}
		return n, nil
	}
	n, err := r.src.Read(p)
	if cerr := r.check(p[:n]); cerr != nil {
		r.err = cerr
		return 0, cerr
	}
	if n > 0 {
		r.mid = p[n-1] != '\n'
	}
	if err == io.EOF && r.cr {
		// The content ended on a CR: no LF can follow it.
		r.bare++
		r.err = ErrBareCR
		return 0, r.err
	}
	if err == io.EOF && r.mid {
		// The last line has no line end (BDAT allows that; DATA to the
		// upstream cannot carry it): it gets its CRLF here, so that
		// everything downstream sees what will go out.
		r.ended, r.tail = true, []byte("\r\n")
		return n, nil
	}
	return n, err
}

// check looks at b in Reject mode: it fails at a bare CR or LF and at a
// line over the bound. The bytes are returned as they are.
func (r *Reader) check(b []byte) error {
	for i := 0; i < len(b); {
		if r.cr {
			r.cr = false
			if b[i] != '\n' {
				r.bare++
				return ErrBareCR
			}
			r.line = 0
			i++
			continue
		}
		j, err := r.run(b[i:])
		if err != nil {
			return err
		}
		i += j
		if i == len(b) {
			break
		}
		if b[i] == '\n' {
			r.bare++
			return ErrBareLF
		}
		r.cr = true
		i++
	}
	return nil
}

// run is the length of the text at the start of b, up to a CR or LF, and
// counts it into the current line (failing once that is over the bound).
func (r *Reader) run(b []byte) (int, error) {
	j := bytes.IndexAny(b, "\r\n")
	if j < 0 {
		j = len(b)
	}
	r.line += j
	if r.maxLine > 0 && r.line > r.maxLine {
		return j, &LineTooLongError{Max: r.maxLine}
	}
	return j, nil
}

func (r *Reader) readNormalize(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.ended {
			return 0, io.EOF
		}
		n, err := r.src.Read(r.buf)
		r.obuf = r.obuf[:0]
		cerr := r.normalize(r.buf[:n])
		r.out = r.obuf
		if cerr != nil {
			r.err = cerr
			return 0, cerr
		}
		if len(r.out) > 0 {
			r.mid = r.out[len(r.out)-1] != '\n'
		}
		if err != nil {
			switch {
			case r.cr:
				// The content ended on a CR: a bare one.
				r.cr = false
				r.bare++
				r.out = append(r.out, '\r', '\n')
				r.obuf = r.out
			case r.mid && err == io.EOF:
				// No line end after the last line: one is added, as
				// in Reject mode.
				r.out = append(r.out, '\r', '\n')
				r.obuf = r.out
			}
			r.ended = true
			if err != io.EOF {
				r.err = err
				if len(r.out) == 0 {
					return 0, err
				}
			}
		}
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

// normalize appends b to r.obuf with every bare CR and LF made CRLF.
func (r *Reader) normalize(b []byte) error {
	for i := 0; i < len(b); {
		if r.cr {
			r.cr = false
			r.obuf = append(r.obuf, '\r', '\n')
			r.line = 0
			if b[i] == '\n' {
				i++
			} else {
				r.bare++
			}
			continue
		}
		j, err := r.run(b[i:])
		if err != nil {
			return err
		}
		r.obuf = append(r.obuf, b[i:i+j]...)
		i += j
		if i == len(b) {
			break
		}
		if b[i] == '\n' {
			r.bare++
			r.obuf = append(r.obuf, '\r', '\n')
			r.line = 0
		} else {
			r.cr = true
		}
		i++
	}
	return nil
}

// Normalized returns b with every bare CR and LF made CRLF (Normalize
// mode, without a line bound), and how many there were: what a listener
// with bare_newlines: normalize would pass on.
func Normalized(b []byte) ([]byte, int) {
	r := NewReader(bytes.NewReader(b), Normalize, 0)
	out, _ := io.ReadAll(r)
	return out, r.Bare()
}
