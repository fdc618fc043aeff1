package relay

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/bccguard/bccguard/internal/lineend"
)

// contentReader is how a message's content is read from the client, for
// DATA and BDAT alike: line ends and line lengths are decided here, once
// (go-smtp, patched, hands over every byte the client sent but the
// transparency dots), so the header reader, the policy, the spool and so
// the upstream all see the lines it returns. header comes first, then body.
type contentReader struct {
	ends *lineend.Reader
	br   *bufio.Reader
}

func newContentReader(r io.Reader, mode lineend.Mode, maxLine int) *contentReader {
	c := &contentReader{ends: lineend.NewReader(r, mode, maxLine), br: ingestReaders.Get().(*bufio.Reader)}
	c.br.Reset(c.ends)
	return c
}

// header reads the header block (see readHeaderBlock).
func (c *contentReader) header(max int) ([]byte, error) { return readHeaderBlock(c.br, max) }

// body streams the rest into w.
func (c *contentReader) body(w io.Writer) (int64, error) { return copyBody(w, c.br) }

// bare is how many bare CRs and LFs were made CRLF.
func (c *contentReader) bare() int { return c.ends.Bare() }

// release returns the buffer for the next message.
func (c *contentReader) release() {
	c.br.Reset(nil)
	ingestReaders.Put(c.br)
}

// readHeaderBlock reads the header block, up to and including the empty
// line that ends it (or the end of the message), bounded by max bytes.
//
// It does not stop early at a line that is not a header field, as some MTAs
// do: a malformed line (an mbox "From " line, "To :" in obsolete syntax)
// would then hide every To:/Cc: below it from the policy. Kept in the block,
// such a line reaches the policy, which fails closed on what it cannot parse.
// A line longer than br's buffer is read on (max bounds it).
func readHeaderBlock(br *bufio.Reader, max int) ([]byte, error) {
	var buf bytes.Buffer
	lineStart := 0
	for {
		chunk, err := br.ReadSlice('\n')
		if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
			return nil, readErr(err)
		}
		if buf.Len()+len(chunk) > max {
			return nil, errHeaderTooBig
		}
		buf.Write(chunk)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF || isBlankLine(buf.Bytes()[lineStart:]) {
			return buf.Bytes(), nil
		}
		lineStart = buf.Len()
	}
}

func isBlankLine(l []byte) bool {
	return len(l) == 1 && l[0] == '\n' || len(l) == 2 && l[0] == '\r' && l[1] == '\n'
}

// ingestReaders recycles the 32 KiB reader each DATA reads through:
// allocated per message, such buffers were most of the garbage a small
// message left behind.
var ingestReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }}

// copyBody streams the rest of the message into the spool, a buffer at a
// time straight out of br (no second buffer).
func copyBody(w io.Writer, br *bufio.Reader) (int64, error) {
	var n int64
	for {
		// Peek fills the buffer (or stops at the end or an error) and
		// returns it without copying.
		b, rerr := br.Peek(br.Size())
		if len(b) > 0 {
			if _, err := w.Write(b); err != nil {
				return n, fmt.Errorf("spool: %w", err)
			}
			n += int64(len(b))
			_, _ = br.Discard(len(b))
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil && rerr != bufio.ErrBufferFull {
			return n, readErr(rerr)
		}
	}
}
