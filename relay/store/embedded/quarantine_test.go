package embedded

import (
	"bytes"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bccguard/bccguard/relay/store"
)

func commitHeld(t testing.TB, s *Store, data []byte, rule string) string {
	t.Helper()
	sp, id, err := s.NewSpool(bg)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Abort()
	if _, err := sp.Write(data); err != nil {
		t.Fatal(err)
	}
	msg := store.Message{
		Envelope:   store.Envelope{Sender: "s@brand.example", Recipients: []store.Recipient{{Addr: "r@example.net"}}},
		Quarantine: &store.Quarantine{Rule: rule, Reason: "test"},
	}
	if _, err := sp.Commit(bg, msg, nil); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestHoldBodyFiles: a spilled held body's file goes with Discard, and
// with the collection of a released message, not before; the hold records
// stay across a restart.
func TestHoldBodyFiles(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir, Options{InlineLimit: 1024})
	big := bytes.Repeat([]byte("x"), 4096)
	deleted := commitHeld(t, s, big, "r")
	released := commitHeld(t, s, big, "r")
	if f := spoolFiles(t, s); !slices.Equal(f, []string{deleted, released}) {
		t.Fatalf("spool files %v, want both holds'", f)
	}
	if err := s.Discard(bg, deleted, store.HoldDeleted, store.Resolution{Actor: "a", Action: "delete"}); err != nil {
		t.Fatal(err)
	}
	if f := spoolFiles(t, s); !slices.Equal(f, []string{released}) {
		t.Fatalf("after Discard, spool files %v, want [%s]", f, released)
	}
	if err := s.Release(bg, released, oneRcpt(), store.Resolution{Actor: "a", Action: "release-as-is"}); err != nil {
		t.Fatal(err)
	}
	if f := spoolFiles(t, s); !slices.Equal(f, []string{released}) {
		t.Fatalf("after Release, spool files %v, want [%s]", f, released)
	}
	for _, c := range mustClaim(t, s, 10) {
		if err := s.Complete(bg, "t", c.Delivery.ID, store.Outcome{State: store.StateDelivered}); err != nil {
			t.Fatal(err)
		}
	}
	if f := spoolFiles(t, s); len(f) != 0 {
		t.Fatalf("after delivery, spool files %v", f)
	}
	s.Close()
	s = openAt(t, dir, Options{InlineLimit: 1024})
	for id, st := range map[string]store.HoldState{deleted: store.HoldDeleted, released: store.HoldReleased} {
		h, err := s.Hold(bg, id)
		if err != nil || h.State != st || h.Message.Size != int64(len(big)) {
			t.Fatalf("Hold(%s) after restart = %+v, %v; want %s", id, h, err, st)
		}
	}
}

// TestHoldsReadIndex: listing and stats read the index and decode only the
// holds of the page (here, a damaged record off the page is not touched).
func TestHoldsReadIndex(t *testing.T) {
	s := openAt(t, t.TempDir(), Options{})
	old := commitHeld(t, s, []byte("old"), "a")
	time.Sleep(time.Millisecond)
	newest := commitHeld(t, s, []byte("new"), "b")
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHolds).Put([]byte(old), []byte("{damaged"))
	})
	if err != nil {
		t.Fatal(err)
	}
	hs, total, err := s.Holds(bg, store.HoldFilter{Limit: 1})
	if err != nil || total != 2 || len(hs) != 1 || hs[0].Message.ID != newest {
		t.Fatalf("Holds = %v, %d, %v; want %s of 2", hs, total, err, newest)
	}
	if _, total, err := s.Holds(bg, store.HoldFilter{Rule: "a", Offset: 1}); err != nil || total != 1 {
		t.Fatalf("Holds(rule a, offset 1) = %d, %v", total, err)
	}
	counts, _, err := s.HoldStats(bg)
	if err != nil || counts["a"] != 1 || counts["b"] != 1 {
		t.Fatalf("HoldStats = %v, %v", counts, err)
	}
	if _, _, err := s.Holds(bg, store.HoldFilter{}); err == nil {
		t.Fatal("listing a damaged record did not fail")
	}
}

// TestAuditExplicitID: an ID given to AddAudit must be above every one
// stored; later entries continue from it.
func TestAuditExplicitID(t *testing.T) {
	s := openAt(t, t.TempDir(), Options{})
	add := func(id int64) error { return s.AddAudit(bg, store.AuditEntry{ID: id, Actor: "a", Action: "approve"}) }
	for _, id := range []int64{0, 10, 0} {
		if err := add(id); err != nil {
			t.Fatalf("AddAudit(ID %d): %v", id, err)
		}
	}
	for _, id := range []int64{11, 5, -1} {
		if err := add(id); err == nil {
			t.Fatalf("AddAudit(ID %d) succeeded", id)
		}
	}
	es, err := s.Audit(bg, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, e := range es {
		got = append(got, e.ID)
	}
	if !slices.Equal(got, []int64{11, 10, 1}) {
		t.Fatalf("audit IDs %v, want [11 10 1]", got)
	}
}

// TestOpenAddsQuarantineBuckets: a queue.db from before the quarantine
// (no holds, holdindex, audit buckets) opens and gains them, and its
// messages kept without deliveries are not holds.
func TestOpenAddsQuarantineBuckets(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir, Options{})
	kept := commitBytes(t, s, []byte("kept"), nil)
	s.Close()
	db, err := bolt.Open(dir+"/queue.db", 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketHolds, bucketHoldIndex, bucketAudit} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s = openAt(t, dir, Options{})
	if _, err := s.Hold(bg, kept); !isNotFound(err) {
		t.Fatalf("Hold of a message kept before the quarantine = %v, want ErrNotFound", err)
	}
	if err := s.AddAudit(bg, store.AuditEntry{Actor: "a", Action: "approve"}); err != nil {
		t.Fatal(err)
	}
	held := commitHeld(t, s, []byte("held"), "r")
	if hs, total, err := s.Holds(bg, store.HoldFilter{}); err != nil || total != 1 || hs[0].Message.ID != held {
		t.Fatalf("Holds = %v, %d, %v", hs, total, err)
	}
}
