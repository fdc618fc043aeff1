package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bccguard/bccguard/relay/store"
)

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// testClaimOrder: due deliveries come oldest-due first, whether due by
// creation or by a deferral's NextAttempt.
func testClaimOrder(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	var msgs []string
	for i := range 3 {
		msgs = append(msgs, commit(t, s, []byte(fmt.Sprint("m", i)), rcpts(1)))
		time.Sleep(2 * time.Millisecond) // distinct creation times
	}
	t0 := now().Add(time.Second)
	got := claim(t, s, "a", t0, 2)
	if len(got) != 2 || got[0].Message.ID != msgs[0] || got[1].Message.ID != msgs[1] {
		t.Fatalf("first Claim = %v, want the deliveries of %v", ids(got), msgs[:2])
	}
	got = append(got, claim(t, s, "a", t0, 2)...)
	if len(got) != 3 || got[2].Message.ID != msgs[2] {
		t.Fatalf("second Claim gave %v, want the delivery of %s", ids(got[2:]), msgs[2])
	}
	for i, c := range got {
		if c.Delivery.MessageID != c.Message.ID || c.Message.ID != msgs[i] {
			t.Fatalf("Claimed %d: delivery of %s with message %s", i, c.Delivery.MessageID, c.Message.ID)
		}
		if !c.LeaseUntil.After(t0) {
			t.Fatalf("LeaseUntil %v not after claim time %v", c.LeaseUntil, t0)
		}
	}

	// Deferred in the reverse order of creation: due order follows.
	for i, c := range got {
		complete(t, s, "a", c.Delivery.ID, store.Outcome{State: store.StateDeferred, NextAttempt: t0.Add(time.Duration(3-i) * time.Minute)})
	}
	got = claim(t, s, "b", t0.Add(10*time.Minute), 10)
	if len(got) != 3 || got[0].Message.ID != msgs[2] || got[1].Message.ID != msgs[1] || got[2].Message.ID != msgs[0] {
		t.Fatalf("Claim after deferrals = %v, want deliveries of %v in reverse", ids(got), msgs)
	}
}

// testClaimLimit: Claim returns at most limit deliveries; 0 returns none.
func testClaimLimit(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	commit(t, s, []byte("x"), rcpts(5))
	at := now().Add(time.Second)
	if got := claim(t, s, "a", at, 0); len(got) != 0 {
		t.Fatalf("Claim(limit 0) = %v", ids(got))
	}
	for _, want := range []int{2, 2, 1, 0} {
		if got := claim(t, s, "a", at, 2); len(got) != want {
			t.Fatalf("Claim(limit 2) = %d deliveries, want %d", len(got), want)
		}
	}
}

// testLeaseExcludes: while a lease holds, nobody (not even its owner)
// claims the delivery again.
func testLeaseExcludes(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	commit(t, s, []byte("x"), rcpts(3))
	t0 := now().Add(time.Second)
	got, err := s.Claim(ctx, "a", t0, 10, time.Minute)
	if err != nil || len(got) != 3 {
		t.Fatalf("Claim = %v, %v", ids(got), err)
	}
	for _, at := range []time.Time{t0, t0.Add(30 * time.Second), t0.Add(time.Minute - time.Millisecond)} {
		for _, owner := range []string{"b", "a"} {
			if again := claim(t, s, owner, at, 10); len(again) != 0 {
				t.Fatalf("Claim by %s at +%v during the lease got %v", owner, at.Sub(t0), ids(again))
			}
		}
	}
}

// testLeaseTakeover: an expired lease is taken over; the old holder's
// Complete is refused with ErrLeaseLost and records nothing.
func testLeaseTakeover(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	msg := commit(t, s, []byte("x"), rcpts(1))
	t0 := now()
	a, err := s.Claim(ctx, "a", t0, 1, time.Minute)
	if err != nil || len(a) != 1 {
		t.Fatalf("Claim a = %v, %v", a, err)
	}
	b, err := s.Claim(ctx, "b", t0.Add(2*time.Minute), 1, time.Hour)
	if err != nil || len(b) != 1 || b[0].Delivery.ID != a[0].Delivery.ID {
		t.Fatalf("Claim b after a's lease expired = %v, %v; want %s", ids(b), err, a[0].Delivery.ID)
	}
	id := a[0].Delivery.ID
	err = s.Complete(ctx, "a", id, store.Outcome{State: store.StateDelivered})
	wantErr(t, "Complete by the holder of the expired lease", err, store.ErrLeaseLost)
	ds := deliveriesOf(t, s, msg)
	if len(ds) != 1 || ds[0].State != store.StateQueued || ds[0].Attempts != 0 {
		t.Fatalf("after refused Complete, delivery = %+v; want unchanged", ds)
	}
	complete(t, s, "b", id, store.Outcome{State: store.StateDeferred, NextAttempt: t0.Add(3 * time.Hour), Error: "451 try later"})
	ds = deliveriesOf(t, s, msg)
	if len(ds) != 1 || ds[0].State != store.StateDeferred || ds[0].Attempts != 1 {
		t.Fatalf("after b's Complete, delivery = %+v", ds)
	}
}

// testConcurrentClaimers: many workers claiming at once never get the
// same delivery, and together get all of them.
func testConcurrentClaimers(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	var want []string
	for range 10 {
		id := commit(t, s, []byte("x"), rcpts(6))
		for _, d := range deliveriesOf(t, s, id) {
			want = append(want, d.ID)
		}
	}
	at := now().Add(time.Second)
	var (
		mu  sync.Mutex
		got = map[string]string{}
		wg  sync.WaitGroup
	)
	errs := make(chan error, 8)
	for w := range 8 {
		owner := fmt.Sprint("worker", w)
		wg.Go(func() {
			for {
				cs, err := s.Claim(ctx, owner, at, 3, time.Minute)
				if err != nil {
					errs <- err
					return
				}
				if len(cs) == 0 {
					return
				}
				mu.Lock()
				for _, c := range cs {
					if prev, dup := got[c.Delivery.ID]; dup {
						mu.Unlock()
						errs <- fmt.Errorf("delivery %s claimed by %s and %s", c.Delivery.ID, prev, owner)
						return
					}
					got[c.Delivery.ID] = owner
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var all []string
	for id := range got {
		all = append(all, id)
	}
	if !sameSet(all, want) {
		t.Fatalf("claimed %d deliveries, want %d", len(all), len(want))
	}
}

// testClaimCompleteRace: workers claiming while others complete never get a
// delivery that was already completed (a claim must not act on a state
// older than a released lease), so every Complete succeeds and every
// delivery is delivered exactly once.
func testClaimCompleteRace(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	const msgs, per = 40, 5
	for range msgs {
		commit(t, s, []byte("x"), rcpts(per))
	}
	at := now().Add(time.Second)
	var (
		mu   sync.Mutex
		done = map[string]int{}
		wg   sync.WaitGroup
	)
	errs := make(chan error, 8)
	for w := range 8 {
		owner := fmt.Sprint("worker", w)
		wg.Go(func() {
			for range msgs * per {
				cs, err := s.Claim(ctx, owner, at, 1, time.Hour)
				if err != nil || len(cs) == 0 {
					if err != nil {
						errs <- err
					}
					return
				}
				id := cs[0].Delivery.ID
				if err := s.Complete(ctx, owner, id, store.Outcome{State: store.StateDelivered}); err != nil {
					errs <- fmt.Errorf("Complete(%s) by %s: %w", id, owner, err)
					return
				}
				mu.Lock()
				done[id]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(done) != msgs*per {
		t.Fatalf("%d deliveries completed, want %d", len(done), msgs*per)
	}
	for id, n := range done {
		if n != 1 {
			t.Fatalf("delivery %s completed %d times", id, n)
		}
	}
}

// testCompleteErrors: unknown deliveries, deliveries never claimed or
// already completed, and non-outcome states.
func testCompleteErrors(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	msg := commit(t, s, []byte("x"), rcpts(2))
	err := s.Complete(ctx, "a", "NOSUCH.1", store.Outcome{State: store.StateDelivered})
	wantErr(t, "Complete of an unknown delivery", err, store.ErrNotFound)

	ds := deliveriesOf(t, s, msg)
	err = s.Complete(ctx, "a", ds[0].ID, store.Outcome{State: store.StateDelivered})
	wantErr(t, "Complete without a claim", err, store.ErrLeaseLost)

	cs := claim(t, s, "a", now().Add(time.Second), 10)
	if len(cs) != 2 {
		t.Fatalf("Claim = %v", ids(cs))
	}
	err = s.Complete(ctx, "b", cs[0].Delivery.ID, store.Outcome{State: store.StateDelivered})
	wantErr(t, "Complete by another owner", err, store.ErrLeaseLost)
	if err := s.Complete(ctx, "a", cs[0].Delivery.ID, store.Outcome{State: store.StateQueued}); err == nil {
		t.Fatal("Complete with state queued succeeded")
	}
	if err := s.Complete(ctx, "a", cs[0].Delivery.ID, store.Outcome{State: "sent"}); err == nil {
		t.Fatal("Complete with an unknown state succeeded")
	}
	complete(t, s, "a", cs[0].Delivery.ID, store.Outcome{State: store.StateDeferred, NextAttempt: now().Add(time.Hour)})
	err = s.Complete(ctx, "a", cs[0].Delivery.ID, store.Outcome{State: store.StateDelivered})
	wantErr(t, "second Complete on a released lease", err, store.ErrLeaseLost)
	if d := deliveriesOf(t, s, msg)[0]; d.State != store.StateDeferred || d.Attempts != 1 {
		t.Fatalf("after refused Completes, delivery = %+v", d)
	}
}

// testCompleteOutcomes: each outcome sets the state, counts the attempt
// and records the error; final states are never claimed again.
func testCompleteOutcomes(t *testing.T, open func(*testing.T) store.Store, _ config) {
	cases := []struct {
		state store.State
		err   string
	}{
		{store.StateDelivered, ""},
		{store.StateBounced, "550 5.1.1 no such user"},
		{store.StateExpired, "451 4.4.1 timeout, queue lifetime exceeded"},
		{store.StateDeferred, "421 4.7.0 try again later"},
	}
	for _, tc := range cases {
		t.Run(string(tc.state), func(t *testing.T) {
			s := open(t)
			// Two deliveries, so the completed one is not collected.
			msg := commit(t, s, []byte("x"), rcpts(2))
			t0 := now().Add(time.Second)
			cs := claim(t, s, "a", t0, 1)
			if len(cs) != 1 {
				t.Fatalf("Claim = %v", ids(cs))
			}
			id := cs[0].Delivery.ID
			next := t0.Add(time.Hour)
			complete(t, s, "a", id, store.Outcome{State: tc.state, NextAttempt: next, Error: tc.err})
			var d store.Delivery
			for _, x := range deliveriesOf(t, s, msg) {
				if x.ID == id {
					d = x
				}
			}
			if d.State != tc.state || d.Attempts != 1 || d.LastError != tc.err {
				t.Fatalf("after Complete: state %s attempts %d error %q; want %s 1 %q", d.State, d.Attempts, d.LastError, tc.state, tc.err)
			}
			if tc.state == store.StateDeferred && !sameTime(d.NextAttempt, next) {
				t.Fatalf("NextAttempt = %v, want %v", d.NextAttempt, next)
			}
			// A day later, the completed delivery is claimable again only
			// if it was deferred (the other one, never claimed, is too).
			later := claim(t, s, "b", t0.Add(24*time.Hour), 10)
			back := slices.ContainsFunc(later, func(c store.Claimed) bool { return c.Delivery.ID == id })
			if back != (tc.state == store.StateDeferred) {
				t.Fatalf("delivery in state %s claimed again: %v", tc.state, back)
			}
			if back {
				complete(t, s, "b", id, store.Outcome{State: store.StateDeferred, NextAttempt: t0.Add(48 * time.Hour)})
				for _, x := range deliveriesOf(t, s, msg) {
					if x.ID == id && x.Attempts != 2 {
						t.Fatalf("after a second attempt, Attempts = %d", x.Attempts)
					}
				}
			}
		})
	}
}

// testDeferral: a deferred delivery is not due before its NextAttempt and
// is due from that instant on.
func testDeferral(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	commit(t, s, []byte("x"), rcpts(1))
	t0 := now().Add(time.Second)
	cs := claim(t, s, "a", t0, 1)
	next := t0.Add(10 * time.Minute)
	complete(t, s, "a", cs[0].Delivery.ID, store.Outcome{State: store.StateDeferred, NextAttempt: next})
	for _, at := range []time.Time{t0, next.Add(-time.Microsecond)} {
		if got := claim(t, s, "b", at, 10); len(got) != 0 {
			t.Fatalf("Claim at NextAttempt-%v returned %v", next.Sub(at), ids(got))
		}
	}
	if got := claim(t, s, "b", next, 10); len(got) != 1 || got[0].Delivery.ID != cs[0].Delivery.ID {
		t.Fatalf("Claim at NextAttempt = %v, want %s", ids(got), cs[0].Delivery.ID)
	}
}

// A deferral that names recipients narrows the delivery to them: the others
// of its group were delivered or bounced and must not be sent again.
func testPartialDeferral(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	group := []store.NewDelivery{{Rewrite: store.RewritePass, Recipients: []store.Recipient{
		{Addr: "a@example.com"}, {Addr: "b@example.net", Notify: []string{"FAILURE"}}, {Addr: "c@example.org"},
	}}}
	commit(t, s, []byte("x"), group)
	t0 := now().Add(time.Second)
	cs := claim(t, s, "a", t0, 1)
	keep := []store.Recipient{{Addr: "b@example.net", Notify: []string{"FAILURE"}}}
	complete(t, s, "a", cs[0].Delivery.ID, store.Outcome{State: store.StateDeferred, NextAttempt: t0, Recipients: keep})
	got := claim(t, s, "a", t0, 1)
	if len(got) != 1 || !sameRecipients(got[0].Delivery.Recipients, keep) {
		t.Fatalf("after a partial deferral the delivery has %+v, want %+v", got, keep)
	}
	if got[0].Delivery.Attempts != 1 {
		t.Errorf("attempts = %d, want 1", got[0].Delivery.Attempts)
	}
}
