package rewrite

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/bccguard/bccguard/internal/mailhdr"
	"github.com/bccguard/bccguard/relay/store"
)

// sourceBodyMax is the largest body a Source keeps in memory. An exploded
// mailing is small and sent once per recipient, so reading it from the
// store once instead of once per copy is most of the cost of a copy; a
// large body is streamed from the store for each copy instead, so memory
// stays flat whatever the message size.
const sourceBodyMax = 256 << 10

// headerCost and rcptCost estimate what a Source holds: per byte of its
// header block (the block, its reading: fields split and decoded, address
// lists parsed) and per envelope recipient (a person of People, worked
// out on first use). TestSourceCost measures them. Counting the block's
// bytes alone let the cache hold several times its budget: the sources
// of the last explodes stayed resident through whatever came next.
const (
	headerCost = 12
	rcptCost   = 256
)

// Source is a stored message as its copies are rendered from it: the
// header read once (bccguard's own Received: apart from the original), the
// body in memory when it is small, and whom the header shows worked out
// once, on first use, for all the copies.
type Source struct {
	st   store.Store
	msg  store.Message
	own  []byte           // bccguard's Received:, written first
	hdr  *mailhdr.Reading // the original header block as received
	body []byte           // nil: streamed from st
	raw  int              // bytes read from the store
	size int              // memory held, estimated (headerCost), for the cache's budget

	peopleOnce sync.Once
	people     *mailhdr.People
}

// Load reads a stored message's header (and its body, if small).
func Load(ctx context.Context, st store.Store, msg store.Message) (*Source, error) {
	rc, err := st.Open(ctx, msg.ID)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	src, err := ReadSource(rc, msg)
	if err != nil {
		return nil, err
	}
	src.st = st
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
		src.raw += len(b)
		src.size += len(b)
	}
	return src, nil
}

// ReadSource reads the header block of msg from r (positioned at the start
// of the stored message) and leaves r at the body. The Source streams no
// body of its own: callers hand WriteCopy the rest of r.
func ReadSource(r io.Reader, msg store.Message) (*Source, error) {
	head := make([]byte, msg.HeaderLen)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, fmt.Errorf("read stored header: %w", err)
	}
	own, orig := SplitStored(head)
	size := headerCost*len(head) + rcptCost*len(msg.Envelope.Recipients)
	return &Source{msg: msg, own: own, hdr: mailhdr.Read(orig), raw: len(head), size: size}, nil
}

// Message is the stored message's record.
func (s *Source) Message() store.Message { return s.msg }

// Header is the original header block as the client sent it.
func (s *Source) Header() *mailhdr.Reading { return s.hdr }

// OpenBody returns the body (what follows the header block).
func (s *Source) OpenBody(ctx context.Context) (io.ReadCloser, error) {
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

// People are whom the header and envelope show, worked out once for all of
// the message's copies (n copies would otherwise read n addresses each).
func (s *Source) People() *mailhdr.People {
	s.peopleOnce.Do(func() {
		env := s.msg.Envelope
		rcpts := make([]string, len(env.Recipients))
		for i, r := range env.Recipients {
			rcpts[i] = r.Addr
		}
		s.people = s.hdr.People(env.Sender, rcpts)
	})
	return s.people
}

// Cache keeps the sources of the few messages being delivered at a time,
// so the copies of an exploded message share one read of it. It is bounded
// in entries and in the memory its sources hold (Source.size, estimated);
// the oldest entry goes first. A message's stored bytes never change and
// its ID is never reused, so an entry is never stale: at worst it outlives
// its message until evicted.
type Cache struct {
	mu       sync.Mutex
	max      int
	maxBytes int
	bytes    int
	m        map[string]*Source
	order    []string // insertion order, for eviction
}

// NewCache returns a cache of at most max sources and maxBytes bytes.
func NewCache(max, maxBytes int) *Cache {
	return &Cache{max: max, maxBytes: maxBytes, m: make(map[string]*Source, max)}
}

// Get returns msg's source, loading it on a miss. Two workers missing on
// the same message at once both load it; the second insert wins, which is
// harmless.
func (c *Cache) Get(ctx context.Context, st store.Store, msg store.Message) (*Source, error) {
	c.mu.Lock()
	src, ok := c.m[msg.ID]
	c.mu.Unlock()
	if ok {
		return src, nil
	}
	src, err := Load(ctx, st, msg)
	if err != nil {
		return nil, err
	}
	if src.raw > c.maxBytes/4 || src.size > c.maxBytes {
		// Too big to be worth a quarter of the budget, or holding more
		// than all of it once read (a header of thousands of recipients
		// still fits: its copies would each read it again).
		return src, nil
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
