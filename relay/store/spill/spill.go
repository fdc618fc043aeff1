// Package spill holds a message body while a store backend spools it: in
// memory while it is small, so it can go into the backend's commit with
// others (one fsync for many sessions), and streamed to a file once it
// grows, so memory never grows with the message. Both backends use it; what
// the file is (a named spool file, an unlinked temporary) is theirs.
package spill

import (
	"bufio"
	"os"
)

// FileBufSize is the write buffer of a spilled body: a fixed amount of
// memory per session, whatever the message size.
const FileBufSize = 64 << 10

// Body is one message body being spooled. It is used by one session at a
// time.
type Body struct {
	limit  int
	create func() (*os.File, error)
	buf    []byte
	f      *os.File
	w      *bufio.Writer
	size   int64
}

// New returns an empty body that stays in memory below limit bytes (a
// negative limit spills at once) and then moves to the file create opens.
func New(limit int, create func() (*os.File, error)) *Body {
	return &Body{limit: limit, create: create}
}

// Write appends p. Its errors come from create or from writing the file,
// unwrapped, for the backend to classify (a full disk, say).
func (b *Body) Write(p []byte) (int, error) {
	if b.f == nil && int64(len(b.buf))+int64(len(p)) < int64(b.limit) {
		b.buf = appendCapped(b.buf, p, b.limit)
		b.size += int64(len(p))
		return len(p), nil
	}
	if b.f == nil {
		f, err := b.create()
		if err != nil {
			return 0, err
		}
		b.f, b.w = f, bufio.NewWriterSize(f, FileBufSize)
		if _, err := b.w.Write(b.buf); err != nil {
			return 0, err
		}
		b.buf = nil
	}
	n, err := b.w.Write(p)
	b.size += int64(n)
	return n, err
}

// Spilled reports whether the body moved to a file.
func (b *Body) Spilled() bool { return b.f != nil }

// Size is the number of bytes written.
func (b *Body) Size() int64 { return b.size }

// Inline is the body while it is held in memory (nil once it spilled or
// was dropped).
func (b *Body) Inline() []byte { return b.buf }

// File flushes what is buffered and returns the open file; nil while the
// body is in memory.
func (b *Body) File() (*os.File, error) {
	if b.f == nil {
		return nil, nil
	}
	return b.f, b.w.Flush()
}

// Drop releases the memory and closes the file, if any, returning it so
// the caller can remove it; the body must not be written afterwards.
func (b *Body) Drop() *os.File {
	f := b.f
	if f != nil {
		f.Close()
	}
	b.buf, b.f, b.w = nil, nil, nil
	return f
}

// appendCapped appends like append but never grows buf's capacity beyond
// limit, so an inline body costs at most the limit.
func appendCapped(buf, p []byte, limit int) []byte {
	need := len(buf) + len(p)
	if need > cap(buf) {
		c := max(2*cap(buf), need, 4<<10)
		c = min(c, max(limit, need))
		nb := make([]byte, len(buf), c)
		copy(nb, buf)
		buf = nb
	}
	return append(buf, p...)
}
