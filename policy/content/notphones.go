package content

import (
	"hash/maphash"
	"sync"
)

// NotPhones remembers, across messages, the candidate digit runs that
// libphonenumber rejected, so that the same look-alike in every message
// of a mailing (a reference, an order number, a line of a template) is
// parsed once, not once per message: a parse with its regular expressions
// costs tens of microseconds, more than the rest of a small message's
// scan. Only rejections are kept, and only as 64-bit hashes (seeded per
// process) of the region and the run, so no content is retained. The set
// is bounded by max entries and starts over when full. A hash collision
// could hide one phone number from the count, with odds of about
// max/2^64. Safe for concurrent use.
type NotPhones struct {
	mu   sync.Mutex
	seed maphash.Seed
	set  map[uint64]struct{}
	max  int
}

// NewNotPhones returns an empty set bounded by limit entries (at least 1).
func NewNotPhones(limit int) *NotPhones {
	return &NotPhones{seed: maphash.MakeSeed(), set: make(map[uint64]struct{}), max: max(limit, 1)}
}

// DefaultNotPhones bounds a policy's set: 64 Ki hashes, about 2 MiB.
const DefaultNotPhones = 1 << 16

func (n *NotPhones) key(region string, run []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(n.seed)
	h.WriteString(region)
	h.WriteByte(0)
	h.Write(run)
	return h.Sum64()
}

// has reports whether run was rejected before for region.
func (n *NotPhones) has(region string, run []byte) bool {
	k := n.key(region, run)
	n.mu.Lock()
	_, ok := n.set[k]
	n.mu.Unlock()
	return ok
}

// add remembers that run is not a phone number in region.
func (n *NotPhones) add(region string, run []byte) {
	k := n.key(region, run)
	n.mu.Lock()
	if len(n.set) >= n.max {
		clear(n.set)
	}
	n.set[k] = struct{}{}
	n.mu.Unlock()
}

// Len is how many rejections are remembered.
func (n *NotPhones) Len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.set)
}
