package storetest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bccguard/bccguard/relay/store"
)

// The quarantine and audit part of the suite. Every backend's store must
// implement store.QuarantineStore.
//
// What it pins beyond the interface's comments:
//   - Holds are ordered newest first by Message.ReceivedAt (ties by ID,
//     descending); HeldBefore and HeldAfter are strict bounds.
//   - Holds and Audit return at most 100 items when Limit is 0 and at most
//     1000 whatever the Limit.
//   - Audit entries are listed by ID, highest first; IDs increase in the
//     order entries are appended. Since is inclusive.
//   - A resolved hold keeps its record (message metadata, quarantine,
//     approvals, resolution) forever; Open of a discarded hold, and of a
//     released one once its deliveries are final, is ErrNotFound. What
//     Message returns for them is left to the backend.

func qstore(t *testing.T, s store.Store) store.QuarantineStore {
	t.Helper()
	qs, ok := s.(store.QuarantineStore)
	if !ok {
		t.Fatalf("%T does not implement store.QuarantineStore", s)
	}
	return qs
}

// heldMessage is a message as the relay records a hold: three envelope
// recipients, all visible in To:.
func heldMessage(rule, sender, ip, user string, at time.Time) store.Message {
	rcpt := []store.Recipient{{Addr: "a@example.net"}, {Addr: "b@example.org", Notify: []string{"FAILURE"}}, {Addr: "c@example.net"}}
	return store.Message{
		Envelope:   store.Envelope{Sender: sender, Recipients: rcpt},
		Client:     store.Client{Listener: "submission", IP: ip, User: user, Helo: "crm.brand.example", TLS: true},
		ReceivedAt: at,
		HeaderLen:  5,
		Decision:   []byte(`{"action":"quarantine","rule":"` + rule + `"}`),
		Quarantine: &store.Quarantine{
			Rule:    rule,
			Reason:  "3 external addresses visible in To:",
			Figures: map[string]int{"visible.count": 3, "visible.external": 3, "body.addresses": 0},
			Visible: []store.VisibleRecipient{
				{Name: "Ann", Address: "a@example.net", Field: "to"},
				{Address: "b@example.org", Field: "to"},
				{Name: "Cé", Address: "c@example.net", Field: "cc"},
			},
			ExpiresAt: at.Add(30 * 24 * time.Hour),
		},
	}
}

// commitHeld stores a hold of rule received at at.
func commitHeld(t *testing.T, s store.Store, data []byte, rule string, at time.Time) string {
	t.Helper()
	return Put(t, s, data, heldMessage(rule, "news@brand.example", "192.0.2.1", "crm", at), nil)
}

func getHold(t *testing.T, qs store.QuarantineStore, id string) store.Hold {
	t.Helper()
	h, err := qs.Hold(ctx, id)
	if err != nil {
		t.Fatalf("Hold(%s): %v", id, err)
	}
	return h
}

func holds(t *testing.T, qs store.QuarantineStore, f store.HoldFilter) ([]store.Hold, int) {
	t.Helper()
	hs, total, err := qs.Holds(ctx, f)
	if err != nil {
		t.Fatalf("Holds(%+v): %v", f, err)
	}
	return hs, total
}

func holdIDs(hs []store.Hold) []string {
	out := []string{}
	for _, h := range hs {
		out = append(out, h.Message.ID)
	}
	return out
}

func release(t *testing.T, qs store.QuarantineStore, id string, ds []store.NewDelivery, r store.Resolution) {
	t.Helper()
	if err := qs.Release(ctx, id, ds, r); err != nil {
		t.Fatalf("Release(%s): %v", id, err)
	}
}

func discard(t *testing.T, qs store.QuarantineStore, id string, st store.HoldState, r store.Resolution) {
	t.Helper()
	if err := qs.Discard(ctx, id, st, r); err != nil {
		t.Fatalf("Discard(%s, %s): %v", id, st, err)
	}
}

func explodeTo(addrs ...string) []store.NewDelivery {
	var ds []store.NewDelivery
	for _, a := range addrs {
		ds = append(ds, store.NewDelivery{Recipients: []store.Recipient{{Addr: a}}, Rewrite: store.RewriteExplode})
	}
	return ds
}

func sameQuarantine(a, b *store.Quarantine) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Rule == b.Rule && a.Reason == b.Reason && maps.Equal(a.Figures, b.Figures) &&
		slices.Equal(a.Visible, b.Visible) && sameTime(a.ExpiresAt, b.ExpiresAt)
}

// diffMessage describes how two message records differ ("" if not).
func diffMessage(a, b store.Message) string {
	if a.ID != b.ID || a.Size != b.Size || a.HeaderLen != b.HeaderLen || !sameTime(a.ReceivedAt, b.ReceivedAt) ||
		!sameEnvelope(a.Envelope, b.Envelope) || a.Client != b.Client || string(a.Decision) != string(b.Decision) {
		return fmt.Sprintf("message %+v, want %+v", a, b)
	}
	if !sameQuarantine(a.Quarantine, b.Quarantine) {
		return fmt.Sprintf("quarantine %+v, want %+v", a.Quarantine, b.Quarantine)
	}
	return ""
}

// diffHold describes how two holds differ ("" if not). Approvals are
// compared as a set by actor.
func diffHold(a, b store.Hold) string {
	if d := diffMessage(a.Message, b.Message); d != "" {
		return d
	}
	if a.State != b.State {
		return fmt.Sprintf("state %s, want %s", a.State, b.State)
	}
	if len(a.Approvals) != len(b.Approvals) {
		return fmt.Sprintf("approvals %+v, want %+v", a.Approvals, b.Approvals)
	}
	for _, x := range a.Approvals {
		i := slices.IndexFunc(b.Approvals, func(y store.Approval) bool { return y.Actor == x.Actor })
		if i < 0 || b.Approvals[i].Rewrite != x.Rewrite || !sameTime(b.Approvals[i].At, x.At) {
			return fmt.Sprintf("approvals %+v, want %+v", a.Approvals, b.Approvals)
		}
	}
	if (a.Resolution == nil) != (b.Resolution == nil) {
		return fmt.Sprintf("resolution %+v, want %+v", a.Resolution, b.Resolution)
	}
	if r, q := a.Resolution, b.Resolution; r != nil && (r.Actor != q.Actor || r.Action != q.Action ||
		!sameTime(r.At, q.At) || r.Note != q.Note || !slices.Equal(r.Recipients, q.Recipients)) {
		return fmt.Sprintf("resolution %+v, want %+v", *r, *q)
	}
	return ""
}

func checkHold(t *testing.T, what string, got, want store.Hold) {
	t.Helper()
	if d := diffHold(got, want); d != "" {
		t.Fatalf("%s: %s", what, d)
	}
}

// expectBodyGone checks that a message's body can no longer be opened.
func expectBodyGone(t *testing.T, s store.Store, id string) {
	t.Helper()
	if rc, err := s.Open(ctx, id); !isNotFound(err) {
		if rc != nil {
			rc.Close()
		}
		t.Fatalf("Open(%s) = %v, want ErrNotFound", id, err)
	}
}

func pending(t *testing.T, s store.Store) int {
	t.Helper()
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st.Pending
}

// testHoldCommit: a message committed with a Quarantine and no deliveries
// is a hold in state held, with everything the relay recorded, its body
// readable, nothing queued.
func testHoldCommit(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	qs := qstore(t, s)
	at := now().Add(-time.Hour)
	for i, size := range []int{10, 300 << 10} {
		data := body(size, uint64(10+i))
		msg := heldMessage("many-visible", "news@brand.example", "2001:db8::7", "crm", at.Add(time.Duration(i)*time.Minute))
		id := Put(t, s, data, msg, nil)
		want := store.Hold{Message: msg, State: store.HoldHeld}
		want.Message.ID, want.Message.Size = id, int64(size)
		checkHold(t, "Hold", getHold(t, qs, id), want)

		m, err := s.Message(ctx, id)
		if err != nil {
			t.Fatalf("Message of a held message: %v", err)
		}
		if d := diffMessage(m, want.Message); d != "" {
			t.Fatalf("Message of a held message: %s", d)
		}
		equalBytes(t, "held body", readBody(t, s, id), data)
		if ds := deliveriesOf(t, s, id); len(ds) != 0 {
			t.Fatalf("held message has deliveries %v", deliveryIDs(ds))
		}
		if got := claim(t, s, "w", now().Add(time.Hour), 10); len(got) != 0 {
			t.Fatalf("Claim returned %v for a held message", ids(got))
		}
		if n := pending(t, s); n != 0 {
			t.Fatalf("Stats: %d pending with only holds", n)
		}
		hs, total := holds(t, qs, store.HoldFilter{})
		if total != i+1 || len(hs) != i+1 || hs[0].Message.ID != id {
			t.Fatalf("Holds = %v (total %d), want %d with %s first", holdIDs(hs), total, i+1, id)
		}
		checkHold(t, "Holds[0]", hs[0], want)
	}

	// ReceivedAt left zero is the commit time, and it is when the hold began.
	before := now()
	id := Put(t, s, []byte("x"), heldMessage("r", "a@b.example", "192.0.2.9", "", time.Time{}), nil)
	if h := getHold(t, qs, id); h.Message.ReceivedAt.Before(before.Add(-time.Second)) || h.Message.ReceivedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("hold ReceivedAt = %v, want about %v", h.Message.ReceivedAt, before)
	}

	// Only quarantined messages are holds.
	kept := commit(t, s, []byte("kept"), nil)
	queued := commit(t, s, []byte("queued"), rcpts(1))
	for _, id := range []string{kept, queued, "NOSUCHMESSAGE"} {
		if _, err := qs.Hold(ctx, id); !isNotFound(err) {
			t.Fatalf("Hold(%s) = %v, want ErrNotFound", id, err)
		}
	}
	if _, total := holds(t, qs, store.HoldFilter{}); total != 3 {
		t.Fatalf("Holds total %d, want 3", total)
	}
}

// testHoldRefusesDeliveries: a quarantined message cannot be queued at the
// same time; the refused commit stores nothing.
func testHoldRefusesDeliveries(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	qs := qstore(t, s)
	for _, size := range []int{10, 300 << 10} {
		sp, id, err := s.NewSpool(ctx)
		if err != nil {
			t.Fatal(err)
		}
		writeChunks(t, sp, body(size, 11), 4096)
		if _, err := sp.Commit(ctx, heldMessage("r", "a@b.example", "192.0.2.1", "", now()), rcpts(2)); err == nil {
			t.Fatal("Commit of a quarantined message with deliveries succeeded")
		}
		sp.Abort()
		expectAbsent(t, s, id)
		if _, err := qs.Hold(ctx, id); !isNotFound(err) {
			t.Fatalf("Hold(%s) after a refused commit = %v, want ErrNotFound", id, err)
		}
	}
	if hs, total := holds(t, qs, store.HoldFilter{}); total != 0 || len(hs) != 0 {
		t.Fatalf("Holds = %v (total %d) after refused commits", holdIDs(hs), total)
	}
	if n := pending(t, s); n != 0 {
		t.Fatalf("Stats: %d pending after refused commits", n)
	}
}

// testHoldsList: filters, order, paging and totals.
func testHoldsList(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	qs := qstore(t, s)
	base := now().Add(-10 * time.Hour)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }
	specs := []struct{ rule, sender, ip, user string }{
		{"A", "news@brand.example", "192.0.2.1", "crm"},
		{"B", "NEWS@Brand.Example", "192.0.2.2", ""},
		{"A", "other@brand.example", "192.0.2.1", "crm"},
		{"A", "news@brand.example", "192.0.2.2", "mkt"},
		{"B", "", "192.0.2.1", "crm"},
		{"A", "news@brand.example", "192.0.2.1", "crm"},
	}
	// Committed out of time order: the order is by ReceivedAt, not commit.
	id := make([]string, len(specs))
	for _, i := range []int{3, 0, 5, 1, 4, 2} {
		sp := specs[i]
		id[i] = Put(t, s, []byte(fmt.Sprint("hold ", i)), heldMessage(sp.rule, sp.sender, sp.ip, sp.user, at(i)), nil)
	}
	commit(t, s, []byte("not a hold"), nil)
	commit(t, s, []byte("not a hold either"), rcpts(1))
	release(t, qs, id[3], explodeTo("a@example.net"), store.Resolution{Actor: "alice", Action: "release-explode"})
	discard(t, qs, id[4], store.HoldDeleted, store.Resolution{Actor: "bob", Action: "delete"})
	discard(t, qs, id[1], store.HoldExpired, store.Resolution{Actor: "bccguard", Action: "expire-delete"})
	pick := func(is ...int) []string {
		out := []string{}
		for _, i := range is {
			out = append(out, id[i])
		}
		return out
	}
	states := func(st ...store.HoldState) []store.HoldState { return st }
	cases := []struct {
		name  string
		f     store.HoldFilter
		want  []string
		total int // 0: len(want)
	}{
		{"all", store.HoldFilter{}, pick(5, 4, 3, 2, 1, 0), 0},
		{"held", store.HoldFilter{States: states(store.HoldHeld)}, pick(5, 2, 0), 0},
		{"held or released", store.HoldFilter{States: states(store.HoldHeld, store.HoldReleased)}, pick(5, 3, 2, 0), 0},
		{"deleted or expired", store.HoldFilter{States: states(store.HoldDeleted, store.HoldExpired)}, pick(4, 1), 0},
		{"rule", store.HoldFilter{Rule: "A"}, pick(5, 3, 2, 0), 0},
		{"other rule", store.HoldFilter{Rule: "B"}, pick(4, 1), 0},
		{"sender any case", store.HoldFilter{Sender: "News@brand.EXAMPLE"}, pick(5, 3, 1, 0), 0},
		{"client IP", store.HoldFilter{ClientIP: "192.0.2.2"}, pick(3, 1), 0},
		{"user", store.HoldFilter{User: "crm"}, pick(5, 4, 2, 0), 0},
		{"held after", store.HoldFilter{HeldAfter: at(1).Add(30 * time.Second)}, pick(5, 4, 3, 2), 0},
		{"held before", store.HoldFilter{HeldBefore: at(2).Add(30 * time.Second)}, pick(2, 1, 0), 0},
		{"between", store.HoldFilter{HeldAfter: at(1).Add(30 * time.Second), HeldBefore: at(4).Add(30 * time.Second)}, pick(4, 3, 2), 0},
		{"strict bounds", store.HoldFilter{HeldAfter: at(1), HeldBefore: at(4)}, pick(3, 2), 0},
		{"combined", store.HoldFilter{States: states(store.HoldHeld), Rule: "A", User: "crm", Sender: "news@brand.example"}, pick(5, 0), 0},
		{"no match", store.HoldFilter{Rule: "nope"}, pick(), 0},
		{"first page", store.HoldFilter{Limit: 2}, pick(5, 4), 6},
		{"second page", store.HoldFilter{Offset: 2, Limit: 2}, pick(3, 2), 6},
		{"last page", store.HoldFilter{Offset: 4, Limit: 4}, pick(1, 0), 6},
		{"past the end", store.HoldFilter{Offset: 6, Limit: 2}, pick(), 6},
		{"far past the end", store.HoldFilter{Offset: 100}, pick(), 6},
		{"filtered page", store.HoldFilter{Rule: "A", Offset: 1, Limit: 2}, pick(3, 2), 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs, total := holds(t, qs, tc.f)
			want := tc.total
			if want == 0 {
				want = len(tc.want)
			}
			if !slices.Equal(holdIDs(hs), tc.want) || total != want {
				t.Fatalf("Holds = %v, total %d; want %v, total %d", holdIDs(hs), total, tc.want, want)
			}
			for _, h := range hs {
				checkHold(t, "listed hold", h, getHold(t, qs, h.Message.ID))
			}
		})
	}
	hs, _ := holds(t, qs, store.HoldFilter{})
	for i, h := range hs {
		if h.Message.Quarantine == nil || h.Message.Envelope.Sender != specs[5-i].sender || h.Message.Client.IP != specs[5-i].ip {
			t.Fatalf("listed hold %s = %+v: record incomplete", h.Message.ID, h.Message)
		}
		if (h.State == store.HoldHeld) != (h.Resolution == nil) {
			t.Fatalf("listed hold %s in state %s with resolution %+v", h.Message.ID, h.State, h.Resolution)
		}
	}
}

// testPageLimits: Holds and Audit return 100 items by default and never
// more than 1000.
func testPageLimits(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	qs := qstore(t, s)
	const n = 1005
	base := now().Add(-time.Hour)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for g := range 16 {
		wg.Go(func() {
			for i := g; i < n; i += 16 {
				sp, _, err := s.NewSpool(ctx)
				if err != nil {
					errs <- err
					return
				}
				// Empty bodies: cheap in every backend.
				if _, err := sp.Commit(ctx, heldMessage("r", "a@b.example", "192.0.2.1", "", base.Add(time.Duration(i)*time.Millisecond)), nil); err != nil {
					errs <- err
				}
				if err := qs.AddAudit(ctx, store.AuditEntry{Actor: "a", Action: "approve", Target: fmt.Sprint(i), Outcome: "ok"}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, tc := range []struct{ limit, want int }{{0, 100}, {1, 1}, {5000, 1000}} {
		hs, total := holds(t, qs, store.HoldFilter{Limit: tc.limit})
		if len(hs) != tc.want || total != n {
			t.Fatalf("Holds(Limit %d) = %d holds, total %d; want %d, total %d", tc.limit, len(hs), total, tc.want, n)
		}
		es, err := qs.Audit(ctx, store.AuditFilter{Limit: tc.limit})
		if err != nil || len(es) != tc.want {
			t.Fatalf("Audit(Limit %d) = %d entries, %v; want %d", tc.limit, len(es), err, tc.want)
		}
	}
	hs, total := holds(t, qs, store.HoldFilter{Offset: 1000, Limit: 1000})
	if len(hs) != 5 || total != n || !sameTime(hs[4].Message.ReceivedAt, base) {
		t.Fatalf("Holds(Offset 1000) = %d holds, total %d; want the 5 oldest", len(hs), total)
	}
}

// testApprove: approvals on held messages only, one per actor (updated
// when the actor approves again), no approval lost to a race.
func testApprove(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	qs := qstore(t, s)
	id := commitHeld(t, s, []byte("held"), "four-eyes", now().Add(-time.Hour))
	approve := func(a store.Approval) store.Hold {
		t.Helper()
		h, err := qs.Approve(ctx, id, a)
		if err != nil {
			t.Fatalf("Approve(%+v): %v", a, err)
		}
		checkHold(t, "hold returned by Approve", h, getHold(t, qs, id))
		return h
	}
	t1 := now().Add(-time.Minute)
	want := getHold(t, qs, id)
	want.Approvals = []store.Approval{{Actor: "alice", At: t1, Rewrite: store.RewriteExplode}}
	checkHold(t, "after one approval", approve(want.Approvals[0]), want)
	want.Approvals = append(want.Approvals, store.Approval{Actor: "bob", At: t1.Add(time.Second), Rewrite: store.RewriteBcc})
	checkHold(t, "after two approvals", approve(want.Approvals[1]), want)
	want.Approvals[0] = store.Approval{Actor: "alice", At: t1.Add(2 * time.Second), Rewrite: store.RewriteBcc}
	checkHold(t, "after alice approved again", approve(want.Approvals[0]), want)

	before := now()
	h := approve(store.Approval{Actor: "carol", Rewrite: store.RewriteExplode})
	i := slices.IndexFunc(h.Approvals, func(a store.Approval) bool { return a.Actor == "carol" })
	if len(h.Approvals) != 3 || i < 0 || h.Approvals[i].At.Before(before.Add(-time.Second)) || h.Approvals[i].At.After(time.Now().Add(time.Second)) {
		t.Fatalf("approval without a time: %+v, want it stamped now", h.Approvals)
	}
	if _, err := qs.Approve(ctx, id, store.Approval{Rewrite: store.RewriteExplode}); err == nil {
		t.Fatal("Approve without an actor succeeded")
	}
	if _, err := qs.Approve(ctx, "NOSUCHMESSAGE", store.Approval{Actor: "alice"}); !isNotFound(err) {
		t.Fatalf("Approve of an unknown message = %v, want ErrNotFound", err)
	}

	// Concurrent approvals by different reviewers all count.
	other := commitHeld(t, s, []byte("held"), "four-eyes", now())
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = qs.Approve(ctx, other, store.Approval{Actor: fmt.Sprint("rev", i), Rewrite: store.RewriteExplode})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Approve %d: %v", i, err)
		}
	}
	if h := getHold(t, qs, other); len(h.Approvals) != len(errs) {
		t.Fatalf("%d concurrent approvals stored %d", len(errs), len(h.Approvals))
	}

	// Resolved holds take no approvals, and keep the ones they had.
	release(t, qs, id, explodeTo("a@example.net"), store.Resolution{Actor: "bob", Action: "release-explode"})
	if _, err := qs.Approve(ctx, id, store.Approval{Actor: "dave"}); !errors.Is(err, store.ErrNotHeld) {
		t.Fatalf("Approve of a released hold = %v, want ErrNotHeld", err)
	}
	if h := getHold(t, qs, id); len(h.Approvals) != 3 {
		t.Fatalf("released hold has approvals %+v, want the 3 it had", h.Approvals)
	}
	discard(t, qs, other, store.HoldDeleted, store.Resolution{Actor: "bob", Action: "delete"})
	if _, err := qs.Approve(ctx, other, store.Approval{Actor: "dave"}); !errors.Is(err, store.ErrNotHeld) {
		t.Fatalf("Approve of a deleted hold = %v, want ErrNotHeld", err)
	}
}

// testRelease: Release queues claimable deliveries, as Commit would have;
// the body stays until they are final and is then collected as usual; the
// hold record stays with its resolution.
func testRelease(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	qs := qstore(t, s)
	for i, size := range []int{10, 300 << 10} {
		data := body(size, uint64(20+i))
		id := commitHeld(t, s, data, "many-visible", now().Add(-time.Hour))
		want := getHold(t, qs, id)

		res := store.Resolution{
			Actor: "alice", At: now(), Action: "release-explode",
			Recipients: []string{"a@example.net", "c@example.net"}, Note: "customer survey, approved",
		}
		ds := explodeTo(res.Recipients...)
		before := now()
		release(t, qs, id, ds, res)
		want.State, want.Resolution = store.HoldReleased, &res
		checkHold(t, "released hold", getHold(t, qs, id), want)

		got := deliveriesOf(t, s, id)
		if len(got) != 2 {
			t.Fatalf("release queued %v, want 2 deliveries", deliveryIDs(got))
		}
		for j, d := range got {
			if !safeID.MatchString(d.ID) || d.MessageID != id || d.State != store.StateQueued || d.Attempts != 0 ||
				d.Rewrite != store.RewriteExplode || !sameRecipients(d.Recipients, ds[j].Recipients) {
				t.Fatalf("released delivery %d = %+v, want a queued copy of %+v", j, d, ds[j])
			}
			if d.CreatedAt.Before(before.Add(-time.Second)) || d.NextAttempt.After(time.Now().Add(time.Second)) {
				t.Fatalf("released delivery %d: created %v, next attempt %v; want created and due at release", j, d.CreatedAt, d.NextAttempt)
			}
		}
		if got[0].ID == got[1].ID {
			t.Fatalf("released deliveries share ID %s", got[0].ID)
		}
		if n := pending(t, s); n != 2 {
			t.Fatalf("Stats: %d pending after release, want 2", n)
		}
		if at, ok, err := s.NextDue(ctx); err != nil || !ok || at.After(time.Now().Add(time.Second)) {
			t.Fatalf("NextDue after release = %v, %v, %v; want due now", at, ok, err)
		}
		cs := claim(t, s, "w", now().Add(time.Second), 10)
		if !sameSet(ids(cs), deliveryIDs(got)) {
			t.Fatalf("Claim after release = %v, want %v", ids(cs), deliveryIDs(got))
		}
		for _, c := range cs {
			if d := diffMessage(c.Message, want.Message); d != "" {
				t.Fatalf("claimed message: %s", d)
			}
		}
		equalBytes(t, "released body", readBody(t, s, id), data)
		complete(t, s, "w", cs[0].Delivery.ID, store.Outcome{State: store.StateDelivered})
		equalBytes(t, "released body with a delivery pending", readBody(t, s, id), data)
		complete(t, s, "w", cs[1].Delivery.ID, store.Outcome{State: store.StateBounced, Error: "550 no"})
		expectBodyGone(t, s, id)
		if ds := deliveriesOf(t, s, id); len(ds) != 0 {
			t.Fatalf("deliveries left after collection: %v", deliveryIDs(ds))
		}
		if n := pending(t, s); n != 0 {
			t.Fatalf("Stats: %d pending after delivery", n)
		}
		checkHold(t, "released hold after delivery", getHold(t, qs, id), want)
		if hs, _ := holds(t, qs, store.HoldFilter{States: []store.HoldState{store.HoldReleased}}); !slices.Contains(holdIDs(hs), id) {
			t.Fatalf("Holds(released) = %v, want it to include %s", holdIDs(hs), id)
		}

		err := qs.Release(ctx, id, ds, res)
		wantErr(t, "second Release", err, store.ErrNotHeld)
		err = qs.Discard(ctx, id, store.HoldDeleted, store.Resolution{Actor: "bob", Action: "delete"})
		wantErr(t, "Discard after Release", err, store.ErrNotHeld)
		checkHold(t, "released hold after refused actions", getHold(t, qs, id), want)
		if n := pending(t, s); n != 0 {
			t.Fatalf("Stats: %d pending after a refused second release", n)
		}
	}

	// Bad releases change nothing.
	id := commitHeld(t, s, []byte("held"), "r", now())
	want := getHold(t, qs, id)
	res := store.Resolution{Actor: "alice", Action: "release-explode"}
	bad := invalidPlans()
	bad["no deliveries"] = nil
	for name, ds := range bad {
		err := qs.Release(ctx, id, ds, res)
		if err == nil {
			t.Fatalf("Release with %s succeeded", name)
		}
		if len(ds) > 0 && !errors.Is(err, store.ErrInvalidPlan) {
			t.Errorf("Release with %s = %v, want ErrInvalidPlan", name, err)
		}
		checkHold(t, "hold after a release with "+name, getHold(t, qs, id), want)
		if ds := deliveriesOf(t, s, id); len(ds) != 0 || pending(t, s) != 0 {
			t.Fatalf("release with %s queued %v", name, deliveryIDs(ds))
		}
	}
	err := qs.Release(ctx, "NOSUCHMESSAGE", explodeTo("a@example.net"), res)
	wantErr(t, "Release of an unknown message", err, store.ErrNotFound)
	kept := commit(t, s, []byte("kept, not held"), nil)
	err = qs.Release(ctx, kept, explodeTo("a@example.net"), res)
	wantErr(t, "Release of a message that is not a hold", err, store.ErrNotFound)
}

// testReleaseRace: reviewers acting on one hold at once: exactly one wins,
// the others get ErrNotHeld, and the winner's action is what happened.
func testReleaseRace(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	qs := qstore(t, s)
	const n = 16
	race := func(id string, act func(i int) error) int {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, n)
		start := make(chan struct{})
		for i := range errs {
			wg.Go(func() {
				<-start
				errs[i] = act(i)
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("hold %s: reviewers %d and %d both succeeded", id, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, store.ErrNotHeld):
				t.Fatalf("hold %s: reviewer %d: %v, want nil or ErrNotHeld", id, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("hold %s: no reviewer succeeded", id)
		}
		return winner
	}
	resolution := func(i int) store.Resolution {
		return store.Resolution{Actor: fmt.Sprint("rev", i), Action: "release-explode"}
	}

	// Releases only.
	id := commitHeld(t, s, []byte("race"), "r", now())
	w := race(id, func(i int) error { return qs.Release(ctx, id, rcpts(2), resolution(i)) })
	if h := getHold(t, qs, id); h.State != store.HoldReleased || h.Resolution == nil || h.Resolution.Actor != fmt.Sprint("rev", w) {
		t.Fatalf("after the race: %+v, want released by rev%d", h, w)
	}
	if ds := deliveriesOf(t, s, id); len(ds) != 2 {
		t.Fatalf("after %d racing releases: deliveries %v, want one release's 2", n, deliveryIDs(ds))
	}
	if p := pending(t, s); p != 2 {
		t.Fatalf("Stats: %d pending, want 2", p)
	}

	// Releases against deletes, a few times.
	for round := range 4 {
		id := commitHeld(t, s, body(100+round*100<<10, uint64(round)), "r", now())
		before := pending(t, s)
		w := race(id, func(i int) error {
			if i%2 == 0 {
				return qs.Release(ctx, id, rcpts(1), resolution(i))
			}
			return qs.Discard(ctx, id, store.HoldDeleted, store.Resolution{Actor: fmt.Sprint("rev", i), Action: "delete"})
		})
		h := getHold(t, qs, id)
		if h.Resolution == nil || h.Resolution.Actor != fmt.Sprint("rev", w) {
			t.Fatalf("round %d: resolution %+v, want rev%d's", round, h.Resolution, w)
		}
		if w%2 == 0 {
			if h.State != store.HoldReleased || len(deliveriesOf(t, s, id)) != 1 || pending(t, s) != before+1 {
				t.Fatalf("round %d: release won, but hold is %s with deliveries %v", round, h.State, deliveryIDs(deliveriesOf(t, s, id)))
			}
			readBody(t, s, id)
		} else {
			if h.State != store.HoldDeleted || len(deliveriesOf(t, s, id)) != 0 || pending(t, s) != before {
				t.Fatalf("round %d: delete won, but hold is %s with deliveries %v", round, h.State, deliveryIDs(deliveriesOf(t, s, id)))
			}
			expectBodyGone(t, s, id)
		}
	}
}

// testDiscard: Discard removes the body and keeps the hold record with its
// resolution; nothing can be done with the hold afterwards.
func testDiscard(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	qs := qstore(t, s)
	other := commitHeld(t, s, []byte("another hold"), "r", now().Add(-2*time.Hour))
	queued := commit(t, s, []byte("queued"), rcpts(1))
	for i, size := range []int{10, 300 << 10} {
		for _, st := range []store.HoldState{store.HoldDeleted, store.HoldExpired} {
			data := body(size, uint64(30+i))
			id := commitHeld(t, s, data, "body-list", now().Add(-time.Hour))
			if _, err := qs.Approve(ctx, id, store.Approval{Actor: "carol", At: now(), Rewrite: store.RewriteExplode}); err != nil {
				t.Fatal(err)
			}
			want := getHold(t, qs, id)

			for _, bad := range []store.HoldState{store.HoldHeld, store.HoldReleased, "gone"} {
				if err := qs.Discard(ctx, id, bad, store.Resolution{Actor: "bob", Action: "delete"}); err == nil {
					t.Fatalf("Discard to state %q succeeded", bad)
				}
			}
			checkHold(t, "hold after refused discards", getHold(t, qs, id), want)
			equalBytes(t, "body after refused discards", readBody(t, s, id), data)

			res := store.Resolution{Actor: "bob", At: now(), Action: "delete", Note: "customer list"}
			if st == store.HoldExpired {
				res = store.Resolution{Actor: "bccguard", At: now(), Action: "expire-delete"}
			}
			discard(t, qs, id, st, res)
			want.State, want.Resolution = st, &res
			checkHold(t, "discarded hold", getHold(t, qs, id), want)
			expectBodyGone(t, s, id)
			if ds := deliveriesOf(t, s, id); len(ds) != 0 {
				t.Fatalf("discarded hold has deliveries %v", deliveryIDs(ds))
			}
			if hs, _ := holds(t, qs, store.HoldFilter{States: []store.HoldState{st}}); !slices.Contains(holdIDs(hs), id) {
				t.Fatalf("Holds(%s) = %v, want it to include %s", st, holdIDs(hs), id)
			}

			err := qs.Release(ctx, id, explodeTo("a@example.net"), store.Resolution{Actor: "alice", Action: "release-explode"})
			wantErr(t, "Release of a discarded hold", err, store.ErrNotHeld)
			err = qs.Discard(ctx, id, store.HoldDeleted, store.Resolution{Actor: "alice", Action: "delete"})
			wantErr(t, "second Discard", err, store.ErrNotHeld)
			_, err = qs.Approve(ctx, id, store.Approval{Actor: "alice"})
			wantErr(t, "Approve of a discarded hold", err, store.ErrNotHeld)
			checkHold(t, "discarded hold after refused actions", getHold(t, qs, id), want)
			if ds := deliveriesOf(t, s, id); len(ds) != 0 || pending(t, s) != 1 {
				t.Fatalf("refused release of a discarded hold queued %v", deliveryIDs(ds))
			}
		}
	}
	err := qs.Discard(ctx, "NOSUCHMESSAGE", store.HoldDeleted, store.Resolution{Actor: "bob", Action: "delete"})
	wantErr(t, "Discard of an unknown message", err, store.ErrNotFound)
	err = qs.Discard(ctx, queued, store.HoldDeleted, store.Resolution{Actor: "bob", Action: "delete"})
	wantErr(t, "Discard of a queued message", err, store.ErrNotFound)
	// Others are untouched.
	if h := getHold(t, qs, other); h.State != store.HoldHeld {
		t.Fatalf("other hold is %s", h.State)
	}
	equalBytes(t, "other hold's body", readBody(t, s, other), []byte("another hold"))
	equalBytes(t, "queued body", readBody(t, s, queued), []byte("queued"))
}

func auditIDs(es []store.AuditEntry) []int64 {
	out := []int64{}
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

// testAudit: entries are durable as given, with IDs increasing in append
// order, listed newest first with filters and paging.
func testAudit(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	qs := qstore(t, s)
	audit := func(f store.AuditFilter) []store.AuditEntry {
		t.Helper()
		es, err := qs.Audit(ctx, f)
		if err != nil {
			t.Fatalf("Audit(%+v): %v", f, err)
		}
		return es
	}
	if es := audit(store.AuditFilter{}); len(es) != 0 {
		t.Fatalf("empty store: Audit = %+v", es)
	}
	t0 := now().Add(-4 * time.Hour)
	in := []store.AuditEntry{
		{At: t0.Add(time.Hour), Actor: "alice", Action: "approve", Target: "M1", Outcome: "ok"},
		{At: t0.Add(2 * time.Hour), Actor: "bob", Action: "release-explode", Target: "M1", Outcome: "ok", Detail: "2 recipients"},
		{At: t0.Add(3 * time.Hour), Actor: "alice", Action: "delete", Target: "M2", Outcome: "not held", Detail: "released by bob"},
		{Actor: "bccguard", Action: "bulk-release", Target: "rule=many-visible age>7d", Outcome: "ok", Detail: "12 messages"},
	}
	before := now()
	for _, e := range in {
		if err := qs.AddAudit(ctx, e); err != nil {
			t.Fatalf("AddAudit(%+v): %v", e, err)
		}
	}
	all := audit(store.AuditFilter{})
	if len(all) != len(in) {
		t.Fatalf("Audit = %d entries, want %d", len(all), len(in))
	}
	// all is newest first: all[3-i] is in[i].
	for i, want := range in {
		got := all[len(in)-1-i]
		if got.ID <= 0 || i > 0 && got.ID <= all[len(in)-i].ID {
			t.Fatalf("audit IDs %v: not increasing in append order", auditIDs(all))
		}
		if want.At.IsZero() {
			if got.At.Before(before.Add(-time.Second)) || got.At.After(time.Now().Add(time.Second)) {
				t.Fatalf("entry without a time stamped %v, want about %v", got.At, before)
			}
			want.At = got.At
		}
		want.ID = got.ID
		if got.Actor != want.Actor || got.Action != want.Action || got.Target != want.Target ||
			got.Outcome != want.Outcome || got.Detail != want.Detail || !sameTime(got.At, want.At) {
			t.Fatalf("audit entry %d = %+v, want %+v", i, got, want)
		}
	}
	ix := func(is ...int) []int64 { // IDs of in[i], as listed
		out := []int64{}
		for _, i := range is {
			out = append(out, all[len(in)-1-i].ID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    store.AuditFilter
		want []int64
	}{
		{"actor", store.AuditFilter{Actor: "alice"}, ix(2, 0)},
		{"target", store.AuditFilter{Target: "M1"}, ix(1, 0)},
		{"since, inclusive", store.AuditFilter{Since: t0.Add(2 * time.Hour)}, ix(3, 2, 1)},
		{"actor since", store.AuditFilter{Actor: "alice", Since: t0.Add(90 * time.Minute)}, ix(2)},
		{"no match", store.AuditFilter{Actor: "mallory"}, ix()},
		{"first page", store.AuditFilter{Limit: 2}, ix(3, 2)},
		{"second page", store.AuditFilter{Offset: 1, Limit: 2}, ix(2, 1)},
		{"past the end", store.AuditFilter{Offset: 4}, ix()},
		{"filtered page", store.AuditFilter{Target: "M1", Offset: 1}, ix(0)},
	} {
		if got := auditIDs(audit(tc.f)); !slices.Equal(got, tc.want) {
			t.Fatalf("Audit %s (%+v) = %v, want %v", tc.name, tc.f, got, tc.want)
		}
	}

	// Concurrent appends: none lost, IDs unique, order by ID.
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Go(func() {
			for i := range 4 {
				if err := qs.AddAudit(ctx, store.AuditEntry{Actor: fmt.Sprint("rev", g), Action: "approve", Target: fmt.Sprint("M", i), Outcome: "ok"}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := auditIDs(audit(store.AuditFilter{Limit: 1000}))
	if len(got) != 68 {
		t.Fatalf("Audit after 64 concurrent appends = %d entries, want 68", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i] >= got[i-1] {
			t.Fatalf("Audit IDs %v: not newest (highest) first, or repeated", got)
		}
	}
	if !slices.Equal(got[len(got)-4:], auditIDs(all)) {
		t.Fatalf("Audit IDs %v: the first 4 entries (%v) are not the oldest", got, auditIDs(all))
	}
	if n := len(audit(store.AuditFilter{Actor: "rev3"})); n != 4 {
		t.Fatalf("Audit(actor rev3) = %d entries, want 4", n)
	}
}

// testHoldStats: held messages by rule, and the oldest still held.
func testHoldStats(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	qs := qstore(t, s)
	check := func(want map[string]int, oldest time.Time) {
		t.Helper()
		got, at, err := qs.HoldStats(ctx)
		if err != nil {
			t.Fatalf("HoldStats: %v", err)
		}
		// A rule without held messages may be absent or 0.
		maps.DeleteFunc(got, func(_ string, n int) bool { return n == 0 })
		if !maps.Equal(got, want) || !sameTime(at, oldest) {
			t.Fatalf("HoldStats = %v, oldest %v; want %v, oldest %v", got, at, want, oldest)
		}
	}
	check(map[string]int{}, time.Time{})
	base := now().Add(-24 * time.Hour)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }
	var id []string
	for i, rule := range []string{"A", "B", "A", "A", "B", ""} {
		id = append(id, commitHeld(t, s, []byte("held"), rule, at(i)))
	}
	commit(t, s, []byte("kept"), nil)
	commit(t, s, []byte("queued"), rcpts(1))
	check(map[string]int{"A": 3, "B": 2, "": 1}, at(0))
	discard(t, qs, id[0], store.HoldDeleted, store.Resolution{Actor: "bob", Action: "delete"})
	check(map[string]int{"A": 2, "B": 2, "": 1}, at(1))
	release(t, qs, id[1], explodeTo("a@example.net"), store.Resolution{Actor: "bob", Action: "release-explode"})
	check(map[string]int{"A": 2, "B": 1, "": 1}, at(2))
	discard(t, qs, id[3], store.HoldExpired, store.Resolution{Actor: "bccguard", Action: "expire-delete"})
	check(map[string]int{"A": 1, "B": 1, "": 1}, at(2))
	for _, i := range []int{2, 4, 5} {
		discard(t, qs, id[i], store.HoldDeleted, store.Resolution{Actor: "bob", Action: "delete"})
	}
	check(map[string]int{}, time.Time{})
}

// testHoldsReopen: holds in every state, approvals, resolutions and the
// audit log survive a restart, and work goes on from there.
func testHoldsReopen(t *testing.T, open func(*testing.T) store.Store, cfg config) {
	if cfg.reopen == nil {
		t.Skip("backend gave no WithReopen")
	}
	s := open(t)
	qs := qstore(t, s)
	base := now().Add(-time.Hour)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }
	data := map[int][]byte{0: []byte("held"), 1: body(300<<10, 40), 2: []byte("released, one pending"), 3: []byte("released, delivered"), 4: []byte("deleted"), 5: body(300<<10, 41)}
	id := make([]string, 6)
	for i := range id {
		id[i] = commitHeld(t, s, data[i], fmt.Sprint("rule", i%2), at(i))
	}
	if _, err := qs.Approve(ctx, id[0], store.Approval{Actor: "alice", At: now(), Rewrite: store.RewriteBcc}); err != nil {
		t.Fatal(err)
	}
	release(t, qs, id[2], explodeTo("a@example.net", "b@example.org"), store.Resolution{Actor: "alice", At: now(), Action: "release-explode", Recipients: []string{"a@example.net", "b@example.org"}})
	release(t, qs, id[3], explodeTo("c@example.net"), store.Resolution{Actor: "bob", At: now(), Action: "release-as-is", Note: "forced"})
	for _, c := range claim(t, s, "w", now().Add(time.Second), 10) {
		if c.Message.ID == id[3] || c.Delivery.Recipients[0].Addr == "a@example.net" {
			complete(t, s, "w", c.Delivery.ID, store.Outcome{State: store.StateDelivered})
		}
	}
	discard(t, qs, id[4], store.HoldDeleted, store.Resolution{Actor: "bob", At: now(), Action: "delete"})
	discard(t, qs, id[5], store.HoldExpired, store.Resolution{Actor: "bccguard", At: now(), Action: "expire-delete"})
	for i := range 3 {
		if err := qs.AddAudit(ctx, store.AuditEntry{Actor: "alice", Action: "approve", Target: id[i], Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}

	type snap struct {
		holds []store.Hold
		total int
		audit []store.AuditEntry
		stats map[string]int
		old   time.Time
		dels  []store.Delivery
	}
	take := func(qs store.QuarantineStore, s store.Store) snap {
		t.Helper()
		var sn snap
		sn.holds, sn.total = holds(t, qs, store.HoldFilter{})
		var err error
		if sn.audit, err = qs.Audit(ctx, store.AuditFilter{}); err != nil {
			t.Fatal(err)
		}
		if sn.stats, sn.old, err = qs.HoldStats(ctx); err != nil {
			t.Fatal(err)
		}
		sn.dels = list(t, s, store.Filter{})
		return sn
	}
	before := take(qs, s)
	// Deliveries: both of id[2] (one delivered, one queued); id[3] is collected.
	if before.total != 6 || len(before.audit) != 3 || len(before.dels) != 2 {
		t.Fatalf("before reopen: %d holds, %d audit entries, %d deliveries; want 6, 3, 2", before.total, len(before.audit), len(before.dels))
	}

	s = cfg.reopen(t, s)
	qs = qstore(t, s)
	after := take(qs, s)
	if !slices.Equal(holdIDs(after.holds), holdIDs(before.holds)) || after.total != before.total {
		t.Fatalf("after reopen: holds %v (total %d), want %v (total %d)", holdIDs(after.holds), after.total, holdIDs(before.holds), before.total)
	}
	for i := range before.holds {
		checkHold(t, "hold after reopen", after.holds[i], before.holds[i])
	}
	if len(after.audit) != len(before.audit) {
		t.Fatalf("after reopen: %d audit entries, want %d", len(after.audit), len(before.audit))
	}
	for i, e := range before.audit {
		g := after.audit[i]
		if g.ID != e.ID || g.Actor != e.Actor || g.Action != e.Action || g.Target != e.Target || g.Outcome != e.Outcome || !sameTime(g.At, e.At) {
			t.Fatalf("audit entry after reopen: %+v, want %+v", g, e)
		}
	}
	if !maps.Equal(after.stats, before.stats) || !sameTime(after.old, before.old) {
		t.Fatalf("HoldStats after reopen: %v %v, want %v %v", after.stats, after.old, before.stats, before.old)
	}
	if !slices.Equal(deliveryIDs(after.dels), deliveryIDs(before.dels)) {
		t.Fatalf("deliveries after reopen: %v, want %v", deliveryIDs(after.dels), deliveryIDs(before.dels))
	}
	for _, i := range []int{0, 1, 2} {
		equalBytes(t, fmt.Sprint("body of hold ", i, " after reopen"), readBody(t, s, id[i]), data[i])
	}
	for _, i := range []int{3, 4, 5} {
		expectBodyGone(t, s, id[i])
	}

	// Work goes on: the held one is released, the pending delivery is
	// claimable, the audit log keeps counting up.
	release(t, qs, id[1], explodeTo("a@example.net"), store.Resolution{Actor: "carol", Action: "release-bcc"})
	cs := claim(t, s, "w2", now().Add(time.Second), 10)
	if len(cs) != 2 {
		t.Fatalf("after reopen and release, Claim = %v, want 2 deliveries", ids(cs))
	}
	for _, c := range cs {
		complete(t, s, "w2", c.Delivery.ID, store.Outcome{State: store.StateDelivered})
	}
	expectBodyGone(t, s, id[1])
	expectBodyGone(t, s, id[2])
	if err := qs.AddAudit(ctx, store.AuditEntry{Actor: "carol", Action: "release-bcc", Target: id[1], Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	es, err := qs.Audit(ctx, store.AuditFilter{Limit: 1})
	if err != nil || len(es) != 1 || es[0].ID <= before.audit[0].ID || es[0].Actor != "carol" {
		t.Fatalf("Audit after reopen = %+v, %v; want carol's entry with an ID above %d", es, err, before.audit[0].ID)
	}
	s = cfg.reopen(t, s)
	qs = qstore(t, s)
	if h := getHold(t, qs, id[1]); h.State != store.HoldReleased || h.Resolution == nil || h.Resolution.Actor != "carol" {
		t.Fatalf("after second reopen: %+v", h)
	}
	if h := getHold(t, qs, id[0]); h.State != store.HoldHeld || len(h.Approvals) != 1 {
		t.Fatalf("after second reopen: %+v", h)
	}
}

// testQuarantineClosed: after Close every review operation fails with
// ErrClosed.
func testQuarantineClosed(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	qs := qstore(t, s)
	id := commitHeld(t, s, []byte("held"), "r", now())
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	res := store.Resolution{Actor: "a", Action: "delete"}
	_, _, err := qs.Holds(ctx, store.HoldFilter{})
	wantErr(t, "Holds after Close", err, store.ErrClosed)
	_, err = qs.Hold(ctx, id)
	wantErr(t, "Hold after Close", err, store.ErrClosed)
	_, err = qs.Approve(ctx, id, store.Approval{Actor: "a"})
	wantErr(t, "Approve after Close", err, store.ErrClosed)
	err = qs.Release(ctx, id, explodeTo("a@example.net"), res)
	wantErr(t, "Release after Close", err, store.ErrClosed)
	err = qs.Discard(ctx, id, store.HoldDeleted, res)
	wantErr(t, "Discard after Close", err, store.ErrClosed)
	err = qs.AddAudit(ctx, store.AuditEntry{Actor: "a", Action: "delete"})
	wantErr(t, "AddAudit after Close", err, store.ErrClosed)
	_, err = qs.Audit(ctx, store.AuditFilter{})
	wantErr(t, "Audit after Close", err, store.ErrClosed)
	_, _, err = qs.HoldStats(ctx)
	wantErr(t, "HoldStats after Close", err, store.ErrClosed)
}
