package smtp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

type EnhancedCode [3]int

// SMTPError specifies the error code, enhanced error code (if any) and
// message returned by the server.
type SMTPError struct {
	Code         int
	EnhancedCode EnhancedCode
	Message      string
}

// NoEnhancedCode is used to indicate that enhanced error code should not be
// included in response.
//
// Note that RFC 2034 requires an enhanced code to be included in all 2xx, 4xx
// and 5xx responses. This constant is exported for use by extensions, you
// should probably use EnhancedCodeNotSet instead.
var NoEnhancedCode = EnhancedCode{-1, -1, -1}

// EnhancedCodeNotSet is a nil value of EnhancedCode field in SMTPError, used
// to indicate that backend failed to provide enhanced status code. X.0.0 will
// be used (X is derived from error code).
var EnhancedCodeNotSet = EnhancedCode{0, 0, 0}

func (err *SMTPError) Error() string {
	s := fmt.Sprintf("SMTP error %03d", err.Code)
	if err.Message != "" {
		s += ": " + err.Message
	}
	return s
}

func (err *SMTPError) Temporary() bool {
	return err.Code/100 == 4
}

var ErrDataTooLarge = &SMTPError{
	Code:         552,
	EnhancedCode: EnhancedCode{5, 3, 4},
	Message:      "Maximum message size exceeded",
}

type dataReader struct {
	r     *bufio.Reader
	state int

	// pending holds bytes that were held back at the start of a line (a
	// "." or ".\r") and turned out to be content; they are returned
	// before anything else is read. (bccguard patch, see PATCHES.md.)
	pending []byte
	pendBuf [2]byte

	limited bool
	n       int64 // Maximum bytes remaining
}

func newDataReader(c *Conn) *dataReader {
	dr := &dataReader{
		r: c.text.R,
	}

	if c.server.MaxMessageBytes > 0 {
		dr.limited = true
		dr.n = int64(c.server.MaxMessageBytes)
	}

	return dr
}

func (r *dataReader) Read(b []byte) (n int, err error) {
	if r.limited {
		if r.n <= 0 {
			return 0, ErrDataTooLarge
		}
		if int64(len(b)) > r.n {
			b = b[0:r.n]
		}
	}

	// Code below is taken from net/textproto with only one modification to
	// not rewrite CRLF -> LF.
	//
	// bccguard patch (see PATCHES.md): the reader is lossless. Apart from
	// the transparency dot of RFC 5321 4.5.2 (a "." that starts a line and
	// is followed by more of that line) and the end-of-data line, every
	// byte is returned, so that the backend sees each bare CR and bare LF
	// the client sent and can refuse or normalise it:
	//   - "." then a bare LF at the start of a line keeps its dot (go-smtp
	//     dropped it: "\r\n.\n" came out as "\r\n\n");
	//   - "." then a bare CR keeps both (go-smtp dropped both: "\r\n.\rX"
	//     came out as "\r\nX", the bare CR gone without a trace);
	//   - a CR after a CR may still begin a CRLF, so "\r\r\n" ends a line
	//     (go-smtp lost track of the line there, and a "." line after it
	//     did not end the data).

	// Run data through a simple state machine to
	// elide leading dots and detect End-of-Data (<CR><LF>.<CR><LF>) line.
	const (
		stateBeginLine = iota // beginning of line; initial state; must be zero
		stateDot              // read . at beginning of line
		stateDotCR            // read .\r at beginning of line
		stateCR               // read \r (possibly at end of line)
		stateData             // reading data in middle of line
		stateEOF              // reached .\r\n end marker line
	)
	for n < len(b) && r.state != stateEOF {
		if len(r.pending) > 0 {
			b[n] = r.pending[0]
			r.pending = r.pending[1:]
			n++
			continue
		}
		if r.state == stateData {
			// bccguard patch: in the middle of a line only a CR can change
			// the state, so the run of bytes before the next CR is copied
			// from the buffer at once instead of byte by byte (the byte
			// loop cost a 10 MiB message more CPU than everything else
			// bccguard does with it but the content scan).
			if k := r.copyRun(b[n:]); k > 0 {
				n += k
				continue
			}
		}
		var c byte
		c, err = r.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			break
		}
		switch r.state {
		case stateBeginLine:
			if c == '.' {
				r.state = stateDot
				continue
			}
			if c == '\r' {
				r.state = stateCR
				break
			}
			r.state = stateData
		case stateDot:
			if c == '\r' {
				r.state = stateDotCR
				continue
			}
			if c == '\n' {
				// A bare LF right after the dot: no dot-stuffing to undo.
				r.pending = append(r.pendBuf[:0], c)
				c = '.'
			}
			r.state = stateData
		case stateDotCR:
			if c == '\n' {
				r.state = stateEOF
				continue
			}
			// ".", a bare CR, then c: all of it is content.
			r.pending = append(r.pendBuf[:0], '\r', c)
			r.state = stateData
			if c == '\r' {
				r.state = stateCR
			}
			c = '.'
		case stateCR:
			if c == '\n' {
				r.state = stateBeginLine
				break
			}
			if c != '\r' {
				r.state = stateData
			}
		case stateData:
			if c == '\r' {
				r.state = stateCR
			}
		}
		b[n] = c
		n++
	}
	if err == nil && r.state == stateEOF {
		err = io.EOF
	}

	if r.limited {
		r.n -= int64(n)
	}
	return
}

// copyRun copies into b the buffered bytes up to the next CR (exclusive) and
// returns how many it copied; 0 when nothing is buffered or a CR comes first,
// in which case the byte loop goes on. (bccguard patch, see PATCHES.md.)
func (r *dataReader) copyRun(b []byte) int {
	k := r.r.Buffered()
	if k > len(b) {
		k = len(b)
	}
	buf, _ := r.r.Peek(k)
	if i := bytes.IndexByte(buf, '\r'); i >= 0 {
		buf = buf[:i]
	}
	k = copy(b, buf)
	r.r.Discard(k)
	return k
}
