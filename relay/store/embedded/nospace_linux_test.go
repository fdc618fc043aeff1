package embedded

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/bccguard/bccguard/relay/store"
)

// TestNoSpace fills a small tmpfs (so it needs root, and is skipped
// without) and checks that a full disk gives store.ErrNoSpace on the spool
// write, the group commit and Ping; that nothing half-stored is left; and
// that acceptance works again once space returns.
func TestNoSpace(t *testing.T) {
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=4m"); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	dir := filepath.Join(mnt, "data")
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	var kept []string
	for range 3 {
		kept = append(kept, commitBytes(t, s, []byte("before the disk filled"), oneRcpt()))
	}
	// Fill the file system.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling: %v", err)
			}
			break
		}
	}
	for {
		if _, err := f.Write(chunk[:512]); err != nil {
			break
		}
	}
	f.Close()

	// A body that spills fails while streaming (or at Commit).
	sp, _, err := s.NewSpool(bg)
	if err != nil {
		t.Fatal(err)
	}
	_, werr := sp.Write(make([]byte, 1<<20))
	var cerr error
	if werr == nil {
		_, cerr = sp.Commit(bg, store.Message{}, oneRcpt())
	}
	if !errors.Is(werr, store.ErrNoSpace) && !errors.Is(cerr, store.ErrNoSpace) {
		t.Fatalf("spilled body on a full disk: write %v, commit %v; want ErrNoSpace", werr, cerr)
	}
	sp.Abort()

	// Inline bodies fill bbolt's free pages, then fail in the commit.
	var failed error
	for i := 0; i < 1000 && failed == nil; i++ {
		sp, _, _ := s.NewSpool(bg)
		sp.Write(bytes.Repeat([]byte{'i'}, 100<<10))
		var id string
		if id, failed = sp.Commit(bg, store.Message{}, oneRcpt()); failed == nil {
			kept = append(kept, id)
		}
	}
	if !errors.Is(failed, store.ErrNoSpace) {
		t.Fatalf("inline commits on a full disk: %v, want ErrNoSpace", failed)
	}
	t.Logf("spilled: write %v, commit %v; inline: %d stored, then %v", werr, cerr, len(kept)-3, failed)
	if err := s.Ping(bg); !errors.Is(err, store.ErrNoSpace) {
		t.Fatalf("Ping on a full disk: %v, want ErrNoSpace", err)
	}
	if f := spoolFiles(t, s); len(f) != 0 {
		t.Fatalf("failed commits left spool files %v", f)
	}

	// Space returns: everything works again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(bg); err != nil {
		t.Fatalf("Ping after space returned: %v", err)
	}
	kept = append(kept, commitBytes(t, s, make([]byte, 1<<20), oneRcpt()))
	kept = append(kept, commitBytes(t, s, []byte("small"), oneRcpt()))
	check := func() {
		t.Helper()
		for _, id := range kept {
			rc, err := s.Open(bg, id)
			if err != nil {
				t.Fatalf("message %s accepted before/after the full disk: %v", id, err)
			}
			io.Copy(io.Discard, rc)
			rc.Close()
		}
		ds, err := s.List(bg, store.Filter{Limit: 1 << 20})
		if err != nil || len(ds) != len(kept) {
			t.Fatalf("List = %d deliveries, %v; want %d", len(ds), err, len(kept))
		}
	}
	check()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	check()
}
