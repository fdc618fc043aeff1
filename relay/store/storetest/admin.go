package storetest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bccguard/bccguard/relay/store"
)

// The queue administration (store.QueueAdmin): hold, release, requeue,
// delete and bulk selection of queued messages.

func qadmin(t *testing.T, s store.Store) store.QueueAdmin {
	t.Helper()
	qa, ok := s.(store.QueueAdmin)
	if !ok {
		t.Fatalf("%T does not implement store.QueueAdmin", s)
	}
	return qa
}

func stats(t *testing.T, s store.Store) store.Stats {
	t.Helper()
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st
}

func byID(ds []store.Delivery) map[string]store.Delivery {
	m := map[string]store.Delivery{}
	for _, d := range ds {
		m[d.ID] = d
	}
	return m
}

// testQueueHold: a hold takes a message's pending deliveries out of the
// queue (not claimable, not due, not pending) until it is released; an
// attempt in flight still records a final outcome, and one that defers
// leaves its delivery held. Release counts the time held in HeldFor.
func testQueueHold(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	qa := qadmin(t, s)
	m := commit(t, s, []byte("hold me"), rcpts(3))
	other := commit(t, s, []byte("not me"), rcpts(1))
	t0 := now().Add(time.Second)
	inFlight := claim(t, s, "w", t0, 2) // two of m's, leased
	if len(inFlight) != 2 || inFlight[0].Message.ID != m || inFlight[1].Message.ID != m {
		t.Fatalf("Claim = %v, want two deliveries of %s", ids(inFlight), m)
	}
	n, err := qa.HoldQueued(ctx, m, t0)
	if err != nil || n != 3 {
		t.Fatalf("HoldQueued(%s) = %d, %v; want 3 held", m, n, err)
	}
	if n, err := qa.HoldQueued(ctx, m, t0); err != nil || n != 0 {
		t.Fatalf("second HoldQueued = %d, %v; want 0 (nothing left to hold)", n, err)
	}
	for _, d := range deliveriesOf(t, s, m) {
		if d.State != store.StateHeld || !sameTime(d.HeldSince, t0) {
			t.Fatalf("after hold: %s is %s since %v, want held since %v", d.ID, d.State, d.HeldSince, t0)
		}
	}
	if st := stats(t, s); st.Pending != 1 || st.Held != 3 {
		t.Fatalf("Stats after hold = %+v, want 1 pending (%s), 3 held", st, other)
	}
	later := t0.Add(48 * time.Hour)
	got := claim(t, s, "x", later, 10)
	if len(got) != 1 || got[0].Message.ID != other {
		t.Fatalf("Claim with %s held = %v, want only the delivery of %s", m, ids(got), other)
	}
	complete(t, s, "x", got[0].Delivery.ID, store.Outcome{State: store.StateDelivered})
	if at, ok, err := s.NextDue(ctx); err != nil || ok {
		t.Fatalf("NextDue with only held deliveries = %v, %v, %v; want nothing due", at, ok, err)
	}
	if hs := list(t, s, store.Filter{States: []store.State{store.StateHeld}}); len(hs) != 3 {
		t.Fatalf("List(held) = %v, want the 3 of %s", deliveryIDs(hs), m)
	}
	if qs := list(t, s, store.Filter{States: []store.State{store.StateQueued, store.StateDeferred}}); len(qs) != 0 {
		t.Fatalf("List(queued, deferred) = %v with everything held", deliveryIDs(qs))
	}

	// The attempts in flight end: one delivered, one deferred.
	complete(t, s, "w", inFlight[0].Delivery.ID, store.Outcome{State: store.StateDelivered})
	complete(t, s, "w", inFlight[1].Delivery.ID, store.Outcome{State: store.StateDeferred, NextAttempt: t0.Add(time.Minute), Error: "451 later"})
	ds := byID(deliveriesOf(t, s, m))
	if d := ds[inFlight[0].Delivery.ID]; d.State != store.StateDelivered {
		t.Fatalf("held delivery whose attempt succeeded is %s, want delivered (it has gone)", d.State)
	}
	if d := ds[inFlight[1].Delivery.ID]; d.State != store.StateHeld || d.Attempts != 1 || d.LastError != "451 later" {
		t.Fatalf("held delivery whose attempt deferred: %+v, want still held, 1 attempt, the reply kept", d)
	}
	if st := stats(t, s); st.Pending != 0 || st.Held != 2 {
		t.Fatalf("Stats = %+v, want 0 pending, 2 held", st)
	}

	rel := t0.Add(time.Hour)
	if n, err := qa.ReleaseQueued(ctx, m, rel); err != nil || n != 2 {
		t.Fatalf("ReleaseQueued = %d, %v; want 2", n, err)
	}
	for _, d := range deliveriesOf(t, s, m) {
		if d.State == store.StateDelivered {
			continue
		}
		if d.State != store.StateQueued || !d.HeldSince.IsZero() || d.HeldFor != time.Hour || d.NextAttempt.After(rel) {
			t.Fatalf("released delivery %+v, want queued, due by %v, held for 1h", d, rel)
		}
	}
	if st := stats(t, s); st.Pending != 2 || st.Held != 0 {
		t.Fatalf("Stats after release = %+v, want 2 pending, 0 held", st)
	}
	if got := claim(t, s, "y", rel, 10); len(got) != 2 {
		t.Fatalf("Claim after release = %v, want the 2 released deliveries", ids(got))
	}
}

// testQueueRequeue: requeue makes every unfinished delivery of a message
// queued and due now with its attempts back at zero, held ones included.
func testQueueRequeue(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	qa := qadmin(t, s)
	m := commit(t, s, []byte("again"), rcpts(3))
	t0 := now().Add(time.Second)
	for i, c := range claim(t, s, "w", t0, 3) {
		out := store.Outcome{State: store.StateDeferred, NextAttempt: t0.Add(time.Hour), Error: "451 busy"}
		if i == 0 {
			out = store.Outcome{State: store.StateBounced, Error: "550 no"}
		}
		complete(t, s, "w", c.Delivery.ID, out)
	}
	held := deliveriesOf(t, s, m)[2].ID
	// Held deliveries are requeued (and released) too.
	if n, err := qa.HoldQueued(ctx, m, t0); err != nil || n != 2 {
		t.Fatalf("HoldQueued = %d, %v; want 2", n, err)
	}
	t1 := t0.Add(10 * time.Minute)
	if n, err := qa.Requeue(ctx, m, t1); err != nil || n != 2 {
		t.Fatalf("Requeue = %d, %v; want 2 (the bounced one is final)", n, err)
	}
	for _, d := range deliveriesOf(t, s, m) {
		if d.State == store.StateBounced {
			continue
		}
		if d.State != store.StateQueued || d.Attempts != 0 || d.NextAttempt.After(t1) || d.LastError != "451 busy" || d.HeldFor != 10*time.Minute {
			t.Fatalf("requeued %s: %+v, want queued, 0 attempts, due by %v, last error kept, held 10m", d.ID, d, t1)
		}
	}
	got := claim(t, s, "x", t1, 10)
	if len(got) != 2 || !slices.Contains(ids(got), held) {
		t.Fatalf("Claim after requeue = %v, want both unfinished deliveries", ids(got))
	}
	for _, c := range got {
		complete(t, s, "x", c.Delivery.ID, store.Outcome{State: store.StateDeferred, NextAttempt: t1.Add(time.Hour)})
	}
	// Deferred (not held) deliveries are requeued too.
	if n, err := qa.Requeue(ctx, m, t1); err != nil || n != 2 {
		t.Fatalf("Requeue of deferred deliveries = %d, %v; want 2", n, err)
	}
	if st := stats(t, s); st.Pending != 2 || st.Deferred != 0 || st.Held != 0 {
		t.Fatalf("Stats after requeue = %+v, want 2 pending, none deferred or held", st)
	}
}

// testQueueDelete: delete removes a message, its deliveries and body, and
// returns the unfinished deliveries; an attempt in flight cannot record
// its outcome afterwards.
func testQueueDelete(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	qa := qadmin(t, s)
	for _, size := range []int{100, 300 << 10} { // inline and spilled bodies
		m := commit(t, s, body(size, 3), rcpts(3))
		keep := commit(t, s, []byte("keep"), rcpts(1))
		t0 := now().Add(time.Second)
		cs := claim(t, s, "w", t0, 2)
		complete(t, s, "w", cs[0].Delivery.ID, store.Outcome{State: store.StateDelivered})
		if _, err := qa.HoldQueued(ctx, m, t0); err != nil {
			t.Fatal(err)
		}
		gone, err := qa.DeleteQueued(ctx, m)
		if err != nil {
			t.Fatalf("DeleteQueued(%s): %v", m, err)
		}
		if len(gone) != 2 || gone[0].State != store.StateHeld || gone[0].MessageID != m {
			t.Fatalf("DeleteQueued returned %+v, want the 2 unfinished (held) deliveries", gone)
		}
		if _, err := s.Message(ctx, m); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Message after delete: %v, want ErrNotFound", err)
		}
		if _, err := s.Open(ctx, m); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Open after delete: %v, want ErrNotFound", err)
		}
		if ds := deliveriesOf(t, s, m); len(ds) != 0 {
			t.Fatalf("deliveries after delete: %v", deliveryIDs(ds))
		}
		err = s.Complete(ctx, "w", cs[1].Delivery.ID, store.Outcome{State: store.StateDelivered})
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("Complete of a deleted delivery: %v, want ErrNotFound or ErrLeaseLost", err)
		}
		if st := stats(t, s); st.Pending != 1 || st.Held != 0 {
			t.Fatalf("Stats after delete = %+v, want 1 pending (%s)", st, keep)
		}
		if _, err := qa.DeleteQueued(ctx, m); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second DeleteQueued: %v, want ErrNotFound", err)
		}
		for _, c := range claim(t, s, "x", t0, 10) {
			complete(t, s, "x", c.Delivery.ID, store.Outcome{State: store.StateDelivered})
		}
	}
}

// testQueueUnknown: every action refuses an unknown message with
// ErrNotFound and a quarantine hold (no deliveries) with ErrNotQueued,
// changing nothing.
func testQueueUnknown(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	qa := qadmin(t, s)
	hold := Put(t, s, []byte("for review"), heldMessage("r", "a@example.com", "192.0.2.1", "", now()), nil)
	t0 := now()
	for _, c := range []struct {
		id   string
		want error
	}{{"NOSUCHMESSAGE", store.ErrNotFound}, {hold, store.ErrNotQueued}} {
		for name, op := range map[string]func() error{
			"HoldQueued":    func() error { _, err := qa.HoldQueued(ctx, c.id, t0); return err },
			"ReleaseQueued": func() error { _, err := qa.ReleaseQueued(ctx, c.id, t0); return err },
			"Requeue":       func() error { _, err := qa.Requeue(ctx, c.id, t0); return err },
			"DeleteQueued":  func() error { _, err := qa.DeleteQueued(ctx, c.id); return err },
		} {
			if err := op(); !errors.Is(err, c.want) {
				t.Errorf("%s(%s): %v, want %v", name, c.id, err, c.want)
			}
		}
	}
	if _, err := qstore(t, s).Hold(ctx, hold); err != nil {
		t.Fatalf("the quarantine hold after refused queue actions: %v", err)
	}
	readBody(t, s, hold)
}

// testQueuedMessages: bulk selection by state and sender, oldest first.
func testQueuedMessages(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	qa := qadmin(t, s)
	msg := func(sender string) store.Message {
		m := testMessage()
		m.Envelope.Sender = sender
		return m
	}
	t0 := now().Add(time.Second)
	m1 := Put(t, s, []byte("1"), msg("alice@example.com"), rcpts(1))
	time.Sleep(2 * time.Millisecond)
	m2 := Put(t, s, []byte("2"), msg("Bob@Example.NET"), rcpts(2))
	time.Sleep(2 * time.Millisecond)
	m3 := Put(t, s, []byte("3"), msg(""), rcpts(1))
	time.Sleep(2 * time.Millisecond)
	Put(t, s, []byte("q"), heldMessage("r", "bob@example.net", "192.0.2.1", "", now()), nil)
	for _, c := range claim(t, s, "w", t0, 10) {
		if c.Message.ID == m2 {
			complete(t, s, "w", c.Delivery.ID, store.Outcome{State: store.StateDeferred, NextAttempt: t0.Add(time.Hour)})
		} else {
			complete(t, s, "w", c.Delivery.ID, store.Outcome{State: store.StateDeferred, NextAttempt: t0})
		}
	}
	if _, err := qa.HoldQueued(ctx, m3, t0); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		f    store.QueueFilter
		want []string
	}{
		{"all", store.QueueFilter{}, []string{m1, m2, m3}},
		{"limit", store.QueueFilter{Limit: 2}, []string{m1, m2}},
		{"deferred", store.QueueFilter{States: []store.State{store.StateDeferred}}, []string{m1, m2}},
		{"held", store.QueueFilter{States: []store.State{store.StateHeld}}, []string{m3}},
		{"queued", store.QueueFilter{States: []store.State{store.StateQueued}}, nil},
		{"sender, any case", store.QueueFilter{Sender: "bob@example.net"}, []string{m2}},
		{"sender and state", store.QueueFilter{Sender: "bob@example.net", States: []store.State{store.StateHeld}}, nil},
		{"null sender", store.QueueFilter{NullSender: true}, []string{m3}},
		{"no such sender", store.QueueFilter{Sender: "carol@example.org"}, nil},
	} {
		got, err := qa.QueuedMessages(ctx, c.f)
		if err != nil {
			t.Fatalf("%s: QueuedMessages(%+v): %v", c.name, c.f, err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: QueuedMessages(%+v) = %v, want %v", c.name, c.f, got, c.want)
		}
	}
}

// testQueueHoldReopen: held deliveries stay held, out of the queue, over a
// restart, and can be released after it.
func testQueueHoldReopen(t *testing.T, open func(*testing.T) store.Store, cfg config) {
	if cfg.reopen == nil {
		t.Skip("backend gave no WithReopen")
	}
	s := open(t)
	m := commit(t, s, []byte("held over a restart"), rcpts(2))
	t0 := now()
	if _, err := qadmin(t, s).HoldQueued(ctx, m, t0); err != nil {
		t.Fatal(err)
	}
	s = cfg.reopen(t, s)
	if st := stats(t, s); st.Pending != 0 || st.Held != 2 {
		t.Fatalf("Stats after reopen = %+v, want 2 held, none pending", st)
	}
	if got := claim(t, s, "w", t0.Add(time.Hour), 10); len(got) != 0 {
		t.Fatalf("Claim after reopen = %v, want nothing (held)", ids(got))
	}
	if n, err := qadmin(t, s).ReleaseQueued(ctx, m, t0.Add(time.Hour)); err != nil || n != 2 {
		t.Fatalf("ReleaseQueued after reopen = %d, %v", n, err)
	}
	if got := claim(t, s, "w", t0.Add(time.Hour), 10); len(got) != 2 {
		t.Fatalf("Claim after release = %v, want 2", ids(got))
	}
}

// testQueueAdminRace: concurrent holds, releases and deletes of one
// message with claims and completions around them leave the counters in
// step with the deliveries, and never panic or deadlock.
func testQueueAdminRace(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	qa := qadmin(t, s)
	var msgs []string
	for range 8 {
		msgs = append(msgs, commit(t, s, []byte("race"), rcpts(4)))
	}
	t0 := now()
	var wg sync.WaitGroup
	for i, m := range msgs {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := range 5 {
				var err error
				switch (i + j) % 4 {
				case 0:
					_, err = qa.HoldQueued(ctx, m, t0)
				case 1:
					_, err = qa.ReleaseQueued(ctx, m, t0)
				case 2:
					_, err = qa.Requeue(ctx, m, t0)
				default:
					if i%2 == 0 {
						_, err = qa.DeleteQueued(ctx, m)
					}
				}
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					t.Errorf("queue action on %s: %v", m, err)
				}
			}
		}()
		go func() {
			defer wg.Done()
			owner := "w" + m
			for range 5 {
				cs, err := s.Claim(ctx, owner, t0, 2, time.Minute)
				if err != nil {
					t.Errorf("Claim: %v", err)
					return
				}
				for _, c := range cs {
					err := s.Complete(ctx, owner, c.Delivery.ID, store.Outcome{State: store.StateDeferred, NextAttempt: t0})
					if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrLeaseLost) {
						t.Errorf("Complete: %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	var queued, deferred, held int
	for _, d := range list(t, s, store.Filter{}) {
		switch d.State {
		case store.StateQueued:
			queued++
		case store.StateDeferred:
			deferred++
		case store.StateHeld:
			held++
		}
	}
	if st := stats(t, s); st.Pending != queued+deferred || st.Deferred != deferred || st.Held != held {
		t.Fatalf("Stats = %+v, but List has %d queued, %d deferred, %d held", st, queued, deferred, held)
	}
}
