package smtptest

import (
	"bytes"
	"hash"
)

// capture receives a message's bytes as they stream in, splits off the
// header block (up to and including the first empty line) and hashes the
// whole message and its body, keeping the bytes only when asked to.
type capture struct {
	keep   bool
	data   []byte // everything, when keep
	header []byte
	inBody bool
	size   int64
	bodyN  int64
	all    hash.Hash
	body   hash.Hash
}

var headerEnd = []byte("\r\n\r\n")

func (c *capture) Write(p []byte) (int, error) {
	n := len(p)
	c.size += int64(n)
	c.all.Write(p)
	if c.keep {
		c.data = append(c.data, p...)
	}
	if !c.inBody {
		from := max(len(c.header)-3, 0)
		c.header = append(c.header, p...)
		end := -1
		if bytes.HasPrefix(c.header, []byte("\r\n")) {
			end = 2 // no header fields at all
		} else if i := bytes.Index(c.header[from:], headerEnd); i >= 0 {
			end = from + i + len(headerEnd)
		}
		if end < 0 {
			if !c.keep && len(c.header) > maxHeaderKept {
				c.header = c.header[:maxHeaderKept]
			}
			return n, nil
		}
		rest := c.header[end:]
		c.header = c.header[:end:end]
		c.inBody = true
		p = rest
	}
	c.bodyN += int64(len(p))
	c.body.Write(p)
	return n, nil
}

func (c *capture) finish(m *Message) {
	m.Size, m.BodySize = c.size, c.bodyN
	copy(m.Sum[:], c.all.Sum(nil))
	copy(m.BodySum[:], c.body.Sum(nil))
	if c.keep {
		m.Data = c.data
		m.Header = c.data[:len(c.header)]
	} else {
		m.Header = bytes.Clone(c.header)
	}
}
