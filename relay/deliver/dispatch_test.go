package deliver

import (
	"fmt"
	"testing"
	"time"

	"github.com/bccguard/bccguard/relay/store"
)

// share hands each free worker a contiguous part of what was claimed,
// every delivery exactly once, parts within one of each other in size.
func TestShare(t *testing.T) {
	for _, tc := range []struct{ claimed, workers, parts int }{
		{0, 8, 0}, {1, 8, 1}, {3, 8, 3}, {8, 8, 8}, {9, 8, 8}, {64, 8, 8}, {63, 8, 8}, {5, 1, 1},
	} {
		t.Run(fmt.Sprintf("%d over %d", tc.claimed, tc.workers), func(t *testing.T) {
			claimed := make([]store.Claimed, tc.claimed)
			for i := range claimed {
				claimed[i].Delivery.ID = fmt.Sprint(i)
			}
			parts := share(claimed, tc.workers)
			if len(parts) != tc.parts {
				t.Fatalf("%d parts, want %d", len(parts), tc.parts)
			}
			next, lo, hi := 0, tc.claimed, 0
			for _, p := range parts {
				lo, hi = min(lo, len(p)), max(hi, len(p))
				for _, c := range p {
					if c.Delivery.ID != fmt.Sprint(next) {
						t.Fatalf("delivery %s where %d was next: parts are not contiguous", c.Delivery.ID, next)
					}
					next++
				}
			}
			if next != tc.claimed {
				t.Errorf("%d deliveries handed out of %d", next, tc.claimed)
			}
			if len(parts) > 0 && hi-lo > 1 {
				t.Errorf("part sizes from %d to %d", lo, hi)
			}
		})
	}
}

// A delivery that waited half its lease in a worker's share is given back
// rather than attempted: it could otherwise outlive its lease and be sent
// by another worker as well.
func TestWorkShareStale(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	w := workShare{claimedAt: at}
	for _, tc := range []struct {
		lease, waited time.Duration
		stale         bool
	}{
		{15 * time.Minute, time.Second, false},
		{15 * time.Minute, 7 * time.Minute, false},
		{15 * time.Minute, 8 * time.Minute, true},
		{time.Minute, 20 * time.Second, false}, // store.lease shorter than the default
		{time.Minute, 31 * time.Second, true},
	} {
		job := store.Claimed{LeaseUntil: at.Add(tc.lease)}
		if got := w.stale(job, at.Add(tc.waited)); got != tc.stale {
			t.Errorf("lease %v, waited %v: stale %v, want %v", tc.lease, tc.waited, got, tc.stale)
		}
	}
}
