package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bccguard/bccguard/relay/store"
)

// testConcurrentCommits: many sessions committing at once all end up
// stored, intact and queued.
func testConcurrentCommits(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	const sessions, each = 32, 8
	type stored struct {
		id   string
		seed uint64
		size int
	}
	var (
		mu  sync.Mutex
		all []stored
		wg  sync.WaitGroup
	)
	errs := make(chan error, sessions)
	for g := range sessions {
		wg.Go(func() {
			for i := range each {
				seed := uint64(g*each + i)
				size := 1000 + int(seed)*37
				if i == 0 && g%8 == 0 {
					size = 300 << 10 // some spill, in the embedded backend
				}
				sp, id, err := s.NewSpool(ctx)
				if err != nil {
					errs <- err
					return
				}
				data := body(size, seed)
				if _, err := sp.Write(data); err != nil {
					errs <- err
					return
				}
				if _, err := sp.Commit(ctx, testMessage(), rcpts(1+i%3)); err != nil {
					errs <- fmt.Errorf("commit %d/%d: %w", g, i, err)
					return
				}
				mu.Lock()
				all = append(all, stored{id, seed, size})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	wantDeliveries := 0
	for _, m := range all {
		if seen[m.id] {
			t.Fatalf("ID %s given to two messages", m.id)
		}
		seen[m.id] = true
		equalBytes(t, "body of "+m.id, readBody(t, s, m.id), body(m.size, m.seed))
		wantDeliveries += len(deliveriesOf(t, s, m.id))
	}
	if len(all) != sessions*each {
		t.Fatalf("%d messages stored, want %d", len(all), sessions*each)
	}
	if st, err := s.Stats(ctx); err != nil || st.Pending != wantDeliveries {
		t.Fatalf("Stats = %+v, %v; want %d pending", st, err, wantDeliveries)
	}
	claimed := 0
	for claimed <= wantDeliveries {
		cs := claim(t, s, "w", now().Add(time.Second), 100)
		if len(cs) == 0 {
			break
		}
		claimed += len(cs)
	}
	if claimed != wantDeliveries {
		t.Fatalf("claimed %d deliveries, want %d", claimed, wantDeliveries)
	}
}

func testPing(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// testClosed: after Close every operation fails with ErrClosed.
func testClosed(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	sp, _, err := s.NewSpool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Abort()
	sp.Write([]byte("x"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, err = sp.Commit(ctx, testMessage(), rcpts(1))
	wantErr(t, "Commit after Close", err, store.ErrClosed)
	_, _, err = s.NewSpool(ctx)
	wantErr(t, "NewSpool after Close", err, store.ErrClosed)
	_, err = s.Claim(ctx, "a", now(), 1, time.Minute)
	wantErr(t, "Claim after Close", err, store.ErrClosed)
	_, err = s.Stats(ctx)
	wantErr(t, "Stats after Close", err, store.ErrClosed)
	err = s.Ping(ctx)
	wantErr(t, "Ping after Close", err, store.ErrClosed)
	_, err = s.Message(ctx, "X")
	wantErr(t, "Message after Close", err, store.ErrClosed)
}

// snapshot is what a reopened store must show again.
type snapshot struct {
	messages   map[string]store.Message
	bodies     map[string][]byte
	deliveries []store.Delivery
	stats      store.Stats
}

func takeSnapshot(t *testing.T, s store.Store, msgs []string) snapshot {
	t.Helper()
	snap := snapshot{messages: map[string]store.Message{}, bodies: map[string][]byte{}}
	for _, id := range msgs {
		m, err := s.Message(ctx, id)
		if err != nil {
			t.Fatalf("Message(%s): %v", id, err)
		}
		snap.messages[id] = m
		snap.bodies[id] = readBody(t, s, id)
	}
	snap.deliveries = list(t, s, store.Filter{Limit: 1000})
	var err error
	if snap.stats, err = s.Stats(ctx); err != nil {
		t.Fatal(err)
	}
	return snap
}

func (a snapshot) diff(b snapshot) string {
	for id, m := range a.messages {
		n := b.messages[id]
		if m.ID != n.ID || m.Size != n.Size || m.HeaderLen != n.HeaderLen || !sameTime(m.ReceivedAt, n.ReceivedAt) ||
			!sameEnvelope(m.Envelope, n.Envelope) || m.Client != n.Client || string(m.Decision) != string(n.Decision) {
			return fmt.Sprintf("message %s: %+v, then %+v", id, m, n)
		}
		if string(a.bodies[id]) != string(b.bodies[id]) {
			return fmt.Sprintf("body of %s differs", id)
		}
	}
	if len(a.deliveries) != len(b.deliveries) {
		return fmt.Sprintf("%d deliveries, then %d", len(a.deliveries), len(b.deliveries))
	}
	for i, d := range a.deliveries {
		e := b.deliveries[i]
		if d.ID != e.ID || d.MessageID != e.MessageID || d.State != e.State || d.Attempts != e.Attempts ||
			d.Rewrite != e.Rewrite || d.LastError != e.LastError || !sameRecipients(d.Recipients, e.Recipients) ||
			!sameTime(d.CreatedAt, e.CreatedAt) || !sameTime(d.NextAttempt, e.NextAttempt) {
			return fmt.Sprintf("delivery %d: %+v, then %+v", i, d, e)
		}
	}
	if a.stats.Pending != b.stats.Pending || a.stats.Deferred != b.stats.Deferred || !sameTime(a.stats.Oldest, b.stats.Oldest) {
		return fmt.Sprintf("stats %+v, then %+v", a.stats, b.stats)
	}
	return ""
}

// testReopen: a closed and reopened store shows exactly what was
// committed: queued, deferred, partly final and held messages, small and
// large bodies; aborted spools are gone.
func testReopen(t *testing.T, open func(*testing.T) store.Store, cfg config) {
	if cfg.reopen == nil {
		t.Skip("backend gave no WithReopen")
	}
	s := open(t)
	var msgs []string
	for i, size := range []int{0, 10, 200 << 10, 3 << 20} {
		msgs = append(msgs, commit(t, s, body(size, uint64(i)), rcpts(3)))
	}
	msgs = append(msgs, commit(t, s, []byte("held for review"), nil))
	done := commit(t, s, []byte("done"), rcpts(1))
	t0 := now().Add(time.Second)
	cs := claim(t, s, "a", t0, 100)
	for i, c := range cs {
		var out store.Outcome
		switch {
		case c.Message.ID == done:
			out.State = store.StateDelivered
		case i%3 == 0:
			out = store.Outcome{State: store.StateDeferred, NextAttempt: t0.Add(time.Duration(i) * time.Minute), Error: "451 busy"}
		case i%3 == 1:
			out = store.Outcome{State: store.StateBounced, Error: "550 no"}
		default:
			continue // stays queued, leased
		}
		complete(t, s, "a", c.Delivery.ID, out)
	}
	var aborted []string
	for i, size := range []int{10, 300 << 10, 300 << 10} {
		sp, id, err := s.NewSpool(ctx)
		if err != nil {
			t.Fatal(err)
		}
		writeChunks(t, sp, body(size, 9), 8192)
		if i == 1 {
			sp.Abort()
		} else {
			defer sp.Abort() // left open over the restart
		}
		aborted = append(aborted, id)
	}
	before := takeSnapshot(t, s, msgs)

	s = cfg.reopen(t, s)
	after := takeSnapshot(t, s, msgs)
	if d := before.diff(after); d != "" {
		t.Fatalf("after reopen: %s", d)
	}
	expectAbsent(t, s, done)
	for _, id := range aborted {
		expectAbsent(t, s, id)
	}
	// Still works: commit and reopen once more.
	msgs = append(msgs, commit(t, s, []byte("after reopen"), rcpts(1)))
	before = takeSnapshot(t, s, msgs)
	s = cfg.reopen(t, s)
	if d := before.diff(takeSnapshot(t, s, msgs)); d != "" {
		t.Fatalf("after second reopen: %s", d)
	}
}

// testReopenDropsLeases: work leased when the process stopped is claimable
// after a restart (at-least-once), and the old lease is void.
func testReopenDropsLeases(t *testing.T, open func(*testing.T) store.Store, cfg config) {
	if cfg.reopen == nil {
		t.Skip("backend gave no WithReopen")
	}
	s := open(t)
	commit(t, s, []byte("x"), rcpts(2))
	t0 := now()
	cs := claim(t, s, "a", t0, 10)
	if len(cs) != 2 {
		t.Fatalf("Claim = %v", ids(cs))
	}
	s = cfg.reopen(t, s)
	// A backend with durable leases hands them out again when they expire;
	// one with leases in memory at once. Either way by lease end.
	again := claim(t, s, "b", t0.Add(2*time.Minute), 10)
	if !sameSet(ids(again), ids(cs)) {
		t.Fatalf("after restart, Claim = %v, want %v", ids(again), ids(cs))
	}
	err := s.Complete(ctx, "a", cs[0].Delivery.ID, store.Outcome{State: store.StateDelivered})
	wantErr(t, "Complete with a lease from before the restart", err, store.ErrLeaseLost)
	complete(t, s, "b", cs[0].Delivery.ID, store.Outcome{State: store.StateDelivered})
}
