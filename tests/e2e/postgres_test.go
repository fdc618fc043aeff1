package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/relay/store/postgres/pgtest"
	"github.com/bccguard/bccguard/tests/harness"
)

// pgLease is the store.lease of the replicas: short, so a dead replica's
// work is taken over within the test, and still far longer than an
// attempt against the local sink takes.
const pgLease = 3 * time.Second

var (
	pgMarker = regexp.MustCompile(`(?i)\r\nMessage-ID: <(pg-e2e-[0-9a-z-]+)@example\.com>`)
	heldAs   = regexp.MustCompile(`held for review as ([A-Za-z0-9._-]+)`)
)

// TestPostgresTwoReplicas: two bccguard processes share one PostgreSQL
// database and one upstream. Mail sent to either is delivered once; a
// message held through one is listed and released through the other; one
// replica killed with kill -9 while deliveries are in flight has that work
// finished by the other once its leases end. Every accepted message
// reaches the upstream exactly once: the killed replica's attempts were
// refused by the upstream (it was gone before they could end), and nothing
// went twice while both replicas were healthy.
func TestPostgresTwoReplicas(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t, "bccguard_e2e")
	sink := harness.NewSink(t)

	// While holdA is set, deliveries from replica A stop at the end of
	// DATA (they are in flight) until stuck is closed; then they are
	// refused, as the upstream would for a client that has gone.
	var (
		holdA    atomic.Bool
		stuck    = make(chan struct{})
		mu       sync.Mutex
		aStarted = map[string]time.Time{} // marker -> when A's attempt reached the sink
	)
	sink.OnData(func(m *smtptest.Message) *smtp.SMTPError {
		if m.Helo != "a.relay.test" || !holdA.Load() {
			return nil
		}
		mu.Lock()
		aStarted[pgMarkerOf(m)] = time.Now()
		mu.Unlock()
		<-stuck
		return smtptest.SMTPErr(421, "4.4.2", "connection lost")
	})
	config := func(helo string) string {
		return fmt.Sprintf(`
store:
  backend: postgres
  dsn: %q
  lease: %s
upstream: {address: %q, tls: none, connections: 2, helo: %s}
policy:
  rules:
    - name: hold-for-review
      when: 'sender == "hold@example.com"'
      action: quarantine
  default_action: pass
`, dsn, pgLease, sink.Addr(), helo)
	}
	a := harness.Start(t, config("a.relay.test"))
	b := harness.Start(t, config("b.relay.test"))

	n := 0
	send := func(r *harness.Relay, from string) (string, string) {
		t.Helper()
		n++
		marker := fmt.Sprintf("pg-e2e-%d", n)
		msg := harness.CRLF(fmt.Sprintf("From: %s\nTo: bob@example.net\nSubject: replica test %d\nMessage-ID: <%s@example.com>\n\nmessage %d\n", from, n, marker, n))
		return marker, harness.Send(t, r.Addr(), from, []string{"bob@example.net"}, msg)
	}
	var sent []string
	waitAll := func(what string) []*smtptest.Message {
		t.Helper()
		return sink.WaitUntil(t, deliverTimeout, what, func(ms []*smtptest.Message) bool {
			got := map[string]bool{}
			for _, m := range ms {
				got[pgMarkerOf(m)] = true
			}
			for _, s := range sent {
				if !got[s] {
					return false
				}
			}
			return true
		})
	}

	// 1. Mail sent to both replicas.
	for i := range 10 {
		r := a
		if i%2 == 1 {
			r = b
		}
		marker, reply := send(r, "alice@example.com")
		queueID(t, reply)
		sent = append(sent, marker)
	}
	waitAll("the messages sent to both replicas")
	expectOnce(t, sink, sent)

	// 2. Held through A, listed and released through B, shown as released
	// by A.
	marker, reply := send(a, "hold@example.com")
	m := heldAs.FindStringSubmatch(reply)
	if m == nil {
		t.Fatalf("reply to a message the policy holds: %q, want \"held for review as ID\"", reply)
	}
	id := m[1]
	var page struct {
		Items []struct{ ID, State string }
	}
	out := b.MustCLI("quarantine", "list", "--json", "--data-dir", b.DataDir())
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		t.Fatalf("quarantine list --json: %v\n%s", err, out)
	}
	if len(page.Items) != 1 || page.Items[0].ID != id || page.Items[0].State != "held" {
		t.Fatalf("replica B lists %+v, want the hold %s taken by replica A", page.Items, id)
	}
	out = b.MustCLI("quarantine", "release", id, "--json", "--data-dir", b.DataDir())
	if !strings.Contains(out, `"released"`) {
		t.Fatalf("release through replica B: %s", out)
	}
	sent = append(sent, marker)
	waitAll("the message released through replica B")
	var shown struct{ State string }
	out = a.MustCLI("quarantine", "show", id, "--json", "--data-dir", a.DataDir())
	if err := json.Unmarshal([]byte(out), &shown); err != nil || shown.State != "released" {
		t.Fatalf("replica A shows the hold as %q (%v), want released:\n%s", shown.State, err, out)
	}
	expectOnce(t, sink, sent)

	// 3. Replica A dies with deliveries in flight; B finishes its work.
	holdA.Store(true)
	for range 6 {
		marker, reply := send(a, "alice@example.com")
		queueID(t, reply)
		sent = append(sent, marker)
	}
	harness.Eventually(t, queueTimeout, "replica A to have deliveries in flight", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(aStarted) > 0
	})
	a.Kill()
	killedAt := time.Now()
	close(stuck)
	ms := waitAll("replica A's work, finished by replica B")
	expectOnce(t, sink, sent)
	mu.Lock()
	defer mu.Unlock()
	for marker, started := range aStarted {
		for _, m := range ms {
			if pgMarkerOf(m) != marker {
				continue
			}
			if m.Helo != "b.relay.test" {
				t.Errorf("%s: delivered by %s, want replica B", marker, m.Helo)
			}
			// B took it over when A's lease ended, not while it held.
			if wait := m.At.Sub(started); wait < pgLease-time.Second {
				t.Errorf("%s: replica B delivered it %v after replica A's attempt began, within A's lease (%v)", marker, wait, pgLease)
			}
		}
	}
	t.Logf("replica A had %d deliveries in flight when killed; replica B finished them %v after the kill",
		len(aStarted), time.Since(killedAt).Round(100*time.Millisecond))
	waitQueue(t, b, "an empty queue", func(q []harness.QueueEntry) bool { return len(q) == 0 })
}

// pgMarkerOf is a message's marker (from its Message-ID), or "".
func pgMarkerOf(m *smtptest.Message) string {
	if s := pgMarker.FindSubmatch(append([]byte("\r\n"), m.Header...)); s != nil {
		return string(s[1])
	}
	return ""
}

// expectOnce checks that the sink accepted each sent message exactly once
// and nothing else.
func expectOnce(t *testing.T, sink *smtptest.Sink, sent []string) {
	t.Helper()
	count := map[string]int{}
	for _, m := range sink.Messages() {
		count[pgMarkerOf(m)]++
	}
	for _, s := range sent {
		if count[s] != 1 {
			t.Errorf("%s reached the upstream %d times, want once", s, count[s])
		}
		delete(count, s)
	}
	for s, c := range count {
		t.Errorf("the upstream got %d unexpected message(s) %q", c, s)
	}
}
