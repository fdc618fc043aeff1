package content

import (
	"bytes"
	"io"
)

// chunkSize is how much text is scanned at a time; cutTail is how far
// back from a chunk's end a line break is looked for, so that no value
// is cut in two (phone and card numbers hold spaces, so a space is only
// the second choice).
const (
	chunkSize = 64 << 10
	cutTail   = 4 << 10
)

// text scans a complete piece of text and returns how many findings it
// held (repeats included): what a table cell is scored by.
func (s *Scan) text(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	n := findEmails(b, s.t.email)
	n += s.nums.find(b, s.t)
	s.watch.write(b)
	s.watch.brk()
	return n
}

// readText scans r as text, a chunk at a time.
func (s *Scan) readText(r io.Reader) error {
	buf := s.buf[:0]
	for {
		if err := s.budget.checkTime(); err != nil {
			return err
		}
		n, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			s.text(buf)
			return nil
		}
		if err != nil {
			s.text(buf)
			return err
		}
		cut := cutPoint(buf)
		s.text(buf[:cut])
		rest := copy(buf, buf[cut:])
		buf = buf[:rest]
	}
}

// cutPoint is where a full chunk is cut: after the last line break near
// its end, else after the last space or tab, else at the end.
func cutPoint(b []byte) int {
	tail := b[max(0, len(b)-cutTail):]
	off := len(b) - len(tail)
	if i := bytes.LastIndexByte(tail, '\n'); i >= 0 {
		return off + i + 1
	}
	if i := bytes.LastIndexAny(tail, " \t"); i >= 0 {
		return off + i + 1
	}
	return len(b)
}
