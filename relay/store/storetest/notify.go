package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bccguard/bccguard/relay/store"
)

// The notification outbox part of the suite. Every backend's store must
// implement store.NotificationStore.
//
// What it pins beyond the interface's comments:
//   - IDs are decimal numbers that grow in the order notifications are
//     queued; Notifications lists in that order.
//   - A notification queued with a change exists exactly when the change
//     was made: with a Commit that succeeded, with an Approve, Release or
//     Discard of a held message, never with one that found it not held.
//   - Payloads come back byte for byte as JSON (whitespace may differ).
func testNotifications(t *testing.T, open func(*testing.T) store.Store, cfg config) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, open func(*testing.T) store.Store, cfg config)
	}{
		{"QueueAndClaim", testNotifyQueueAndClaim},
		{"WithCommit", testNotifyWithCommit},
		{"WithReview", testNotifyWithReview},
		{"Keys", testNotifyKeys},
		{"Leases", testNotifyLeases},
		{"Outcomes", testNotifyOutcomes},
		{"ConcurrentClaimers", testNotifyConcurrentClaimers},
		{"NextDue", testNotifyNextDue},
		{"Purge", testNotifyPurge},
		{"Invalid", testNotifyInvalid},
		{"Reopen", testNotifyReopen},
		{"Closed", testNotifyClosed},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open, cfg) })
	}
}

func nstore(t *testing.T, s store.Store) store.NotificationStore {
	t.Helper()
	ns, ok := s.(store.NotificationStore)
	if !ok {
		t.Fatalf("%T does not implement store.NotificationStore", s)
	}
	return ns
}

// notice makes a notification with a payload naming its key.
func notice(key, channel, event, msgID string) store.NewNotification {
	p, _ := json.Marshal(map[string]any{"key": key, "n": 1, "text": "held \u00e9 <x> \"q\""})
	return store.NewNotification{Key: key, Channel: channel, Event: event, MessageID: msgID, Payload: p}
}

func queueNotices(t *testing.T, ns store.NotificationStore, n ...store.NewNotification) int {
	t.Helper()
	added, err := ns.QueueNotifications(ctx, n)
	if err != nil {
		t.Fatalf("QueueNotifications: %v", err)
	}
	return added
}

func claimNotices(t *testing.T, ns store.NotificationStore, owner string, at time.Time, limit int) []store.ClaimedNotification {
	t.Helper()
	cs, err := ns.ClaimNotifications(ctx, owner, at, limit, time.Minute)
	if err != nil {
		t.Fatalf("ClaimNotifications(%s): %v", owner, err)
	}
	return cs
}

func completeNotice(t *testing.T, ns store.NotificationStore, owner, id string, out store.NotificationOutcome) {
	t.Helper()
	if err := ns.CompleteNotification(ctx, owner, id, out); err != nil {
		t.Fatalf("CompleteNotification(%s, %s, %s): %v", owner, id, out.State, err)
	}
}

func listNotices(t *testing.T, ns store.NotificationStore, f store.NotificationFilter) []store.Notification {
	t.Helper()
	out, err := ns.Notifications(ctx, f)
	if err != nil {
		t.Fatalf("Notifications(%+v): %v", f, err)
	}
	return out
}

func noticeKeys[T any](ns []T, key func(T) string) []string {
	out := []string{}
	for _, n := range ns {
		out = append(out, key(n))
	}
	return out
}

func keyOf(n store.Notification) string             { return n.Key }
func claimedKey(c store.ClaimedNotification) string { return c.Key }

// samePayload compares JSON by value.
func samePayload(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return fmt.Sprint(x) == fmt.Sprint(y)
}

func testNotifyQueueAndClaim(t *testing.T, open func(*testing.T) store.Store, _ config) {
	ns := nstore(t, open(t))
	before := now()
	in := []store.NewNotification{notice("k1", "hook", "held", "M1"), notice("k2", "mail", "digest", ""), notice("k3", "hook", "released", "M1")}
	if n := queueNotices(t, ns, in...); n != 3 {
		t.Fatalf("queued %d, want 3", n)
	}
	all := listNotices(t, ns, store.NotificationFilter{})
	if got := noticeKeys(all, keyOf); !slices.Equal(got, []string{"k1", "k2", "k3"}) {
		t.Fatalf("Notifications lists %v, want k1 k2 k3 in order", got)
	}
	for i, n := range all {
		w := in[i]
		if n.ID == "" || n.Channel != w.Channel || n.Event != w.Event || n.MessageID != w.MessageID || !samePayload(n.Payload, w.Payload) {
			t.Errorf("notification %d: %+v, want %+v", i, n, w)
		}
		if n.State != store.NotificationPending || n.Attempts != 0 || n.CreatedAt.Before(before.Add(-time.Second)) || !sameTime(n.NextAttempt, n.CreatedAt) || !n.DoneAt.IsZero() {
			t.Errorf("notification %d: state %+v, want pending, due at creation", i, n)
		}
	}
	if f := listNotices(t, ns, store.NotificationFilter{Channel: "hook", MessageID: "M1", Limit: 1}); len(f) != 1 || f[0].Key != "k1" {
		t.Errorf("filter by channel and message, limit 1: %v", noticeKeys(f, keyOf))
	}
	counts, err := ns.PendingNotifications(ctx)
	if err != nil || counts["hook"] != 2 || counts["mail"] != 1 || len(counts) != 2 {
		t.Fatalf("PendingNotifications = %v, %v; want hook 2, mail 1", counts, err)
	}
	at := now().Add(time.Second)
	cs := claimNotices(t, ns, "a", at, 2)
	if got := noticeKeys(cs, claimedKey); !slices.Equal(got, []string{"k1", "k2"}) {
		t.Fatalf("claim 2: %v, want k1 k2", got)
	}
	if !sameTime(cs[0].LeaseUntil, at.Add(time.Minute)) {
		t.Errorf("lease until %v, want %v", cs[0].LeaseUntil, at.Add(time.Minute))
	}
	if !samePayload(cs[0].Payload, in[0].Payload) {
		t.Errorf("claimed payload %s, want %s", cs[0].Payload, in[0].Payload)
	}
	if rest := claimNotices(t, ns, "b", at, 10); len(rest) != 1 || rest[0].Key != "k3" {
		t.Fatalf("second claimant got %v, want only k3", noticeKeys(rest, claimedKey))
	}
	if cs := claimNotices(t, ns, "a", now().Add(-time.Hour), 10); len(cs) != 0 {
		t.Fatalf("claim before they were due: %v", noticeKeys(cs, claimedKey))
	}
}

func testNotifyWithCommit(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	ns := nstore(t, s)
	// A hold with its notices, a message with deliveries and a notice
	// (as a monitor-mode policy records what it would have held).
	hold := heldMessage("r1", "news@brand.example", "192.0.2.1", "crm", now())
	sp, id, err := s.NewSpool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	writeChunks(t, sp, []byte("held"), 100)
	if _, err := sp.Commit(ctx, hold, nil, notice(id+"/held/hook", "hook", "held", id), notice(id+"/held/sender", "sender", "held", id)); err != nil {
		t.Fatalf("Commit with notices: %v", err)
	}
	sp2, id2, _ := s.NewSpool(ctx)
	writeChunks(t, sp2, body(300<<10, 3), 8192) // a body too large to stay inline
	if _, err := sp2.Commit(ctx, testMessage(), rcpts(2), notice(id2+"/held/hook", "hook", "held", id2)); err != nil {
		t.Fatalf("Commit with deliveries and a notice: %v", err)
	}
	// Nothing of a spool that is aborted or whose commit fails.
	sp3, id3, _ := s.NewSpool(ctx)
	sp3.Write([]byte("x"))
	sp3.Abort()
	sp4, id4, _ := s.NewSpool(ctx)
	sp4.Write([]byte("x"))
	bad := heldMessage("r1", "a@example.com", "192.0.2.1", "", now())
	if _, err := sp4.Commit(ctx, bad, rcpts(1), notice(id4+"/held/hook", "hook", "held", id4)); err == nil {
		t.Fatal("a hold with deliveries was committed")
	}
	got := noticeKeys(listNotices(t, ns, store.NotificationFilter{}), keyOf)
	want := []string{id + "/held/hook", id + "/held/sender", id2 + "/held/hook"}
	if !slices.Equal(got, want) {
		t.Fatalf("notifications %v, want %v (none of %s or %s)", got, want, id3, id4)
	}
	if n := listNotices(t, ns, store.NotificationFilter{MessageID: id}); len(n) != 2 || n[0].Event != "held" {
		t.Fatalf("by message: %+v", n)
	}
}

func testNotifyWithReview(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	qs, ns := qstore(t, s), nstore(t, s)
	a := commitHeld(t, s, []byte("a"), "r1", now())
	b := commitHeld(t, s, []byte("b"), "r1", now())
	c := commitHeld(t, s, []byte("c"), "r1", now())
	if _, err := qs.Approve(ctx, a, store.Approval{Actor: "rita", Rewrite: store.RewriteExplode}, notice(a+"/wait", "hook", "needs_second_reviewer", a)); err != nil {
		t.Fatal(err)
	}
	if err := qs.Release(ctx, a, explodeTo("a@example.net"), store.Resolution{Actor: "rob", Action: "release-explode"}, notice(a+"/released", "hook", "released", a)); err != nil {
		t.Fatal(err)
	}
	if err := qs.Discard(ctx, b, store.HoldDeleted, store.Resolution{Actor: "rob", Action: "delete"}, notice(b+"/deleted", "hook", "deleted", b)); err != nil {
		t.Fatal(err)
	}
	if err := qs.Discard(ctx, c, store.HoldExpired, store.Resolution{Actor: "system:expiry", Action: "expire-delete"}, notice(c+"/expired", "hook", "expired", c)); err != nil {
		t.Fatal(err)
	}
	// Actions on holds no longer held change nothing and queue nothing.
	_, err := qs.Approve(ctx, b, store.Approval{Actor: "rita"}, notice(b+"/wait", "hook", "needs_second_reviewer", b))
	wantErr(t, "Approve of a deleted hold", err, store.ErrNotHeld)
	err = qs.Release(ctx, b, explodeTo("a@example.net"), store.Resolution{Actor: "rob"}, notice(b+"/released", "hook", "released", b))
	wantErr(t, "Release of a deleted hold", err, store.ErrNotHeld)
	err = qs.Discard(ctx, a, store.HoldDeleted, store.Resolution{Actor: "rob"}, notice(a+"/deleted", "hook", "deleted", a))
	wantErr(t, "Discard of a released hold", err, store.ErrNotHeld)
	err = qs.Release(ctx, "NOSUCH", explodeTo("a@example.net"), store.Resolution{Actor: "rob"}, notice("NOSUCH/released", "hook", "released", "NOSUCH"))
	wantErr(t, "Release of no hold", err, store.ErrNotFound)

	got := noticeKeys(listNotices(t, ns, store.NotificationFilter{}), keyOf)
	want := []string{a + "/wait", a + "/released", b + "/deleted", c + "/expired"}
	if !slices.Equal(got, want) {
		t.Fatalf("notifications %v, want %v", got, want)
	}
}

func testNotifyKeys(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	ns := nstore(t, s)
	if n := queueNotices(t, ns, notice("digest/hook/1", "hook", "digest", ""), notice("digest/hook/1", "hook", "digest", "")); n != 1 {
		t.Fatalf("a key given twice in one call queued %d, want 1", n)
	}
	if n := queueNotices(t, ns, notice("digest/hook/1", "hook", "digest", ""), notice("digest/hook/2", "hook", "digest", "")); n != 1 {
		t.Fatalf("a taken key and a new one queued %d, want 1", n)
	}
	// A key taken by a sent notification stays taken.
	for _, c := range claimNotices(t, ns, "a", now().Add(time.Second), 10) {
		completeNotice(t, ns, "a", c.ID, store.NotificationOutcome{State: store.NotificationSent})
	}
	if n := queueNotices(t, ns, notice("digest/hook/2", "hook", "digest", "")); n != 0 {
		t.Fatalf("the key of a sent notification was queued again (%d)", n)
	}
	// And a commit that brings a taken key is still committed, without it.
	sp, id, _ := s.NewSpool(ctx)
	sp.Write([]byte("x"))
	if _, err := sp.Commit(ctx, testMessage(), rcpts(1), notice("digest/hook/1", "hook", "digest", "")); err != nil {
		t.Fatalf("Commit with a taken key: %v", err)
	}
	if _, err := s.Message(ctx, id); err != nil {
		t.Fatalf("message committed with a taken key: %v", err)
	}
	if all := listNotices(t, ns, store.NotificationFilter{}); len(all) != 2 {
		t.Fatalf("%d notifications, want 2", len(all))
	}
	if n := queueNotices(t, ns); n != 0 {
		t.Fatalf("queueing none: %d", n)
	}
}

func testNotifyLeases(t *testing.T, open func(*testing.T) store.Store, _ config) {
	ns := nstore(t, open(t))
	queueNotices(t, ns, notice("k1", "hook", "held", "M1"))
	t0 := now().Add(time.Second)
	cs, err := ns.ClaimNotifications(ctx, "a", t0, 10, 10*time.Second)
	if err != nil || len(cs) != 1 {
		t.Fatalf("claim: %v %v", cs, err)
	}
	id := cs[0].ID
	if again := claimNotices(t, ns, "b", t0.Add(5*time.Second), 10); len(again) != 0 {
		t.Fatal("claimed under a live lease")
	}
	// The lease ends: b takes it over, and a's outcome is refused.
	late, err := ns.ClaimNotifications(ctx, "b", t0.Add(11*time.Second), 10, time.Minute)
	if err != nil || len(late) != 1 || late[0].ID != id {
		t.Fatalf("takeover after the lease: %v %v", late, err)
	}
	err = ns.CompleteNotification(ctx, "a", id, store.NotificationOutcome{State: store.NotificationSent})
	wantErr(t, "Complete by the owner of a lease taken over", err, store.ErrLeaseLost)
	err = ns.CompleteNotification(ctx, "c", id, store.NotificationOutcome{State: store.NotificationSent})
	wantErr(t, "Complete by one who never claimed it", err, store.ErrLeaseLost)
	completeNotice(t, ns, "b", id, store.NotificationOutcome{State: store.NotificationSent})
	err = ns.CompleteNotification(ctx, "b", id, store.NotificationOutcome{State: store.NotificationSent})
	wantErr(t, "Complete twice", err, store.ErrLeaseLost)
	err = ns.CompleteNotification(ctx, "b", "987654321", store.NotificationOutcome{State: store.NotificationSent})
	wantErr(t, "Complete of no notification", err, store.ErrNotFound)
	err = ns.CompleteNotification(ctx, "b", "not-a-number", store.NotificationOutcome{State: store.NotificationSent})
	wantErr(t, "Complete of a malformed ID", err, store.ErrNotFound)
}

func testNotifyOutcomes(t *testing.T, open func(*testing.T) store.Store, _ config) {
	ns := nstore(t, open(t))
	queueNotices(t, ns, notice("retry", "hook", "held", "M1"), notice("sent", "hook", "held", "M2"), notice("failed", "mail", "held", "M3"))
	t0 := now().Add(time.Second)
	cs := claimNotices(t, ns, "a", t0, 10)
	if len(cs) != 3 {
		t.Fatalf("claimed %d, want 3", len(cs))
	}
	next := t0.Add(time.Hour)
	completeNotice(t, ns, "a", cs[0].ID, store.NotificationOutcome{State: store.NotificationPending, NextAttempt: next, Error: "503 Service Unavailable"})
	completeNotice(t, ns, "a", cs[1].ID, store.NotificationOutcome{State: store.NotificationSent})
	completeNotice(t, ns, "a", cs[2].ID, store.NotificationOutcome{State: store.NotificationFailed, Error: "gave up after 24h"})
	if err := ns.CompleteNotification(ctx, "a", cs[0].ID, store.NotificationOutcome{State: "bogus"}); err == nil {
		t.Fatal("an unknown outcome was accepted")
	}
	byKey := map[string]store.Notification{}
	for _, n := range listNotices(t, ns, store.NotificationFilter{}) {
		byKey[n.Key] = n
	}
	if n := byKey["retry"]; n.State != store.NotificationPending || n.Attempts != 1 || !sameTime(n.NextAttempt, next) || n.LastError != "503 Service Unavailable" || !n.DoneAt.IsZero() {
		t.Errorf("retried: %+v", n)
	}
	if n := byKey["sent"]; n.State != store.NotificationSent || n.Attempts != 1 || n.DoneAt.IsZero() {
		t.Errorf("sent: %+v", n)
	}
	if n := byKey["failed"]; n.State != store.NotificationFailed || n.LastError != "gave up after 24h" || n.DoneAt.IsZero() {
		t.Errorf("failed: %+v", n)
	}
	if f := listNotices(t, ns, store.NotificationFilter{States: []store.NotificationState{store.NotificationSent, store.NotificationFailed}}); len(f) != 2 {
		t.Errorf("final ones: %v", noticeKeys(f, keyOf))
	}
	counts, err := ns.PendingNotifications(ctx)
	if err != nil || counts["hook"] != 1 || counts["mail"] != 0 {
		t.Fatalf("pending %v %v, want hook 1", counts, err)
	}
	if cs := claimNotices(t, ns, "b", next.Add(-time.Second), 10); len(cs) != 0 {
		t.Fatalf("claimed before its retry was due: %v", noticeKeys(cs, claimedKey))
	}
	cs = claimNotices(t, ns, "b", next, 10)
	if len(cs) != 1 || cs[0].Key != "retry" || cs[0].Attempts != 1 {
		t.Fatalf("claim at the retry: %+v", cs)
	}
}

func testNotifyConcurrentClaimers(t *testing.T, open func(*testing.T) store.Store, _ config) {
	ns := nstore(t, open(t))
	const total = 60
	var in []store.NewNotification
	for i := range total {
		in = append(in, notice(fmt.Sprintf("k%02d", i), "hook", "held", ""))
	}
	queueNotices(t, ns, in...)
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
	)
	at := now().Add(time.Second)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("w%d", w)
			for {
				cs, err := ns.ClaimNotifications(ctx, owner, at, 3, time.Minute)
				if err != nil {
					t.Errorf("claim: %v", err)
					return
				}
				if len(cs) == 0 {
					return
				}
				for _, c := range cs {
					mu.Lock()
					seen[c.Key]++
					mu.Unlock()
					if err := ns.CompleteNotification(ctx, owner, c.ID, store.NotificationOutcome{State: store.NotificationSent}); err != nil {
						t.Errorf("complete %s: %v", c.ID, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != total {
		t.Fatalf("%d notifications claimed, want %d", len(seen), total)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s claimed %d times", k, n)
		}
	}
}

func testNotifyNextDue(t *testing.T, open func(*testing.T) store.Store, _ config) {
	ns := nstore(t, open(t))
	if _, ok, err := ns.NextNotificationDue(ctx); ok || err != nil {
		t.Fatalf("NextNotificationDue of an empty outbox: %v %v", ok, err)
	}
	queueNotices(t, ns, notice("a", "hook", "held", ""), notice("b", "hook", "held", ""))
	at, ok, err := ns.NextNotificationDue(ctx)
	if err != nil || !ok || at.After(time.Now()) {
		t.Fatalf("NextNotificationDue = %v %v %v, want now", at, ok, err)
	}
	// Both claimed: due when their lease ends. Then one deferred an hour.
	t0 := time.Now()
	cs, err := ns.ClaimNotifications(ctx, "w", t0, 10, 30*time.Minute)
	if err != nil || len(cs) != 2 {
		t.Fatal(cs, err)
	}
	at, ok, _ = ns.NextNotificationDue(ctx)
	if !ok || !sameTime(at, cs[0].LeaseUntil) {
		t.Fatalf("NextNotificationDue under leases = %v, want the lease's end %v", at, cs[0].LeaseUntil)
	}
	completeNotice(t, ns, "w", cs[0].ID, store.NotificationOutcome{State: store.NotificationPending, NextAttempt: t0.Add(time.Hour)})
	completeNotice(t, ns, "w", cs[1].ID, store.NotificationOutcome{State: store.NotificationSent})
	at, ok, _ = ns.NextNotificationDue(ctx)
	if !ok || !sameTime(at, t0.Add(time.Hour)) {
		t.Fatalf("NextNotificationDue after a deferral = %v, want %v", at, t0.Add(time.Hour))
	}
}

func testNotifyPurge(t *testing.T, open func(*testing.T) store.Store, _ config) {
	ns := nstore(t, open(t))
	queueNotices(t, ns, notice("sent", "hook", "held", ""), notice("failed", "hook", "held", ""), notice("pending", "hook", "held", ""))
	cs := claimNotices(t, ns, "a", now().Add(time.Second), 10)
	completeNotice(t, ns, "a", cs[0].ID, store.NotificationOutcome{State: store.NotificationSent})
	completeNotice(t, ns, "a", cs[1].ID, store.NotificationOutcome{State: store.NotificationFailed})
	completeNotice(t, ns, "a", cs[2].ID, store.NotificationOutcome{State: store.NotificationPending, NextAttempt: now().Add(-time.Hour)})
	if n, err := ns.PurgeNotifications(ctx, now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("purge of what was done before an hour ago: %d %v", n, err)
	}
	n, err := ns.PurgeNotifications(ctx, now().Add(time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("PurgeNotifications = %d, %v; want 2", n, err)
	}
	if left := noticeKeys(listNotices(t, ns, store.NotificationFilter{}), keyOf); !slices.Equal(left, []string{"pending"}) {
		t.Fatalf("left after purge: %v", left)
	}
	if n := queueNotices(t, ns, notice("sent", "hook", "held", "")); n != 1 {
		t.Fatalf("a purged key could not be queued again (%d)", n)
	}
}

func testNotifyInvalid(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	qs, ns := qstore(t, s), nstore(t, s)
	for _, bad := range []store.NewNotification{
		{Channel: "hook", Event: "held", Payload: []byte(`{}`)},
		{Key: "k", Event: "held", Payload: []byte(`{}`)},
		{Key: "k", Channel: "hook", Payload: []byte(`{}`)},
		{Key: "k", Channel: "hook", Event: "held", Payload: []byte(`{"truncated"`)},
		{Key: "k", Channel: "hook", Event: "held"},
	} {
		if _, err := ns.QueueNotifications(ctx, []store.NewNotification{bad}); err == nil {
			t.Errorf("QueueNotifications accepted %+v", bad)
		}
		id := commitHeld(t, s, []byte("x"), "r1", now())
		if err := qs.Discard(ctx, id, store.HoldDeleted, store.Resolution{Actor: "rob"}, bad); err == nil {
			t.Errorf("Discard accepted notification %+v", bad)
		}
		if h := getHold(t, qs, id); h.State != store.HoldHeld {
			t.Errorf("Discard with a bad notification changed the hold to %s", h.State)
		}
	}
	if all := listNotices(t, ns, store.NotificationFilter{}); len(all) != 0 {
		t.Fatalf("invalid notifications stored: %+v", all)
	}
	if _, err := ns.ClaimNotifications(ctx, "a", now(), 1, 0); err == nil {
		t.Error("a claim without a lease was accepted")
	}
	if cs, err := ns.ClaimNotifications(ctx, "a", now(), 0, time.Minute); err != nil || len(cs) != 0 {
		t.Errorf("claim of 0: %v %v", cs, err)
	}
}

func testNotifyReopen(t *testing.T, open func(*testing.T) store.Store, cfg config) {
	if cfg.reopen == nil {
		t.Skip("backend gave no WithReopen")
	}
	s := open(t)
	ns := nstore(t, s)
	queueNotices(t, ns, notice("leased", "hook", "held", ""), notice("sent", "hook", "held", ""), notice("retry", "mail", "held", ""))
	cs := claimNotices(t, ns, "a", now().Add(time.Second), 10)
	completeNotice(t, ns, "a", cs[1].ID, store.NotificationOutcome{State: store.NotificationSent})
	next := now().Add(time.Minute)
	completeNotice(t, ns, "a", cs[2].ID, store.NotificationOutcome{State: store.NotificationPending, NextAttempt: next, Error: "timeout"})
	before := listNotices(t, ns, store.NotificationFilter{})

	s = cfg.reopen(t, s)
	ns = nstore(t, s)
	after := listNotices(t, ns, store.NotificationFilter{})
	if len(after) != len(before) {
		t.Fatalf("after reopen %d notifications, want %d", len(after), len(before))
	}
	for i := range before {
		a, b := after[i], before[i]
		if a.ID != b.ID || a.Key != b.Key || a.State != b.State || a.Attempts != b.Attempts || a.LastError != b.LastError ||
			!sameTime(a.NextAttempt, b.NextAttempt) || !sameTime(a.DoneAt, b.DoneAt) || !samePayload(a.Payload, b.Payload) {
			t.Errorf("after reopen %+v, want %+v", a, b)
		}
	}
	// The lease held at the restart is gone; the key stays taken; new
	// IDs keep growing.
	if cs := claimNotices(t, ns, "b", now().Add(time.Second), 10); len(cs) != 1 || cs[0].Key != "leased" {
		t.Fatalf("claim after reopen: %v, want the notification leased before it", noticeKeys(cs, claimedKey))
	}
	if n := queueNotices(t, ns, notice("sent", "hook", "held", ""), notice("new", "hook", "held", "")); n != 1 {
		t.Fatalf("queued %d after reopen, want 1", n)
	}
	all := listNotices(t, ns, store.NotificationFilter{})
	last, prev := all[len(all)-1], before[len(before)-1]
	if ln, _ := strconv.ParseInt(last.ID, 10, 64); last.Key != "new" || ln <= mustInt(t, prev.ID) {
		t.Fatalf("the new notification got ID %s after %s", last.ID, prev.ID)
	}
}

func mustInt(t *testing.T, id string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		t.Fatalf("notification ID %q is not a number", id)
	}
	return n
}

func testNotifyClosed(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	ns := nstore(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := ns.QueueNotifications(ctx, []store.NewNotification{notice("k", "hook", "held", "")})
	wantErr(t, "QueueNotifications after Close", err, store.ErrClosed)
	_, err = ns.ClaimNotifications(ctx, "a", now(), 1, time.Minute)
	wantErr(t, "ClaimNotifications after Close", err, store.ErrClosed)
	err = ns.CompleteNotification(ctx, "a", "1", store.NotificationOutcome{State: store.NotificationSent})
	wantErr(t, "CompleteNotification after Close", err, store.ErrClosed)
	_, _, err = ns.NextNotificationDue(ctx)
	wantErr(t, "NextNotificationDue after Close", err, store.ErrClosed)
	_, err = ns.Notifications(ctx, store.NotificationFilter{})
	wantErr(t, "Notifications after Close", err, store.ErrClosed)
	_, err = ns.PendingNotifications(ctx)
	wantErr(t, "PendingNotifications after Close", err, store.ErrClosed)
	_, err = ns.PurgeNotifications(ctx, now())
	wantErr(t, "PurgeNotifications after Close", err, store.ErrClosed)
}
