package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bccguard/bccguard/relay/store"
)

var bg = context.Background()

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

func oneRcpt() []store.NewDelivery {
	return []store.NewDelivery{{Recipients: []store.Recipient{{Addr: "r@example.net"}}, Rewrite: store.RewritePass}}
}

func commitBytes(t testing.TB, s *Store, data []byte, ds []store.NewDelivery) string {
	t.Helper()
	sp, id, err := s.NewSpool(bg)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Abort()
	if _, err := sp.Write(data); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Commit(bg, store.Message{}, ds); err != nil {
		t.Fatal(err)
	}
	return id
}

func spoolFiles(t *testing.T, s *Store) []string {
	t.Helper()
	es, err := os.ReadDir(s.spoolDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestDirLocked(t *testing.T) {
	dir := t.TempDir()
	openAt(t, dir, Options{})
	_, err := Open(dir, Options{LockTimeout: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "in use by another bccguard") {
		t.Fatalf("second Open = %v, want an in-use error", err)
	}
}

func TestIDsSortAndAreSafe(t *testing.T) {
	var g idGen
	prev := ""
	for range 10000 {
		id := g.next()
		if len(id) != 16 || strings.Trim(id, "0123456789ABCDEFGHIJKLMNOPQRSTUV") != "" {
			t.Fatalf("bad ID %q", id)
		}
		if id <= prev {
			t.Fatalf("ID %q does not sort after %q", id, prev)
		}
		prev = id
	}
}

// TestSpoolFiles: a spilled body's file is removed by Abort, by a failed
// Commit and by collection; a file left by a crash goes at the next Open.
func TestSpoolFiles(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir, Options{InlineLimit: 1024})
	big := bytes.Repeat([]byte("x"), 4096)

	sp, _, _ := s.NewSpool(bg)
	sp.Write(big)
	if len(spoolFiles(t, s)) != 1 {
		t.Fatal("a body over the inline limit did not spill")
	}
	sp.Abort()
	if f := spoolFiles(t, s); len(f) != 0 {
		t.Fatalf("Abort left %v", f)
	}

	sp, _, _ = s.NewSpool(bg)
	sp.Write(big)
	if _, err := sp.Commit(bg, store.Message{}, []store.NewDelivery{{Rewrite: "shout"}}); err == nil {
		t.Fatal("Commit with an unknown rewrite succeeded")
	}
	if f := spoolFiles(t, s); len(f) != 0 {
		t.Fatalf("failed Commit left %v", f)
	}

	small := commitBytes(t, s, []byte("small"), oneRcpt())
	id := commitBytes(t, s, big, oneRcpt())
	if f := spoolFiles(t, s); !slices.Equal(f, []string{id}) {
		t.Fatalf("spool files %v, want [%s]", f, id)
	}
	// A reader opened before collection keeps reading after it.
	rc, err := s.Open(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range mustClaim(t, s, 10) {
		if err := s.Complete(bg, "t", c.Delivery.ID, store.Outcome{State: store.StateDelivered}); err != nil {
			t.Fatal(err)
		}
	}
	if f := spoolFiles(t, s); len(f) != 0 {
		t.Fatalf("collection left %v", f)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("reading across collection: %d bytes, %v", len(got), err)
	}
	if _, err := s.Message(bg, small); !isNotFound(err) {
		t.Fatalf("inline message not collected: %v", err)
	}

	// Crash leftovers: an uncommitted spool file and a stray one.
	sp, orphan, _ := s.NewSpool(bg)
	sp.Write(big)
	kept := commitBytes(t, s, big, nil)
	s.Close()
	os.WriteFile(filepath.Join(dir, "spool", "stray.tmp"), []byte("x"), 0o600)
	s = openAt(t, dir, Options{InlineLimit: 1024})
	if f := spoolFiles(t, s); !slices.Equal(f, []string{kept}) {
		t.Fatalf("after reopen spool has %v, want only %s (not orphan %s)", f, kept, orphan)
	}
	sp.Abort() // late Abort of a spool from before the restart is harmless
}

func mustClaim(t *testing.T, s *Store, limit int) []store.Claimed {
	t.Helper()
	cs, err := s.Claim(bg, "t", time.Now().Add(time.Second), limit, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestMemoryFlat: spooling a large body allocates a fixed amount, not the
// body's size.
func TestMemoryFlat(t *testing.T) {
	s := openAt(t, t.TempDir(), Options{})
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 2048) // 32 KiB
	const total = 64 << 20
	sp, _, err := s.NewSpool(bg)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Abort()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for n := 0; n < total; n += len(chunk) {
		if _, err := sp.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sp.Commit(bg, store.Message{}, oneRcpt()); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2<<20 {
		t.Fatalf("spooling %d MiB allocated %d KiB", total>>20, alloc>>10)
	}
}

// TestGroupCommit: concurrent commits share transactions.
func TestGroupCommit(t *testing.T) {
	s := openAt(t, t.TempDir(), Options{})
	start := s.batch.commits.Load()
	const n = 400
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			for range n / 40 {
				commitBytes(t, s, make([]byte, 2048), oneRcpt())
			}
		})
	}
	wg.Wait()
	commits := s.batch.commits.Load() - start
	t.Logf("%d messages in %d transactions", n, commits)
	if commits > n/2 {
		t.Fatalf("%d messages took %d transactions: no group commit", n, commits)
	}
}

// TestFailedFunctionInBatch: a function that fails inside a batch does
// not fail the others, and none of its writes stay.
func TestFailedFunctionInBatch(t *testing.T) {
	s := openAt(t, t.TempDir(), Options{})
	errBad := errors.New("bad")
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.batch.do(func(tx *bolt.Tx) error {
				if err := tx.Bucket(bucketMeta).Put([]byte(fmt.Sprint("k", i)), []byte("v")); err != nil {
					return err
				}
				if i%10 == 7 {
					return errBad
				}
				return nil
			})
		})
	}
	wg.Wait()
	err := s.db.View(func(tx *bolt.Tx) error {
		for i, err := range errs {
			stored := tx.Bucket(bucketMeta).Get([]byte(fmt.Sprint("k", i))) != nil
			if bad := i%10 == 7; bad != errors.Is(err, errBad) || stored == bad {
				return fmt.Errorf("function %d: error %v, stored %v", i, err, stored)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPanicInBatch: a panicking function is an error, not a crash.
func TestPanicInBatch(t *testing.T) {
	s := openAt(t, t.TempDir(), Options{})
	err := s.batch.do(func(tx *bolt.Tx) error { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("panic in batch: %v", err)
	}
	if err := s.Ping(bg); err != nil {
		t.Fatal(err)
	}
}
