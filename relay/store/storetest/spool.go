package storetest

import (
	"bytes"
	"errors"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/bccguard/bccguard/relay/store"
)

// testRoundTrip: what is written is what Open returns, byte for byte, and
// the record comes back as committed. Sizes straddle the 128 KiB inline
// limit of the embedded backend.
func testRoundTrip(t *testing.T, open func(*testing.T) store.Store, _ config) {
	cases := []struct {
		name string
		size int
	}{
		{"empty", 0},
		{"one byte", 1},
		{"4KiB", 4 << 10},
		{"128KiB-1", 128<<10 - 1},
		{"128KiB", 128 << 10},
		{"128KiB+1", 128<<10 + 1},
		{"5MiB", 5 << 20},
	}
	s := open(t)
	received := time.Date(2026, 3, 4, 5, 6, 7, 891234000, time.FixedZone("CET", 3600))
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := body(tc.size, uint64(i))
			msg := store.Message{
				Envelope: store.Envelope{
					Sender: "bulk@brand.example", Ret: "HDRS", EnvID: "env-42", Body: "8BITMIME", SMTPUTF8: true,
					Recipients: []store.Recipient{
						{Addr: "a@example.net", Notify: []string{"FAILURE", "DELAY"}, ORcpt: "rfc822;a@example.net"},
						{Addr: "ü@example.org"},
					},
				},
				Client:     store.Client{Listener: "submission", IP: "2001:db8::1", Helo: "crm.brand.example", User: "crm", TLS: true},
				ReceivedAt: received,
				HeaderLen:  int64(min(tc.size, 321)),
				Decision:   []byte(`{"action":"explode","rule":"many-visible"}`),
			}
			ds := []store.NewDelivery{
				{Recipients: msg.Envelope.Recipients[:1], Rewrite: store.RewriteExplode},
				{Recipients: msg.Envelope.Recipients, Rewrite: store.RewriteBcc},
			}
			id := Put(t, s, data, msg, ds)
			equalBytes(t, "body", readBody(t, s, id), data)

			m, err := s.Message(ctx, id)
			if err != nil {
				t.Fatalf("Message: %v", err)
			}
			if m.ID != id || m.Size != int64(tc.size) || m.HeaderLen != msg.HeaderLen || !bytes.Equal(m.Decision, msg.Decision) {
				t.Errorf("Message: ID %q size %d headerLen %d decision %q; want %q %d %d %q",
					m.ID, m.Size, m.HeaderLen, m.Decision, id, tc.size, msg.HeaderLen, msg.Decision)
			}
			if !sameTime(m.ReceivedAt, received) {
				t.Errorf("ReceivedAt = %v, want %v", m.ReceivedAt, received)
			}
			if !sameEnvelope(m.Envelope, msg.Envelope) || m.Client != msg.Client {
				t.Errorf("Message record = %+v\nwant %+v", m, msg)
			}

			got2 := deliveriesOf(t, s, id)
			if len(got2) != len(ds) {
				t.Fatalf("%d deliveries stored, want %d", len(got2), len(ds))
			}
			for j, d := range got2 {
				if d.MessageID != id || d.State != store.StateQueued || d.Attempts != 0 || d.Rewrite != ds[j].Rewrite || !sameRecipients(d.Recipients, ds[j].Recipients) {
					t.Errorf("delivery %d = %+v, want queued copy of %+v", j, d, ds[j])
				}
				if d.CreatedAt.IsZero() || d.NextAttempt.After(d.CreatedAt.Add(time.Second)) {
					t.Errorf("delivery %d: CreatedAt %v NextAttempt %v: want due on creation", j, d.CreatedAt, d.NextAttempt)
				}
			}
		})
	}
}

func sameEnvelope(a, b store.Envelope) bool {
	return a.Sender == b.Sender && a.Ret == b.Ret && a.EnvID == b.EnvID && a.Body == b.Body &&
		a.SMTPUTF8 == b.SMTPUTF8 && sameRecipients(a.Recipients, b.Recipients)
}

func sameRecipients(a, b []store.Recipient) bool {
	return slices.EqualFunc(a, b, func(x, y store.Recipient) bool {
		return x.Addr == y.Addr && x.ORcpt == y.ORcpt && slices.Equal(x.Notify, y.Notify)
	})
}

// testReceivedAtDefault: a zero ReceivedAt is filled in with the commit time.
func testReceivedAtDefault(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	before := now()
	id := commit(t, s, []byte("x"), rcpts(1))
	after := time.Now()
	m, err := s.Message(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if m.ReceivedAt.Before(before.Add(-time.Second)) || m.ReceivedAt.After(after.Add(time.Second)) {
		t.Fatalf("ReceivedAt = %v, want between %v and %v", m.ReceivedAt, before, after)
	}
}

// safeID is what IDs must look like to go into file names and a Received:
// header's id clause.
var safeID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// testUniqueIDs: message and delivery IDs are unique and safe, including
// for spools never committed.
func testUniqueIDs(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	seen := map[string]bool{}
	for i := range 300 {
		sp, id, err := s.NewSpool(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !safeID.MatchString(id) {
			t.Fatalf("message ID %q is not safe in a file name or header", id)
		}
		if seen[id] {
			t.Fatalf("message ID %q handed out twice", id)
		}
		seen[id] = true
		if i%3 == 0 {
			writeChunks(t, sp, []byte("hello"), 5)
			if _, err := sp.Commit(ctx, testMessage(), rcpts(2)); err != nil {
				t.Fatal(err)
			}
		}
		sp.Abort()
	}
	for _, d := range list(t, s, store.Filter{Limit: 1000}) {
		if !safeID.MatchString(d.ID) {
			t.Fatalf("delivery ID %q is not safe", d.ID)
		}
		if seen[d.ID] {
			t.Fatalf("delivery ID %q used twice", d.ID)
		}
		seen[d.ID] = true
	}
}

// testNothingBeforeCommit: a spool in progress is invisible everywhere.
func testNothingBeforeCommit(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	for _, size := range []int{10, 300 << 10} {
		sp, id, err := s.NewSpool(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer sp.Abort()
		writeChunks(t, sp, body(size, 1), 4096)
		expectAbsent(t, s, id)
		if st, err := s.Stats(ctx); err != nil || st.Pending != 0 {
			t.Fatalf("Stats before commit = %+v, %v", st, err)
		}
		if _, ok, err := s.NextDue(ctx); err != nil || ok {
			t.Fatalf("NextDue before commit = %v, %v", ok, err)
		}
		if got := claim(t, s, "w", now().Add(time.Hour), 10); len(got) != 0 {
			t.Fatalf("before commit, Claim = %v", ids(got))
		}
		if _, err := sp.Commit(ctx, testMessage(), rcpts(1)); err != nil {
			t.Fatal(err)
		}
		got := claim(t, s, "w", now().Add(time.Second), 10)
		if len(got) != 1 || got[0].Message.ID != id {
			t.Fatalf("after commit, Claim = %v, want the one delivery of %s", ids(got), id)
		}
		complete(t, s, "w", got[0].Delivery.ID, store.Outcome{State: store.StateDelivered})
	}
}

// expectAbsent checks that no part of the store shows message id.
func expectAbsent(t *testing.T, s store.Store, id string) {
	t.Helper()
	if _, err := s.Message(ctx, id); !isNotFound(err) {
		t.Fatalf("Message(%s) = %v, want ErrNotFound", id, err)
	}
	if rc, err := s.Open(ctx, id); !isNotFound(err) {
		if rc != nil {
			rc.Close()
		}
		t.Fatalf("Open(%s) = %v, want ErrNotFound", id, err)
	}
	if ds := deliveriesOf(t, s, id); len(ds) != 0 {
		t.Fatalf("List shows deliveries %v of absent message %s", deliveryIDs(ds), id)
	}
}

// testAbort: an aborted spool leaves nothing, Abort is idempotent, and a
// committed spool is not affected by Abort.
func testAbort(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	for _, size := range []int{0, 10, 300 << 10, 2 << 20} {
		sp, id, err := s.NewSpool(ctx)
		if err != nil {
			t.Fatal(err)
		}
		writeChunks(t, sp, body(size, 2), 32<<10)
		if err := sp.Abort(); err != nil {
			t.Fatalf("Abort: %v", err)
		}
		if err := sp.Abort(); err != nil {
			t.Fatalf("second Abort: %v", err)
		}
		expectAbsent(t, s, id)
		if _, err := sp.Commit(ctx, testMessage(), rcpts(1)); err == nil {
			t.Fatalf("Commit after Abort succeeded")
		}
		expectAbsent(t, s, id)
	}
	if got := list(t, s, store.Filter{}); len(got) != 0 {
		t.Fatalf("aborted spools left deliveries %v", deliveryIDs(got))
	}

	sp, id, err := s.NewSpool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data := body(300<<10, 3)
	writeChunks(t, sp, data, 32<<10)
	if _, err := sp.Commit(ctx, testMessage(), rcpts(1)); err != nil {
		t.Fatal(err)
	}
	if err := sp.Abort(); err != nil {
		t.Fatalf("Abort after Commit: %v", err)
	}
	equalBytes(t, "body after Abort following Commit", readBody(t, s, id), data)
}

// testSpoolMisuse: a spool commits once; writes after it fail.
func testSpoolMisuse(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	sp, id, err := s.NewSpool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Abort()
	writeChunks(t, sp, []byte("abc"), 3)
	if _, err := sp.Commit(ctx, testMessage(), rcpts(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Commit(ctx, testMessage(), rcpts(1)); err == nil {
		t.Fatal("second Commit succeeded")
	}
	if _, err := sp.Write([]byte("more")); err == nil {
		t.Fatal("Write after Commit succeeded")
	}
	equalBytes(t, "body", readBody(t, s, id), []byte("abc"))
	if n := len(deliveriesOf(t, s, id)); n != 1 {
		t.Fatalf("%d deliveries after a repeated Commit, want 1", n)
	}
}

// invalidPlans are plans no backend may store: each refused at Commit and
// Release with ErrInvalidPlan.
func invalidPlans() map[string]store.Plan {
	two := []store.Recipient{{Addr: "a@example.net"}, {Addr: "b@example.net"}}
	return map[string]store.Plan{
		"explode to two":  {{Recipients: two, Rewrite: store.RewriteExplode}},
		"no recipients":   {{Rewrite: store.RewriteBcc}},
		"unknown rewrite": {{Recipients: two[:1], Rewrite: "shout"}},
		"no rewrite":      {{Recipients: two[:1]}},
		"second invalid":  {{Recipients: two[:1], Rewrite: store.RewriteExplode}, {Recipients: two, Rewrite: store.RewriteExplode}},
	}
}

// testInvalidPlan: Commit refuses a plan that does not Validate before it
// stores anything, so the relay answers the client before its 250 instead
// of queueing a delivery that can only expire.
func testInvalidPlan(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	for name, plan := range invalidPlans() {
		sp, id, err := s.NewSpool(ctx)
		if err != nil {
			t.Fatal(err)
		}
		writeChunks(t, sp, []byte("abc"), 3)
		_, err = sp.Commit(ctx, testMessage(), plan)
		if !errors.Is(err, store.ErrInvalidPlan) {
			t.Errorf("Commit of a plan with %s = %v, want ErrInvalidPlan", name, err)
		}
		if err := sp.Abort(); err != nil {
			t.Errorf("Abort after a refused Commit: %v", err)
		}
		expectAbsent(t, s, id)
	}
	if st, err := s.Stats(ctx); err != nil || st.Pending != 0 {
		t.Fatalf("Stats after refused commits = %+v, %v; want nothing pending", st, err)
	}
	// The plans ingest and release make are valid.
	two := []store.Recipient{{Addr: "a@example.net"}, {Addr: "b@example.net"}}
	for _, rw := range []store.Rewrite{store.RewriteExplode, store.RewriteBcc, store.RewritePass} {
		commit(t, s, []byte("abc"), store.PlanCopies(rw, two))
	}
}

func testNotFound(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	commit(t, s, []byte("x"), rcpts(1))
	expectAbsent(t, s, "NOSUCHMESSAGE")
}

// testZeroDeliveries: a message committed without deliveries is kept and
// readable, queues nothing, and survives the collection of other messages.
func testZeroDeliveries(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	for _, size := range []int{10, 300 << 10} {
		data := body(size, 4)
		held := commit(t, s, data, nil)
		if got := claim(t, s, "w", now().Add(time.Hour), 10); len(got) != 0 {
			t.Fatalf("Claim returned %v for a message without deliveries", ids(got))
		}
		if st, err := s.Stats(ctx); err != nil || st.Pending != 0 {
			t.Fatalf("Stats = %+v, %v; want nothing pending", st, err)
		}
		if _, ok, err := s.NextDue(ctx); err != nil || ok {
			t.Fatalf("NextDue = %v, %v; want none", ok, err)
		}
		// Another message is delivered and collected.
		other := commit(t, s, []byte("other"), rcpts(1))
		for _, c := range claim(t, s, "w", now().Add(time.Second), 10) {
			complete(t, s, "w", c.Delivery.ID, store.Outcome{State: store.StateDelivered})
		}
		expectAbsent(t, s, other)
		if _, err := s.Message(ctx, held); err != nil {
			t.Fatalf("held message: %v", err)
		}
		equalBytes(t, "held body", readBody(t, s, held), data)
	}
}
