package embedded

import (
	"fmt"

	"github.com/bccguard/bccguard/relay/store"
)

// DefaultMinFree is Options.MinFree when not set.
const DefaultMinFree = 4 << 20

// checkSpace refuses new mail while the data folder's filesystem has less
// than the reserve free. The reserve is for the queue's own bookkeeping:
// recording that a delivery is done rewrites pages (bbolt copies on write)
// before the message and its body can be deleted, so on a disk filled to
// the last byte by accepted mail, no outcome could be recorded, no space
// would ever come back, and acceptance would never resume. Postfix keeps
// such a margin for the same reason (queue_minfree).
func (s *Store) checkSpace() error {
	if s.minFree <= 0 {
		return nil
	}
	free, ok := freeBytes(s.dir)
	if !ok || free >= s.minFree {
		return nil
	}
	return fmt.Errorf("embedded: %w: %d bytes free in %s, %d kept for the queue's records", store.ErrNoSpace, free, s.dir, s.minFree)
}
