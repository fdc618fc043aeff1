package relay

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/bccguard/bccguard/relay/store"
)

// sourceBodyMax is the largest body a msgSource keeps in memory. An
// exploded mailing is small and sent once per recipient, so reading it
// from the store once instead of once per copy is most of the cost of a
// copy; a large body is streamed from the store for each copy instead, so
// memory stays flat whatever the message size.
const sourceBodyMax = 256 << 10

// msgSource is a stored message as delivery renders its copies from it:
// the header block cut into fields once, the body in memory when it is
// small, and the To:/Cc: display names parsed once, on first use.
type msgSource struct {
	st     store.Store
	msg    store.Message
	fields []rawField
	tail   []byte // the empty line that ends the header block, if any
	body   []byte // nil: streamed from st
	size   int    // bytes held (for the cache's budget)

	namesOnce sync.Once
	names     *visibleNames
}

// loadSource reads a stored message's header (and its body, if small).
func loadSource(ctx context.Context, st store.Store, msg store.Message) (*msgSource, error) {
	rc, err := st.Open(ctx, msg.ID)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	src := &msgSource{st: st, msg: msg}
	if err := src.readHeader(rc); err != nil {
		return nil, err
	}
	if bodyLen := msg.Size - msg.HeaderLen; msg.Size > 0 && bodyLen <= sourceBodyMax {
		// Size is what Commit measured; reading one byte more proves it.
		b, err := io.ReadAll(io.LimitReader(rc, bodyLen+1))
		if err != nil {
			return nil, fmt.Errorf("read stored body: %w", err)
		}
		if int64(len(b)) != bodyLen {
			return nil, fmt.Errorf("stored message %s is %d bytes, its record says %d", msg.ID, msg.HeaderLen+int64(len(b)), msg.Size)
		}
		src.body = b
		src.size += len(b)
	}
	return src, nil
}

func (s *msgSource) readHeader(r io.Reader) error {
	head := make([]byte, s.msg.HeaderLen)
	if _, err := io.ReadFull(r, head); err != nil {
		return fmt.Errorf("read stored header: %w", err)
	}
	s.fields, s.tail = splitHeader(head)
	s.size = len(head)
	return nil
}

// openBody returns the body (what follows the header block).
func (s *msgSource) openBody(ctx context.Context) (io.ReadCloser, error) {
	if s.body != nil || s.st == nil {
		return io.NopCloser(bytes.NewReader(s.body)), nil
	}
	rc, err := s.st.Open(ctx, s.msg.ID)
	if err != nil {
		return nil, err
	}
	if _, err := io.CopyN(io.Discard, rc, s.msg.HeaderLen); err != nil {
		rc.Close()
		return nil, fmt.Errorf("skip stored header: %w", err)
	}
	return rc, nil
}

// visible is the To:/Cc: mailboxes with their display names, parsed once
// for all of the message's exploded copies (n copies would otherwise parse
// n addresses each).
func (s *msgSource) visible() *visibleNames {
	s.namesOnce.Do(func() { s.names = parseVisibleNames(s.fields) })
	return s.names
}

// sourceCache keeps the sources of the few messages being delivered at a
// time, so the copies of an exploded message share one read of it. It is
// bounded in entries and bytes; the oldest entry goes first. A message's
// stored bytes never change and its ID is never reused, so an entry is
// never stale: at worst it outlives its message until evicted.
type sourceCache struct {
	mu       sync.Mutex
	max      int
	maxBytes int
	bytes    int
	m        map[string]*msgSource
	order    []string // insertion order, for eviction
}

func newSourceCache(max, maxBytes int) *sourceCache {
	return &sourceCache{max: max, maxBytes: maxBytes, m: make(map[string]*msgSource, max)}
}

// get returns msg's source, loading it on a miss. Two workers missing on
// the same message at once both load it; the second insert wins, which is
// harmless.
func (c *sourceCache) get(ctx context.Context, st store.Store, msg store.Message) (*msgSource, error) {
	c.mu.Lock()
	src, ok := c.m[msg.ID]
	c.mu.Unlock()
	if ok {
		return src, nil
	}
	src, err := loadSource(ctx, st, msg)
	if err != nil {
		return nil, err
	}
	if src.size > c.maxBytes/4 {
		return src, nil // too big to be worth a quarter of the budget
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[msg.ID]; ok {
		c.bytes -= old.size
	} else {
		c.order = append(c.order, msg.ID)
	}
	c.m[msg.ID] = src
	c.bytes += src.size
	for len(c.order) > 1 && (len(c.m) > c.max || c.bytes > c.maxBytes) {
		id := c.order[0]
		c.order = c.order[1:]
		if old, ok := c.m[id]; ok {
			c.bytes -= old.size
			delete(c.m, id)
		}
	}
	if cap(c.order) > 4*c.max { // keep the slice from growing without bound
		c.order = append([]string(nil), c.order...)
	}
	return src, nil
}
