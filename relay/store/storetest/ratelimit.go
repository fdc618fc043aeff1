package storetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bccguard/bccguard/relay/store"
)

// The rate limit counts (store.RateCounter): bounds, all-or-nothing, the
// sliding window, taking back, concurrency and restarts.

func rcounter(t *testing.T, s store.Store) store.RateCounter {
	t.Helper()
	rc, ok := s.(store.RateCounter)
	if !ok {
		t.Fatalf("%T does not implement store.RateCounter", s)
	}
	return rc
}

func take(t *testing.T, rc store.RateCounter, at time.Time, reqs ...store.RateRequest) store.RateResult {
	t.Helper()
	res, err := rc.TakeRate(ctx, at, reqs)
	if err != nil {
		t.Fatalf("TakeRate: %v", err)
	}
	if len(res.Counts) != len(reqs) || len(res.Over) != len(reqs) {
		t.Fatalf("TakeRate of %d requests: %d counts, %d over flags", len(reqs), len(res.Counts), len(res.Over))
	}
	return res
}

// peek is the count of a scope, adding nothing.
func peek(t *testing.T, rc store.RateCounter, at time.Time, scope string, window time.Duration) store.RateCount {
	t.Helper()
	return take(t, rc, at, store.RateRequest{Scope: scope, Window: window}).Counts[0]
}

// testRateBounds: a bound admits exactly its number, then refuses without
// counting; a refused call adds to none of its scopes; scopes and the two
// counts are apart.
func testRateBounds(t *testing.T, open func(*testing.T) store.Store, _ config) {
	rc := rcounter(t, open(t))
	t0 := now()
	msg := store.RateRequest{Scope: "lim/user:crm", Window: time.Minute, Messages: 1, MaxMessages: 3}
	for i := 1; i <= 3; i++ {
		res := take(t, rc, t0, msg)
		if !res.Taken || res.Over[0] || res.Counts[0].Messages != int64(i) {
			t.Fatalf("take %d of 3: %+v", i, res)
		}
	}
	res := take(t, rc, t0, msg)
	if res.Taken || !res.Over[0] || res.Counts[0].Messages != 3 {
		t.Fatalf("take 4 of 3: %+v, want refused with the count at 3", res)
	}
	// All or nothing: the unbounded request beside a refused one is not added.
	daily := store.RateRequest{Scope: "day/user:crm", Window: 24 * time.Hour, Messages: 1}
	res = take(t, rc, t0, daily, msg)
	if res.Taken || res.Over[0] || !res.Over[1] || res.Counts[0].Messages != 0 {
		t.Fatalf("refused call: %+v, want not taken, only the bounded one over, the daily count 0", res)
	}
	if c := peek(t, rc, t0, "day/user:crm", 24*time.Hour); c.Messages != 0 {
		t.Fatalf("daily count after a refused call: %+v, want 0", c)
	}
	// Another key, another window, the recipients: all apart.
	if res := take(t, rc, t0, store.RateRequest{Scope: "lim/user:other", Window: time.Minute, Messages: 1, MaxMessages: 3}); !res.Taken || res.Counts[0].Messages != 1 {
		t.Fatalf("another scope: %+v", res)
	}
	if c := peek(t, rc, t0, "lim/user:crm", time.Hour); c.Messages != 0 {
		t.Fatalf("same scope, another window: %+v, want its own count", c)
	}
	rcpt := store.RateRequest{Scope: "lim/user:crm", Window: time.Minute, Recipients: 1, MaxRecipients: 2}
	for i := 1; i <= 2; i++ {
		if res := take(t, rc, t0, rcpt); !res.Taken || res.Counts[0] != (store.RateCount{Messages: 3, Recipients: int64(i)}) {
			t.Fatalf("recipient %d: %+v", i, res)
		}
	}
	if res := take(t, rc, t0, rcpt); res.Taken || !res.Over[0] {
		t.Fatalf("recipient 3 of 2: %+v, want refused", res)
	}
	// A request larger than the bound at once is refused too.
	if res := take(t, rc, t0, store.RateRequest{Scope: "big", Window: time.Minute, Recipients: 5, MaxRecipients: 4}); res.Taken {
		t.Fatalf("5 recipients at once under a bound of 4: %+v, want refused", res)
	}
}

// testRateWindow: a count covers at least its window and at most one slot
// more; then the bound admits again.
func testRateWindow(t *testing.T, open func(*testing.T) store.Store, _ config) {
	rc := rcounter(t, open(t))
	const w = time.Minute
	slot := w / store.RateSlots
	t0 := now()
	q := store.RateRequest{Scope: "w", Window: w, Messages: 1, Recipients: 2, MaxMessages: 2}
	take(t, rc, t0, q)
	take(t, rc, t0.Add(20*time.Second), q)
	if res := take(t, rc, t0.Add(30*time.Second), q); res.Taken {
		t.Fatalf("third within the window: %+v, want refused", res)
	}
	for _, c := range []struct {
		at   time.Duration
		want int64
	}{
		{w - time.Millisecond, 2},                  // both within the last minute
		{w + 2*slot, 1},                            // the first has left
		{w + 20*time.Second - time.Millisecond, 1}, // the second is still in
		{w + 20*time.Second + 2*slot, 0},           // both have left
		{10 * w, 0},
	} {
		if got := peek(t, rc, t0.Add(c.at), "w", w); got.Messages != c.want || got.Recipients != 2*c.want {
			t.Errorf("count at t0+%v = %+v, want %d messages", c.at, got, c.want)
		}
	}
	if res := take(t, rc, t0.Add(w+20*time.Second+2*slot), q); !res.Taken || res.Counts[0].Messages != 1 {
		t.Fatalf("after the window: %+v, want admitted again, count 1", res)
	}
}

// testRateGive: what a refused transaction took is given back, never
// below zero, and only at the slot it was taken in.
func testRateGive(t *testing.T, open func(*testing.T) store.Store, _ config) {
	rc := rcounter(t, open(t))
	t0 := now()
	q := store.RateRequest{Scope: "g", Window: time.Hour, Messages: 1, Recipients: 3, MaxMessages: 2}
	take(t, rc, t0, q)
	take(t, rc, t0.Add(5*time.Minute), q)
	if err := rc.GiveRate(ctx, t0.Add(5*time.Minute), []store.RateRequest{q}); err != nil {
		t.Fatalf("GiveRate: %v", err)
	}
	if c := peek(t, rc, t0.Add(6*time.Minute), "g", time.Hour); c != (store.RateCount{Messages: 1, Recipients: 3}) {
		t.Fatalf("after giving one back: %+v, want 1 message, 3 recipients", c)
	}
	if res := take(t, rc, t0.Add(6*time.Minute), q); !res.Taken {
		t.Fatalf("take after give: %+v, want admitted", res)
	}
	big := q
	big.Messages, big.Recipients = 10, 10
	if err := rc.GiveRate(ctx, t0, []store.RateRequest{big, {Scope: "never-taken", Window: time.Hour, Messages: 1}}); err != nil {
		t.Fatalf("GiveRate of more than was taken: %v", err)
	}
	if c := peek(t, rc, t0.Add(7*time.Minute), "g", time.Hour); c != (store.RateCount{Messages: 1, Recipients: 3}) {
		t.Fatalf("after giving back too much at t0: %+v, want only t0's slot emptied (1 message, 3 recipients left)", c)
	}
	if c := peek(t, rc, t0, "never-taken", time.Hour); c.Messages != 0 {
		t.Fatalf("scope given back without a take: %+v", c)
	}
}

// testRateConcurrent: many takers at once admit exactly the bound.
func testRateConcurrent(t *testing.T, open func(*testing.T) store.Store, _ config) {
	rc := rcounter(t, open(t))
	t0 := now()
	var taken atomic.Int64
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				res, err := rc.TakeRate(ctx, t0, []store.RateRequest{
					{Scope: "hourly", Window: time.Hour, Messages: 1, MaxMessages: 37},
					{Scope: "daily", Window: 24 * time.Hour, Messages: 1},
				})
				if err != nil {
					t.Errorf("TakeRate: %v", err)
					return
				}
				if res.Taken {
					taken.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := taken.Load(); n != 37 {
		t.Fatalf("100 concurrent takes under a bound of 37 admitted %d", n)
	}
	if c := peek(t, rc, t0, "daily", 24*time.Hour); c.Messages != 37 {
		t.Fatalf("the unbounded scope beside it counts %d, want 37 (only admitted calls)", c.Messages)
	}
}

// testRateReopen: counts survive a restart (a daily limit is not reset by
// one).
func testRateReopen(t *testing.T, open func(*testing.T) store.Store, cfg config) {
	if cfg.reopen == nil {
		t.Skip("backend gave no WithReopen")
	}
	s := open(t)
	t0 := now()
	q := store.RateRequest{Scope: "daily/user:crm", Window: 24 * time.Hour, Messages: 1, Recipients: 4, MaxMessages: 3}
	for range 3 {
		take(t, rcounter(t, s), t0, q)
	}
	s = cfg.reopen(t, s)
	if res := take(t, rcounter(t, s), t0.Add(time.Minute), q); res.Taken || res.Counts[0] != (store.RateCount{Messages: 3, Recipients: 12}) {
		t.Fatalf("after a restart: %+v, want refused with 3 messages and 12 recipients counted", res)
	}
}
