package embedded

import (
	"encoding/base32"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"time"
)

// idEncoding keeps byte order in text order (base32hex) and yields only
// [0-9A-V]: safe in file names and as the id of a Received: header.
var idEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

// idGen makes message IDs: 16 characters encoding 48 bits of unix
// milliseconds and a 32-bit sequence. The sequence starts at a random
// 31-bit value each millisecond and counts up within it, so IDs from one
// process never repeat (the clock is not allowed to go backwards here) and
// IDs across restarts collide only if the clock went back and two random
// draws met; Commit still refuses an ID already stored. IDs sort by
// creation time, which keeps bbolt inserts near the end of the tree.
type idGen struct {
	mu   sync.Mutex
	last uint64 // milliseconds of the last ID
	seq  uint32
}

func (g *idGen) next() string {
	ms := uint64(time.Now().UnixMilli())
	g.mu.Lock()
	switch {
	case ms > g.last:
		g.last, g.seq = ms, rand.Uint32()>>1
	default:
		g.seq++
		if g.seq == 0 { // 2^31 IDs in one millisecond: borrow the next one
			g.last++
			g.seq = rand.Uint32() >> 1
		}
	}
	var b [10]byte
	binary.BigEndian.PutUint64(b[:8], g.last<<16)
	binary.BigEndian.PutUint32(b[6:], g.seq)
	g.mu.Unlock()
	return idEncoding.EncodeToString(b[:])
}
