package content

import (
	"bytes"
	"io"
)

// maxToken bounds one token of a structured format: a CSV record, a JSON
// value between tokens, an XML text node or tag. The standard library's
// readers hold a token whole, so without it a single 200 MiB cell would
// be held in memory; past it the part is unscannable, never half-read.
const maxToken = 1 << 20

// stepGuard fails a read once more than maxToken bytes were read since
// the reader's user last called step (after each token it took).
type stepGuard struct {
	r     io.Reader
	since int
	what  string
}

func (g *stepGuard) Read(p []byte) (int, error) {
	if g.since > maxToken {
		return 0, bound(ReasonSize, "a %s over %d KiB", g.what, maxToken>>10)
	}
	if len(p) > 16<<10 {
		p = p[:16<<10] // read in small steps, so a token is caught near the bound
	}
	n, err := g.r.Read(p)
	g.since += n
	return n, err
}

func (g *stepGuard) step() { g.since = 0 }

// markupGuard fails a read once a run of more than maxToken bytes holds
// no "<": an XML or HTML text node (or tag) that large is not a
// document's, and the tokenizers would hold it whole.
type markupGuard struct {
	r   io.Reader
	run int
}

func (g *markupGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	b := p[:n]
	if i := bytes.LastIndexByte(b, '<'); i >= 0 {
		g.run = n - i - 1
	} else {
		g.run += n
	}
	if g.run > maxToken {
		return n, bound(ReasonSize, "an XML or HTML text node over %d KiB", maxToken>>10)
	}
	return n, err
}
