package content

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Limits bound the work of scanning one message. Past a bound the part
// being read is reported unscannable with the bound's reason; the rest of
// the message is still scanned where the bound allows it.
type Limits struct {
	// MaxInflated is the most bytes decompression (ZIP, gzip, OOXML,
	// OpenDocument, PDF streams) may produce for one message.
	MaxInflated int64
	// MaxEntries is the most archive entries read for one message.
	MaxEntries int
	// MaxDepth is how deeply archives and attached messages may nest.
	MaxDepth int
	// MaxRatio is the largest compression ratio accepted for an entry
	// or stream that inflates to more than 1 MiB.
	MaxRatio int
	// Time bounds the whole scan of one message.
	Time time.Duration
	// MaxSpill bounds the temporary file a ZIP-based part is copied to
	// (it needs random access); a larger part is unscannable.
	MaxSpill int64
}

// DefaultLimits are the bounds used where the configuration sets none.
func DefaultLimits() Limits {
	return Limits{
		MaxInflated: 512 << 20,
		MaxEntries:  10_000,
		MaxDepth:    8,
		MaxRatio:    200,
		Time:        30 * time.Second,
		MaxSpill:    256 << 20,
	}
}

// WithDefaults fills zero fields from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.MaxInflated <= 0 {
		l.MaxInflated = d.MaxInflated
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = d.MaxRatio
	}
	if l.Time <= 0 {
		l.Time = d.Time
	}
	if l.MaxSpill <= 0 {
		l.MaxSpill = d.MaxSpill
	}
	return l
}

// ratioSlack is how much an entry may inflate before the ratio bound
// applies: small files of repeated bytes compress far beyond any ratio.
const ratioSlack = 1 << 20

// boundError is a bound that was reached, or a part that could not be
// read; it carries the Unscannable reason.
type boundError struct {
	reason string
	detail string
}

func (e *boundError) Error() string { return e.reason + ": " + e.detail }

func bound(reason, format string, args ...any) error {
	return &boundError{reason: reason, detail: fmt.Sprintf(format, args...)}
}

// reasonOf maps an error from a format reader to its Unscannable reason
// and detail; anything not a bound is a corrupt part.
func reasonOf(err error) (string, string) {
	var b *boundError
	if errors.As(err, &b) {
		return b.reason, b.detail
	}
	return ReasonCorrupt, safeDetail(err)
}

// safeDetail keeps an error's text short and free of quoted input: the
// standard library's format errors name offsets and kinds, not content,
// but a bound on length keeps a surprise out of pages and logs.
func safeDetail(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120]
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\'' || s[i] == '@' {
			return s[:i]
		}
	}
	return s
}

// budget is what is left of one message's bounds.
type budget struct {
	lim      Limits
	inflated int64
	entries  int
	deadline time.Time
	now      func() time.Time
	calls    int
	late     bool
}

func newBudget(l Limits, now func() time.Time) *budget {
	if now == nil {
		now = time.Now
	}
	return &budget{lim: l, deadline: now().Add(l.Time), now: now}
}

// checkTime reports the time bound. It reads the clock on every 64th call
// only: it is called per token, and the clock was a tenth of the work.
func (b *budget) checkTime() error {
	if b.calls++; b.calls%64 != 1 && !b.late {
		return nil
	}
	if b.late || b.now().After(b.deadline) {
		b.late = true
		return bound(ReasonTime, "the scan took longer than %s", b.lim.Time)
	}
	return nil
}

func (b *budget) entry() error {
	b.entries++
	if b.entries > b.lim.MaxEntries {
		return bound(ReasonEntries, "more than %d archive entries", b.lim.MaxEntries)
	}
	return nil
}

// inflater counts what a decompressor produces against the message's
// budget and, with compressed counting the input consumed, the ratio.
type inflater struct {
	r          io.Reader
	b          *budget
	compressed func() int64
	out        int64
	what       string
}

func (f *inflater) Read(p []byte) (int, error) {
	if err := f.b.checkTime(); err != nil {
		return 0, err
	}
	n, err := f.r.Read(p)
	f.out += int64(n)
	f.b.inflated += int64(n)
	if f.b.inflated > f.b.lim.MaxInflated {
		return n, bound(ReasonSize, "more than %d MiB inflated in one message", f.b.lim.MaxInflated>>20)
	}
	if f.compressed != nil && f.out > ratioSlack {
		if c := f.compressed(); c > 0 && f.out/c > int64(f.b.lim.MaxRatio) {
			return n, bound(ReasonRatio, "%s inflates more than %d:1", f.what, f.b.lim.MaxRatio)
		}
	}
	return n, err
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ReadByte lets compress/flate read exactly what it needs (it would wrap
// a reader without it in a bufio.Reader and read ahead).
func (c *countingReader) ReadByte() (byte, error) {
	if br, ok := c.r.(io.ByteReader); ok {
		b, err := br.ReadByte()
		if err == nil {
			c.n++
		}
		return b, err
	}
	var one [1]byte
	_, err := io.ReadFull(c, one[:])
	return one[0], err
}
