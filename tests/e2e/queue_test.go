package e2e

import (
	"testing"

	"github.com/bccguard/bccguard/tests/harness"
)

var downMsg = harness.CRLF(`From: alice@example.com
To: bob@example.net
Subject: while the upstream is down
Date: Sat, 21 Nov 2026 10:00:00 +0000

It waits in the queue.
`)

// TestUpstreamDownDefersThenDelivers: with the upstream refusing
// connections the message is accepted and deferred; when the upstream is
// back, the next retry delivers it.
func TestUpstreamDownDefersThenDelivers(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	sink.Stop()
	r := harness.Start(t, "", harness.WithUpstream(sink.Addr()))

	queueID(t, harness.Send(t, r.Addr(), "alice@example.com", []string{"bob@example.net"}, downMsg))
	q := waitQueue(t, r, "a deferred delivery after a failed attempt", func(q []harness.QueueEntry) bool {
		for _, e := range q {
			if e.State == "deferred" && e.Attempts >= 1 {
				return true
			}
		}
		return false
	})
	for _, e := range q {
		if e.State == "deferred" && e.LastError == "" {
			t.Errorf("deferred delivery %s gives operators no last_error", e.ID)
		}
	}

	sink.Start()
	m := sink.WaitFor(t, 1, deliverTimeout)[0]
	hdr, body := harness.SplitMessage(downMsg)
	relayedCopy(t, m, hdr, body)
	waitQueue(t, r, "nothing pending after delivery", func(q []harness.QueueEntry) bool { return pending(q) == 0 })
}

// TestQueueFlushRetriesNow: with retries hours apart, `bccguard queue flush`
// makes a deferred delivery go at once, as `postqueue -f` does.
func TestQueueFlushRetriesNow(t *testing.T) {
	t.Parallel()
	sink := harness.NewSink(t)
	sink.Stop()
	r := harness.Start(t, "queue: {retry_first: 1h, retry_max: 2h, lifetime: 5d}\n", harness.WithUpstream(sink.Addr()))

	queueID(t, harness.Send(t, r.Addr(), "alice@example.com", []string{"bob@example.net"}, downMsg))
	waitQueue(t, r, "a deferred delivery", func(q []harness.QueueEntry) bool { return harness.CountState(q, "deferred") == 1 })
	sink.Start()
	r.QueueFlush()
	// Far less than the hour until the next scheduled retry.
	m := sink.WaitFor(t, 1, deliverTimeout)[0]
	hdr, body := harness.SplitMessage(downMsg)
	relayedCopy(t, m, hdr, body)
	waitQueue(t, r, "nothing pending after delivery", func(q []harness.QueueEntry) bool { return pending(q) == 0 })
}
