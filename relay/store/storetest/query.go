package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/bccguard/bccguard/relay/store"
)

// testFlush: Flush makes matching deferred deliveries due now, counts
// them, and leaves others alone.
func testFlush(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	m1 := commit(t, s, []byte("one"), rcpts(2))
	m2 := commit(t, s, []byte("two"), rcpts(1))
	t0 := now().Add(time.Second)
	for _, c := range claim(t, s, "a", t0, 10) {
		complete(t, s, "a", c.Delivery.ID, store.Outcome{State: store.StateDeferred, NextAttempt: t0.Add(time.Hour)})
	}
	count := func(f store.Filter) int {
		t.Helper()
		n, err := s.Flush(ctx, f, t0)
		if err != nil {
			t.Fatalf("Flush(%+v): %v", f, err)
		}
		return n
	}
	if n := count(store.Filter{States: []store.State{store.StateQueued}}); n != 0 {
		t.Fatalf("Flush of queued deliveries changed %d", n)
	}
	if n := count(store.Filter{MessageID: m1}); n != 2 {
		t.Fatalf("Flush of %s changed %d, want 2", m1, n)
	}
	got := claim(t, s, "b", t0, 10)
	if len(got) != 2 || got[0].Message.ID != m1 || got[1].Message.ID != m1 {
		t.Fatalf("after Flush of %s, Claim = %v", m1, ids(got))
	}
	for _, d := range deliveriesOf(t, s, m1) {
		if d.State != store.StateDeferred || d.Attempts != 1 || d.NextAttempt.After(t0) {
			t.Fatalf("flushed delivery = %+v, want deferred, 1 attempt, due at %v", d, t0)
		}
	}
	if n := count(store.Filter{States: []store.State{store.StateDeferred}}); n != 1 {
		t.Fatalf("Flush of all deferred changed %d, want 1 (%s)", n, m2)
	}
	if n := count(store.Filter{}); n != 0 {
		t.Fatalf("second Flush changed %d, want 0", n)
	}
	if got := claim(t, s, "c", t0, 10); len(got) != 1 || got[0].Message.ID != m2 {
		t.Fatalf("after Flush, Claim = %v, want the delivery of %s", ids(got), m2)
	}
}

// testList: filters by state, message and limit, oldest first.
func testList(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	m1 := commit(t, s, []byte("one"), rcpts(3))
	time.Sleep(2 * time.Millisecond)
	m2 := commit(t, s, []byte("two"), rcpts(1))
	commit(t, s, []byte("held"), nil)
	d1 := deliveriesOf(t, s, m1)
	if len(d1) != 3 {
		t.Fatalf("List(MessageID %s) = %v", m1, deliveryIDs(d1))
	}
	t0 := now().Add(time.Second)
	cs := claim(t, s, "a", t0, 2) // the two oldest: deliveries of m1
	complete(t, s, "a", cs[0].Delivery.ID, store.Outcome{State: store.StateDelivered})
	complete(t, s, "a", cs[1].Delivery.ID, store.Outcome{State: store.StateDeferred, NextAttempt: t0.Add(time.Hour)})
	var queuedOfM1 string
	for _, d := range d1 {
		if d.ID != cs[0].Delivery.ID && d.ID != cs[1].Delivery.ID {
			queuedOfM1 = d.ID
		}
	}
	m2d := deliveriesOf(t, s, m2)[0].ID

	cases := []struct {
		name    string
		f       store.Filter
		want    []string
		ordered bool // else only the message order is checked
	}{
		{"all", store.Filter{}, append(deliveryIDs(d1), m2d), false},
		{"queued", store.Filter{States: []store.State{store.StateQueued}}, []string{queuedOfM1, m2d}, true},
		{"deferred", store.Filter{States: []store.State{store.StateDeferred}}, []string{cs[1].Delivery.ID}, true},
		{"delivered", store.Filter{States: []store.State{store.StateDelivered}}, []string{cs[0].Delivery.ID}, true},
		{"pending", store.Filter{States: []store.State{store.StateQueued, store.StateDeferred}}, []string{cs[1].Delivery.ID, queuedOfM1, m2d}, false},
		{"message", store.Filter{MessageID: m2}, []string{m2d}, true},
		{"message and state", store.Filter{MessageID: m1, States: []store.State{store.StateDeferred, store.StateBounced}}, []string{cs[1].Delivery.ID}, true},
		{"no match", store.Filter{MessageID: m2, States: []store.State{store.StateDelivered}}, nil, true},
		{"limit", store.Filter{Limit: 3}, deliveryIDs(d1), false},
		{"pending limit", store.Filter{States: []store.State{store.StateQueued, store.StateDeferred}, Limit: 1}, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := list(t, s, tc.f)
			if tc.name == "pending limit" {
				if len(got) != 1 || got[0].MessageID != m1 {
					t.Fatalf("List = %v, want one pending delivery of %s", deliveryIDs(got), m1)
				}
				return
			}
			if tc.ordered && !slices.Equal(deliveryIDs(got), tc.want) || !sameSet(deliveryIDs(got), tc.want) {
				t.Fatalf("List = %v, want %v", deliveryIDs(got), tc.want)
			}
			// Oldest first: all of m1 before m2.
			seenM2 := false
			for _, d := range got {
				seenM2 = seenM2 || d.MessageID == m2
				if seenM2 && d.MessageID == m1 {
					t.Fatalf("List = %v: not oldest first", deliveryIDs(got))
				}
			}
		})
	}
}

// testStats: counts of pending and deferred deliveries and the creation
// time of the oldest pending one.
func testStats(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	stats := func() store.Stats {
		t.Helper()
		st, err := s.Stats(ctx)
		if err != nil {
			t.Fatalf("Stats: %v", err)
		}
		return st
	}
	if st := stats(); st.Pending != 0 || st.Deferred != 0 || !st.Oldest.IsZero() {
		t.Fatalf("empty store: Stats = %+v", st)
	}
	m1 := commit(t, s, []byte("one"), rcpts(2))
	time.Sleep(2 * time.Millisecond)
	commit(t, s, []byte("two"), rcpts(3))
	commit(t, s, []byte("held"), nil)
	oldest := deliveriesOf(t, s, m1)[0].CreatedAt
	if st := stats(); st.Pending != 5 || st.Deferred != 0 || !sameTime(st.Oldest, oldest) {
		t.Fatalf("Stats = %+v, want 5 pending, 0 deferred, oldest %v", st, oldest)
	}
	t0 := now().Add(time.Second)
	cs := claim(t, s, "a", t0, 3)
	complete(t, s, "a", cs[0].Delivery.ID, store.Outcome{State: store.StateDelivered})
	complete(t, s, "a", cs[1].Delivery.ID, store.Outcome{State: store.StateBounced})
	complete(t, s, "a", cs[2].Delivery.ID, store.Outcome{State: store.StateDeferred, NextAttempt: t0.Add(time.Hour)})
	st := stats()
	if st.Pending != 3 || st.Deferred != 1 || !st.Oldest.After(oldest) {
		t.Fatalf("Stats = %+v, want 3 pending, 1 deferred, oldest after %v (m1 is done)", st, oldest)
	}
	for _, c := range claim(t, s, "b", t0.Add(2*time.Hour), 10) {
		complete(t, s, "b", c.Delivery.ID, store.Outcome{State: store.StateExpired})
	}
	if st := stats(); st.Pending != 0 || st.Deferred != 0 || !st.Oldest.IsZero() {
		t.Fatalf("all final: Stats = %+v", st)
	}
}

// testNextDue: the earliest time Claim can return something.
func testNextDue(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	nextDue := func() (time.Time, bool) {
		t.Helper()
		at, ok, err := s.NextDue(ctx)
		if err != nil {
			t.Fatalf("NextDue: %v", err)
		}
		return at, ok
	}
	if _, ok := nextDue(); ok {
		t.Fatal("NextDue on an empty store reports a delivery")
	}
	commit(t, s, []byte("x"), rcpts(1))
	if at, ok := nextDue(); !ok || at.After(time.Now()) {
		t.Fatalf("NextDue = %v, %v; want due now", at, ok)
	}
	t0 := now()
	cs, err := s.Claim(ctx, "a", t0, 1, time.Hour)
	if err != nil || len(cs) != 1 {
		t.Fatalf("Claim = %v, %v", cs, err)
	}
	// Leased: not claimable before the lease ends, so NextDue must not
	// send workers to claim it now (they would find nothing, in a loop).
	if at, ok := nextDue(); ok && at.Before(t0.Add(time.Hour-time.Second)) {
		t.Fatalf("NextDue = %v while the only delivery is leased until %v", at, cs[0].LeaseUntil)
	}
	next := t0.Add(30 * time.Minute)
	complete(t, s, "a", cs[0].Delivery.ID, store.Outcome{State: store.StateDeferred, NextAttempt: next})
	if at, ok := nextDue(); !ok || !sameTime(at, next) {
		t.Fatalf("NextDue = %v, %v; want %v", at, ok, next)
	}
	commit(t, s, []byte("y"), rcpts(1))
	if at, ok := nextDue(); !ok || at.After(time.Now()) {
		t.Fatalf("NextDue with a new message = %v, %v; want due now", at, ok)
	}
}

// testCollect: once every delivery of a message is final, the message and
// its body are gone; not before.
func testCollect(t *testing.T, open func(*testing.T) store.Store, _ config) {
	for _, size := range []int{100, 1 << 20} {
		s := open(t)
		data := body(size, 5)
		msg := commit(t, s, data, rcpts(2))
		t0 := now().Add(time.Second)
		cs := claim(t, s, "a", t0, 2)
		complete(t, s, "a", cs[0].Delivery.ID, store.Outcome{State: store.StateBounced, Error: "550 no"})
		equalBytes(t, "body with one delivery pending", readBody(t, s, msg), data)
		if _, err := s.Message(ctx, msg); err != nil {
			t.Fatalf("Message with one delivery pending: %v", err)
		}
		complete(t, s, "a", cs[1].Delivery.ID, store.Outcome{State: store.StateDelivered})
		expectAbsent(t, s, msg)
		if ds := list(t, s, store.Filter{}); len(ds) != 0 {
			t.Fatalf("deliveries left after collection: %v", deliveryIDs(ds))
		}
	}
}
