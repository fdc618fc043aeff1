package embedded

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/bccguard/bccguard/relay/store"
)

// smallDisk mounts a tmpfs of size (so it needs root; the test is skipped
// without).
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	return mnt
}

// TestNoSpace fills a small tmpfs with the reserve turned off and checks
// that a full disk gives store.ErrNoSpace on the spool write, the group
// commit and Ping; that nothing half-stored is left; and that acceptance
// works again once space returns.
func TestNoSpace(t *testing.T) {
	mnt := smallDisk(t, "4m")
	dir := filepath.Join(mnt, "data")
	s, err := Open(dir, Options{MinFree: -1})
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
	if s, err = Open(dir, Options{MinFree: -1}); err != nil {
		t.Fatal(err)
	}
	check()
}

// TestReserveKeepsRoomForOutcomes: with the reserve, mail is refused
// before the disk is full, so the outcomes of what was accepted can still
// be recorded, which frees the space and lets acceptance resume. Without
// it a disk filled by accepted mail could never be emptied by delivering
// that mail.
func TestReserveKeepsRoomForOutcomes(t *testing.T) {
	mnt := smallDisk(t, "8m")
	s, err := Open(filepath.Join(mnt, "data"), Options{MinFree: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	body := bytes.Repeat([]byte("x"), 256<<10) // spilled to files
	accepted := 0
	for {
		sp, _, err := s.NewSpool(bg)
		if err == nil {
			if _, err = sp.Write(body); err == nil {
				_, err = sp.Commit(bg, store.Message{}, oneRcpt())
			}
			sp.Abort()
		}
		if err != nil {
			if !errors.Is(err, store.ErrNoSpace) {
				t.Fatalf("after %d messages: %v, want ErrNoSpace", accepted, err)
			}
			break
		}
		accepted++
	}
	if free, _ := freeBytes(mnt); accepted == 0 || free < 1<<20 {
		t.Fatalf("%d accepted, %d bytes left free", accepted, free)
	}
	cs, err := s.Claim(bg, "w", time.Now(), 1000, time.Minute)
	if err != nil || len(cs) != accepted {
		t.Fatalf("claimed %d of %d: %v", len(cs), accepted, err)
	}
	for _, c := range cs {
		if err := s.Complete(bg, "w", c.Delivery.ID, store.Outcome{State: store.StateDelivered}); err != nil {
			t.Fatalf("recording a delivery with the disk at the reserve: %v", err)
		}
	}
	commitBytes(t, s, body, oneRcpt())
	t.Logf("%d messages of 256 KiB accepted on an 8 MiB disk with a 2 MiB reserve; all delivered; acceptance resumed", accepted)
}
