package embedded

import (
	"testing"

	"github.com/bccguard/bccguard/relay/store"
	"github.com/bccguard/bccguard/relay/store/storetest"
)

// openAt opens a store in dir and closes it when the test ends.
func openAt(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs the shared suite with bodies inline as configured by
// default, always spilled, and spilled from 1 KiB.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int
	}{
		{"default", 0},
		{"spill-all", -1},
		{"inline-1KiB", 1 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{InlineLimit: tc.limit}
			storetest.Run(t, func(t *testing.T) store.Store {
				return openAt(t, t.TempDir(), opts)
			}, storetest.WithReopen(func(t *testing.T, s store.Store) store.Store {
				old := s.(*Store)
				if err := old.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				return openAt(t, old.dir, opts)
			}))
		})
	}
}
