package content

import (
	"bytes"
	"io"
)

// recorder keeps the last bytes the MIME parser read, so that when the
// parser gives up, the text it had buffered but not yet handed out can be
// scanned raw instead of lost; and it notes where the top-level header
// ends, so that the fallback never counts the header's own addresses.
type recorder struct {
	r         io.Reader
	window    []byte // the last bytes read, at most 2*windowSize
	pos       int64  // bytes read so far
	headerEnd int64  // offset just after the blank line ending the header; -1 until seen
	last2     [2]byte
}

// windowSize exceeds what go-message buffers ahead (4 KiB per bufio.Reader
// per nesting level).
const windowSize = 128 << 10

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if r.headerEnd < 0 {
		r.findHeaderEnd(p[:n])
	}
	if len(r.window)+n > 2*windowSize {
		keep := max(0, windowSize-n)
		r.window = append(r.window[:0], r.window[len(r.window)-keep:]...)
	}
	add := p[max(0, n-windowSize):n]
	if need := len(r.window) + len(add); need > cap(r.window) {
		// Grown by hand so that it never exceeds 2*windowSize and can be
		// recycled (append would round it up).
		w := make([]byte, len(r.window), min(2*windowSize, max(2*cap(r.window), need)))
		copy(w, r.window)
		r.window = w
	}
	r.window = append(r.window, add...)
	r.pos += int64(n)
	return n, err
}

func (r *recorder) findHeaderEnd(p []byte) {
	for i, c := range p {
		if c == '\n' && (r.last2[1] == '\n' || r.last2[1] == '\r' && r.last2[0] == '\n' ||
			r.pos+int64(i) == 0 || r.pos+int64(i) == 1 && r.last2[1] == '\r') {
			r.headerEnd = r.pos + int64(i) + 1
			return
		}
		r.last2[0], r.last2[1] = r.last2[1], c
	}
}

// rest is what the raw fallback scans: the recorded bytes after the
// top-level header, then the rest of the input.
func (r *recorder) rest() io.Reader {
	// Still in the header: read on (through Read, which keeps looking for
	// its end where it left off) until the blank line.
	buf := make([]byte, 32<<10)
	for r.headerEnd < 0 {
		if _, err := r.Read(buf); err != nil && r.headerEnd < 0 {
			return bytes.NewReader(nil)
		}
	}
	w := r.window
	if skip := r.headerEnd - (r.pos - int64(len(w))); skip > 0 {
		w = w[min(skip, int64(len(w))):]
	}
	return io.MultiReader(bytes.NewReader(w), r.r)
}

// lineBreaker inserts a line break into any line longer than maxScanLine,
// because the MIME parser holds a line whole while it looks for boundaries.
type lineBreaker struct {
	r   io.Reader
	run int // bytes since the last '\n'
	cr  bool
}

func (l *lineBreaker) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if l.cr {
		if len(p) < 2 {
			p[0] = '\n' // cannot happen with bufio; keep the line break whole anyway
			l.cr, l.run = false, 0
			return 1, nil
		}
		p[0], p[1] = '\r', '\n'
		l.cr, l.run = false, 0
		return 2, nil
	}
	room := maxScanLine - l.run
	n, err := l.r.Read(p[:min(len(p), room)])
	if i := bytes.LastIndexByte(p[:n], '\n'); i >= 0 {
		l.run = n - i - 1
	} else {
		l.run += n
	}
	if l.run >= maxScanLine {
		l.cr = true
	}
	return n, err
}
