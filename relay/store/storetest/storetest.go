// Package storetest is the conformance suite every store.Store backend
// must pass. A backend's test calls Run with a function that opens a fresh,
// empty store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := mybackend.Open(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		}, storetest.WithReopen(...))
//	}
//
// The store must also implement store.QuarantineStore (the review side),
// store.QueueAdmin (the operator's queue commands), store.RateCounter
// (rate limit counts) and store.NotificationStore (the notification
// outbox), which the suite tests too.
//
// The suite closes some stores itself, so Close must be safe to call twice.
// Times it passes in are truncated to microseconds, the precision of
// PostgreSQL timestamps, and times it compares are compared at that
// precision.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/bccguard/bccguard/relay/store"
)

// Option changes what Run tests.
type Option func(*config)

type config struct {
	reopen func(t *testing.T, s store.Store) store.Store
}

// WithReopen enables the durability tests that close a store and open it
// again on the same data: reopen must close s and return a new store over
// what s had committed, as after a restart.
func WithReopen(reopen func(t *testing.T, s store.Store) store.Store) Option {
	return func(c *config) { c.reopen = reopen }
}

// Run runs the conformance suite. open must return a fresh, empty store
// for each subtest, closed by a t.Cleanup of its own.
func Run(t *testing.T, open func(t *testing.T) store.Store, opts ...Option) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(*testing.T) store.Store, cfg config)
	}{
		{"RoundTrip", testRoundTrip},
		{"ReceivedAtDefault", testReceivedAtDefault},
		{"UniqueIDs", testUniqueIDs},
		{"NothingBeforeCommit", testNothingBeforeCommit},
		{"Abort", testAbort},
		{"SpoolMisuse", testSpoolMisuse},
		{"InvalidPlan", testInvalidPlan},
		{"NotFound", testNotFound},
		{"ZeroDeliveries", testZeroDeliveries},
		{"ClaimOrder", testClaimOrder},
		{"ClaimLimit", testClaimLimit},
		{"LeaseExcludes", testLeaseExcludes},
		{"LeaseTakeover", testLeaseTakeover},
		{"ConcurrentClaimers", testConcurrentClaimers},
		{"ClaimCompleteRace", testClaimCompleteRace},
		{"CompleteErrors", testCompleteErrors},
		{"CompleteOutcomes", testCompleteOutcomes},
		{"Deferral", testDeferral},
		{"PartialDeferral", testPartialDeferral},
		{"Flush", testFlush},
		{"List", testList},
		{"Stats", testStats},
		{"NextDue", testNextDue},
		{"Collect", testCollect},
		{"ConcurrentCommits", testConcurrentCommits},
		{"Ping", testPing},
		{"Closed", testClosed},
		{"Reopen", testReopen},
		{"ReopenDropsLeases", testReopenDropsLeases},
		{"HoldCommit", testHoldCommit},
		{"HoldRefusesDeliveries", testHoldRefusesDeliveries},
		{"HoldsList", testHoldsList},
		{"PageLimits", testPageLimits},
		{"Approve", testApprove},
		{"Release", testRelease},
		{"ReleaseRace", testReleaseRace},
		{"Discard", testDiscard},
		{"Audit", testAudit},
		{"HoldStats", testHoldStats},
		{"HoldsReopen", testHoldsReopen},
		{"QuarantineClosed", testQuarantineClosed},
		{"QueueHold", testQueueHold},
		{"QueueRequeue", testQueueRequeue},
		{"QueueDelete", testQueueDelete},
		{"QueueUnknown", testQueueUnknown},
		{"QueuedMessages", testQueuedMessages},
		{"QueueHoldReopen", testQueueHoldReopen},
		{"QueueAdminRace", testQueueAdminRace},
		{"RateBounds", testRateBounds},
		{"RateWindow", testRateWindow},
		{"RateGive", testRateGive},
		{"RateConcurrent", testRateConcurrent},
		{"RateReopen", testRateReopen},
		{"Notifications", testNotifications},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open, cfg) })
	}
}

var ctx = context.Background()

// now is the current time at the suite's precision.
func now() time.Time { return time.Now().Truncate(time.Microsecond) }

// sameTime compares times at the suite's precision.
func sameTime(a, b time.Time) bool {
	return a.Truncate(time.Microsecond).Equal(b.Truncate(time.Microsecond))
}

// body returns n reproducible pseudo-random bytes.
func body(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// rcpts makes n one-recipient deliveries with distinct addresses.
func rcpts(n int) []store.NewDelivery {
	ds := make([]store.NewDelivery, n)
	for i := range ds {
		ds[i] = store.NewDelivery{
			Recipients: []store.Recipient{{Addr: fmt.Sprintf("rcpt%d@example.net", i)}},
			Rewrite:    store.RewriteExplode,
		}
	}
	return ds
}

func testMessage() store.Message {
	return store.Message{
		Envelope: store.Envelope{Sender: "sender@example.com", Recipients: []store.Recipient{{Addr: "rcpt0@example.net"}}},
		Client:   store.Client{Listener: "submission", IP: "192.0.2.1"},
	}
}

// commit stores data as a new message with the given deliveries.
func commit(t *testing.T, s store.Store, data []byte, ds []store.NewDelivery) string {
	t.Helper()
	return Put(t, s, data, testMessage(), ds)
}

// Put stores data as msg with the deliveries ds, written in pieces as a
// session writes it, and returns its ID: the way a test outside this suite
// puts a message in a store, too. It fails t if the store refuses, or if
// Commit's ID is not the one NewSpool gave.
func Put(t testing.TB, s store.Store, data []byte, msg store.Message, ds store.Plan) string {
	t.Helper()
	sp, id, err := s.NewSpool(ctx)
	if err != nil {
		t.Fatalf("NewSpool: %v", err)
	}
	defer sp.Abort()
	writeChunks(t, sp, data, 7919)
	got, err := sp.Commit(ctx, msg, ds)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if got != id {
		t.Fatalf("Commit returned ID %q, NewSpool said %q", got, id)
	}
	return id
}

// writeChunks writes data in pieces of chunk bytes, as a session would.
func writeChunks(t testing.TB, w io.Writer, data []byte, chunk int) {
	t.Helper()
	for len(data) > 0 {
		n := min(chunk, len(data))
		if m, err := w.Write(data[:n]); err != nil || m != n {
			t.Fatalf("Write: %d, %v", m, err)
		}
		data = data[n:]
	}
}

func readBody(t *testing.T, s store.Store, id string) []byte {
	t.Helper()
	rc, err := s.Open(ctx, id)
	if err != nil {
		t.Fatalf("Open(%s): %v", id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", id, err)
	}
	return b
}

func claim(t *testing.T, s store.Store, owner string, at time.Time, limit int) []store.Claimed {
	t.Helper()
	cs, err := s.Claim(ctx, owner, at, limit, time.Minute)
	if err != nil {
		t.Fatalf("Claim(%s): %v", owner, err)
	}
	return cs
}

func complete(t *testing.T, s store.Store, owner, id string, out store.Outcome) {
	t.Helper()
	if err := s.Complete(ctx, owner, id, out); err != nil {
		t.Fatalf("Complete(%s, %s, %s): %v", owner, id, out.State, err)
	}
}

func list(t *testing.T, s store.Store, f store.Filter) []store.Delivery {
	t.Helper()
	ds, err := s.List(ctx, f)
	if err != nil {
		t.Fatalf("List(%+v): %v", f, err)
	}
	return ds
}

func ids(cs []store.Claimed) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Delivery.ID)
	}
	return out
}

func deliveryIDs(ds []store.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

// deliveriesOf lists all deliveries of one message.
func deliveriesOf(t *testing.T, s store.Store, msgID string) []store.Delivery {
	t.Helper()
	return list(t, s, store.Filter{MessageID: msgID})
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func equalBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: got %d bytes, want %d; first difference at byte %d", what, len(got), len(want), i)
	}
}
