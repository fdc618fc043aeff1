package postgres

import (
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/bccguard/bccguard/relay/store"
)

// idEncoding keeps byte order in text order (base32hex) and yields only
// [0-9A-V]: safe in file names and as the id of a Received: header.
var idEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

// newMessageID returns 24 characters encoding 48 bits of Unix milliseconds
// and 72 random bits. Replicas make IDs without talking to each other (no
// round trip before the Received: header can be written), so uniqueness
// rests on the random part: two IDs of the same millisecond collide with a
// probability of 2^-72, and the primary key refuses the second anyway.
// IDs sort by time, which keeps inserts at the end of the indexes.
func newMessageID() string {
	var b [15]byte
	binary.BigEndian.PutUint64(b[0:8], uint64(time.Now().UnixMilli())<<16)
	binary.BigEndian.PutUint64(b[6:14], rand.Uint64())
	b[14] = byte(rand.Uint32())
	return idEncoding.EncodeToString(b[:])
}

// deliveryID is "<messageID>.<seq>", seq from 1 as in the embedded store.
func deliveryID(msgID string, seq int) string { return msgID + "." + strconv.Itoa(seq) }

// splitDeliveryID parses a delivery ID; a malformed one is not found.
func splitDeliveryID(id string) (string, int, error) {
	i := strings.LastIndexByte(id, '.')
	if i > 0 {
		if n, err := strconv.Atoi(id[i+1:]); err == nil && n > 0 && strconv.Itoa(n) == id[i+1:] {
			return id[:i], n, nil
		}
	}
	return "", 0, fmt.Errorf("delivery %s: %w", id, store.ErrNotFound)
}
