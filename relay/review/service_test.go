package review_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay/notify"
	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/store"
	"github.com/bccguard/bccguard/relay/store/embedded"
)

// TestReleaseQueuesDeliveries: each rewrite queues the deliveries Claim
// then hands out, to the chosen recipients only.
func TestReleaseQueuesDeliveries(t *testing.T) {
	all := []string{"ann@one.example", "bob@two.example", "cat@two.example"}
	cases := []struct {
		name string
		body string
		want []store.NewDelivery // recipients as Addr only
		res  review.ReleaseResult
	}{
		{"default is explode", ``, explode(all...), review.ReleaseResult{Rewrite: "explode", Deliveries: 3, Recipients: 3}},
		{"explode subset", `{"rewrite":"explode","recipients":["CAT@two.example","ann@one.example","ann@one.example"]}`,
			explode("ann@one.example", "cat@two.example"), review.ReleaseResult{Rewrite: "explode", Deliveries: 2, Recipients: 2}},
		{"bcc", `{"rewrite":"bcc"}`, group(store.RewriteBcc, all...), review.ReleaseResult{Rewrite: "bcc", Deliveries: 1, Recipients: 3}},
		{"bcc subset", `{"rewrite":"bcc","recipients":["bob@two.example"]}`, group(store.RewriteBcc, "bob@two.example"),
			review.ReleaseResult{Rewrite: "bcc", Deliveries: 1, Recipients: 1}},
		{"as-is forced", `{"rewrite":"as-is","force":true}`, group(store.RewritePass, all...),
			review.ReleaseResult{Rewrite: "as-is", Deliveries: 1, Recipients: 3, Forced: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			id := e.hold(t, holdSpec{rcpts: all})
			w := e.call(t, basic("alice", userPass), "POST", "/api/v1/quarantine/"+id+"/release", c.body)
			mustCode(t, w, 200, "")
			res := decode[review.ReleaseResult](t, w)
			c.res.ID, c.res.Status = id, review.StatusReleased
			if res.ID != c.res.ID || res.Status != c.res.Status || res.Rewrite != c.res.Rewrite || res.Deliveries != c.res.Deliveries ||
				res.Recipients != c.res.Recipients || res.Forced != c.res.Forced {
				t.Fatalf("result %+v, want %+v", res, c.res)
			}
			var got []store.NewDelivery
			for _, cl := range e.claimAll(t) {
				if cl.Message.ID != id {
					t.Fatalf("claimed a delivery of %s", cl.Message.ID)
				}
				got = append(got, store.NewDelivery{Recipients: cl.Delivery.Recipients, Rewrite: cl.Delivery.Rewrite})
			}
			if !sameDeliveries(got, c.want) {
				t.Fatalf("deliveries %v, want %v", got, c.want)
			}
			if e.state(t, id) != store.HoldReleased || e.wakes.Load() == 0 {
				t.Fatalf("state %s, wakes %d", e.state(t, id), e.wakes.Load())
			}
			es := e.audit(t, id)
			if len(es) != 1 || es[0].Actor != "alice" || es[0].Action != "release-"+string(c.res.Rewrite) || es[0].Outcome != "ok" {
				t.Fatalf("audit %+v", es)
			}
			if c.res.Forced && !strings.Contains(es[0].Detail, "forced") {
				t.Fatalf("as-is release not audited as forced: %q", es[0].Detail)
			}
			h, _ := e.st.Hold(ctx, id)
			if h.Resolution == nil || h.Resolution.Actor != "alice" || (c.res.Forced != (h.Resolution.Note == "forced")) {
				t.Fatalf("resolution %+v", h.Resolution)
			}
		})
	}
}

func explode(rs ...string) []store.NewDelivery {
	var out []store.NewDelivery
	for _, r := range rs {
		out = append(out, store.NewDelivery{Recipients: []store.Recipient{{Addr: r}}, Rewrite: store.RewriteExplode})
	}
	return out
}

func group(rw store.Rewrite, rs ...string) []store.NewDelivery {
	d := store.NewDelivery{Rewrite: rw}
	for _, r := range rs {
		d.Recipients = append(d.Recipients, store.Recipient{Addr: r})
	}
	return []store.NewDelivery{d}
}

func sameDeliveries(a, b []store.NewDelivery) bool {
	key := func(ds []store.NewDelivery) []string {
		var k []string
		for _, d := range ds {
			k = append(k, string(d.Rewrite)+":"+addrs(d.Recipients))
		}
		slices.Sort(k)
		return k
	}
	return slices.Equal(key(a), key(b))
}

// TestFourEyes: under the rule, one reviewer's release is an approval; the
// same reviewer again does not release (nor through another channel); a
// second reviewer does. All of it is audited.
func TestFourEyes(t *testing.T) {
	e := newEnv(t, fourEyes("customer-list"))
	id := e.hold(t, holdSpec{rule: "customer-list"})
	path := "/api/v1/quarantine/" + id + "/release"

	w := e.call(t, bearer(tokReviewerA), "POST", path, "")
	if w.Code != 202 {
		t.Fatalf("first release: %d %s", w.Code, w.Body.String())
	}
	if r := decode[review.ReleaseResult](t, w); r.Status != review.StatusNeedsSecondReviewer || len(r.Approvals) != 1 || r.Approvals[0].Actor != "rita" {
		t.Fatalf("first release result %+v", r)
	}
	mustCode(t, e.call(t, bearer(tokReviewerA), "POST", path, ""), 409, "needs_second_reviewer")
	if _, err := e.svc.Release(ctx, review.Actor{Name: "rita", Role: review.RoleReviewer, Via: review.ViaWeb}, id, review.ReleaseOptions{}); review.CodeOf(err) != review.CodeNeedsSecondReviewer {
		t.Fatalf("same reviewer via web: %v", err)
	}
	// A different reviewer who wants another rewrite approves that one.
	if w := e.call(t, bearer(tokReviewerB), "POST", path, `{"rewrite":"bcc"}`); w.Code != 202 {
		t.Fatalf("second reviewer with another rewrite: %d %s", w.Code, w.Body.String())
	}
	if len(e.claimAll(t)) != 0 || e.state(t, id) != store.HoldHeld {
		t.Fatal("released without two reviewers agreeing")
	}
	w = e.call(t, bearer(tokReviewerB), "POST", path, `{"rewrite":"explode"}`)
	mustCode(t, w, 200, "")
	if r := decode[review.ReleaseResult](t, w); r.Status != review.StatusReleased || r.Deliveries != 3 {
		t.Fatalf("second reviewer: %+v", r)
	}
	if n := len(e.claimAll(t)); n != 3 {
		t.Fatalf("%d deliveries, want 3", n)
	}
	var trail []string
	for _, a := range slices.Backward(e.audit(t, id)) {
		trail = append(trail, a.Actor+" "+a.Action+" "+a.Outcome)
	}
	want := []string{
		"rita approve ok",
		"rita approve needs_second_reviewer",
		"rita approve needs_second_reviewer",
		"rob approve ok",
		"rob release-explode ok",
	}
	if !slices.Equal(trail, want) {
		t.Fatalf("audit trail\n%s\nwant\n%s", strings.Join(trail, "\n"), strings.Join(want, "\n"))
	}
	// Other rules are not affected.
	other := e.hold(t, holdSpec{rule: "many-visible"})
	if r, err := e.svc.Release(ctx, rita, other, review.ReleaseOptions{}); err != nil || r.Status != review.StatusReleased {
		t.Fatalf("release outside the rule: %+v %v", r, err)
	}
}

// TestRoles: the Service checks roles itself, whatever its caller did.
func TestRoles(t *testing.T) {
	e := newEnv(t)
	id := e.hold(t, holdSpec{})
	checks := []struct {
		name string
		fn   func(review.Actor) error
		view bool // allowed to a viewer
	}{
		{"list", func(a review.Actor) error { _, err := e.svc.List(ctx, a, review.Filter{}); return err }, true},
		{"show", func(a review.Actor) error { _, err := e.svc.Show(ctx, a, id); return err }, true},
		{"audit", func(a review.Actor) error { _, err := e.svc.Audit(ctx, a, store.AuditFilter{}); return err }, true},
		{"raw", func(a review.Actor) error {
			rc, err := e.svc.Raw(ctx, a, id)
			if err == nil {
				rc.Close()
			}
			return err
		}, true},
		{"release", func(a review.Actor) error { _, err := e.svc.Release(ctx, a, id, review.ReleaseOptions{}); return err }, false},
		{"delete", func(a review.Actor) error { _, err := e.svc.Delete(ctx, a, id, review.DeleteOptions{}); return err }, false},
		{"bulk", func(a review.Actor) error {
			_, err := e.svc.Bulk(ctx, a, review.Filter{Rule: "x"}, review.BulkAction{Kind: review.BulkDelete}, true)
			return err
		}, false},
	}
	odd := review.Actor{Name: "olga", Role: "admin"}
	for _, c := range checks {
		if err := c.fn(nobody); review.CodeOf(err) != review.CodeUnauthorized {
			t.Errorf("%s without actor: %v", c.name, err)
		}
		if err := c.fn(odd); review.CodeOf(err) != review.CodeForbidden {
			t.Errorf("%s with unknown role: %v", c.name, err)
		}
		if err := c.fn(vera); (err == nil) != c.view || (!c.view && review.CodeOf(err) != review.CodeForbidden) {
			t.Errorf("%s as viewer: %v", c.name, err)
		}
	}
	if e.state(t, id) != store.HoldHeld {
		t.Fatal("hold changed")
	}
}

// TestBulk: a dry run counts and lists, the real run acts on exactly those
// and audits each one and the bulk action.
func TestBulk(t *testing.T) {
	e := newEnv(t)
	var old []string
	for range 3 {
		old = append(old, e.hold(t, holdSpec{rule: "promo", sender: "Promo@Shop.example", age: 10 * 24 * time.Hour}))
	}
	e.hold(t, holdSpec{rule: "promo", sender: "promo@shop.example", age: time.Hour})                      // too young
	e.hold(t, holdSpec{rule: "other", sender: "promo@shop.example", age: 10 * 24 * time.Hour})            // other rule
	e.hold(t, holdSpec{rule: "promo", sender: "someone@else.example", age: 10 * 24 * time.Hour})          // other sender
	released := e.hold(t, holdSpec{rule: "promo", sender: "promo@shop.example", age: 9 * 24 * time.Hour}) // not held
	if _, err := e.svc.Release(ctx, rob, released, review.ReleaseOptions{}); err != nil {
		t.Fatal(err)
	}
	body := `{"filter":{"rule":"promo","sender":"promo@shop.example","older_than":"7d"},"action":"release","rewrite":"bcc","dry_run":true}`
	w := e.call(t, bearer(tokReviewerA), "POST", "/api/v1/quarantine/bulk", body)
	dry := decode[review.BulkResult](t, w)
	slices.Sort(dry.IDs)
	if !dry.DryRun || dry.Matched != 3 || !slices.Equal(dry.IDs, old) || len(dry.Outcomes) != 0 {
		t.Fatalf("dry run %+v, want ids %v", dry, old)
	}
	for _, id := range old {
		if e.state(t, id) != store.HoldHeld {
			t.Fatal("dry run changed a hold")
		}
	}
	w = e.call(t, bearer(tokReviewerA), "POST", "/api/v1/quarantine/bulk", strings.Replace(body, `"dry_run":true`, `"dry_run":false`, 1))
	res := decode[review.BulkResult](t, w)
	if res.DryRun || res.Matched != 3 || res.Succeeded != 3 || res.Failed != 0 || len(res.Outcomes) != 3 {
		t.Fatalf("bulk %+v", res)
	}
	for _, id := range old {
		if e.state(t, id) != store.HoldReleased {
			t.Fatalf("%s not released", id)
		}
		if es := e.audit(t, id); len(es) != 1 || es[0].Action != "release-bcc" || es[0].Actor != "rita" {
			t.Fatalf("audit of %s: %+v", id, es)
		}
	}
	// One bcc delivery per released message (plus the one released before).
	if n := len(e.claimAll(t)); n != 3+3 {
		t.Fatalf("%d deliveries", n)
	}
	es, _ := e.st.Audit(ctx, store.AuditFilter{Actor: "rita", Limit: 1})
	if len(es) != 1 || es[0].Action != "bulk-release" || !strings.Contains(es[0].Detail, "3 matched, 3 done, 0 failed") ||
		!strings.Contains(es[0].Target, "rule=promo") {
		t.Fatalf("bulk audit %+v", es)
	}
	// Nothing left: a second run matches none.
	w = e.call(t, bearer(tokReviewerA), "POST", "/api/v1/quarantine/bulk", strings.Replace(body, `"dry_run":true`, `"dry_run":false`, 1))
	if r := decode[review.BulkResult](t, w); r.Matched != 0 {
		t.Fatalf("second run %+v", r)
	}
}

// TestExpire: both expiry actions, counted, logged and audited; the loop
// runs at start; four-eyes holds are never released by expiry.
func TestExpire(t *testing.T) {
	for _, action := range []string{"delete", "release"} {
		t.Run(action, func(t *testing.T) {
			e := newEnv(t, expiryAction(action), fourEyes("guarded"))
			due := e.hold(t, holdSpec{age: 2 * time.Hour, expires: time.Hour})
			guarded := e.hold(t, holdSpec{rule: "guarded", age: 2 * time.Hour, expires: time.Hour})
			fresh := e.hold(t, holdSpec{age: 2 * time.Hour, expires: 3 * time.Hour})

			e.svc.Start(ctx) // runs once at once
			waitFor(t, func() bool { return e.state(t, due) != store.HoldHeld && e.state(t, guarded) != store.HoldHeld })
			e.svc.Stop()

			wantState := map[string]store.HoldState{"delete": store.HoldExpired, "release": store.HoldReleased}[action]
			if got := e.state(t, due); got != wantState {
				t.Fatalf("due hold is %s, want %s", got, wantState)
			}
			if got := e.state(t, guarded); got != store.HoldExpired {
				t.Fatalf("four-eyes hold is %s, want expired (deleted)", got)
			}
			if e.state(t, fresh) != store.HoldHeld {
				t.Fatal("a hold not yet due expired")
			}
			deliveries := len(e.claimAll(t))
			if (action == "release") != (deliveries == 3) || (action == "delete" && deliveries != 0) {
				t.Fatalf("%d deliveries after expiry by %s", deliveries, action)
			}
			es := e.audit(t, due)
			if len(es) != 1 || es[0].Actor != review.ExpiryActor || es[0].Action != "expire-"+action || es[0].Outcome != "ok" {
				t.Fatalf("audit %+v", es)
			}
			if es := e.audit(t, guarded); len(es) != 1 || es[0].Action != "expire-delete" || (action == "release") != strings.Contains(es[0].Detail, "four-eyes") {
				t.Fatalf("four-eyes audit %+v", es)
			}
			want := map[string]float64{"delete": 2, "release": 0}
			if action == "release" {
				want = map[string]float64{"delete": 1, "release": 1}
			}
			for a, n := range want {
				if got := (counter(t, e, "bccguard_quarantine_expired_total", a)); got != n {
					t.Fatalf("expired_total{action=%s} = %v, want %v", a, got, n)
				}
			}
			if !strings.Contains(e.logs.String(), "quarantined message expired") {
				t.Fatal("expiry not logged")
			}

			// Time passes: the fresh one is due at the next run.
			e.clock.Add(2 * time.Hour)
			r, err := e.svc.Expire(ctx, e.clock.Now())
			if err != nil || r.Deleted+r.Released != 1 || e.state(t, fresh) == store.HoldHeld {
				t.Fatalf("second run %+v %v, fresh %s", r, err, e.state(t, fresh))
			}
		})
	}
}

// TestExpiryLoop: the loop keeps running at its interval, not only at
// start.
func TestExpiryLoop(t *testing.T) {
	e := newEnv(t, expiryEvery(10*time.Millisecond))
	id := e.hold(t, holdSpec{expires: time.Hour})
	e.svc.Start(ctx)
	defer e.svc.Stop()
	time.Sleep(30 * time.Millisecond) // a few runs with nothing due
	if e.state(t, id) != store.HoldHeld {
		t.Fatal("expired early")
	}
	e.clock.Add(time.Hour)
	waitFor(t, func() bool { return e.state(t, id) == store.HoldExpired })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDeleteNotice: a notice to the sender is committed with the deletion,
// naming the message by Subject, Date and Message-ID but none of its
// recipients; none for <>.
func TestDeleteNotice(t *testing.T) {
	e := newEnv(t)
	rcpts := []string{"ann@one.example", "bob@two.example"}
	id := e.hold(t, holdSpec{sender: "news@shop.example", rcpts: rcpts})
	w := e.call(t, bearer(tokReviewerA), "POST", "/api/v1/quarantine/"+id+"/delete", `{"notify_sender":true}`)
	mustCode(t, w, 200, "")
	if r := decode[review.DeleteResult](t, w); r.Status != review.StatusDeleted || !r.NoticeQueued {
		t.Fatalf("result %+v", r)
	}
	if e.state(t, id) != store.HoldDeleted {
		t.Fatal("not deleted")
	}
	if _, err := e.st.Open(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("body of a deleted hold: %v", err)
	}
	ns := e.outbox(t)
	if len(ns) != 1 || ns[0].Channel != "sender" || ns[0].Event != "deleted" || ns[0].MessageID != id || e.notifyWakes.Load() != 1 {
		t.Fatalf("outbox %+v (%d wake-ups), want one sender notice", ns, e.notifyWakes.Load())
	}
	var p notify.SenderPayload
	if err := json.Unmarshal(ns[0].Payload, &p); err != nil {
		t.Fatal(err)
	}
	want := notify.SenderPayload{
		To: "news@shop.example", Subject: "Message not delivered: deleted by a reviewer", QueueID: id,
		Text: "Your message was deleted by the mail policy review.",
		Orig: notify.HeaderInfo{Subject: "Your survey été", Date: "Mon, 2 Mar 2026 10:00:00 +0000", MessageID: "<survey-1@shop.example>"},
	}
	if p != want {
		t.Fatalf("notice %+v\nwant   %+v", p, want)
	}
	for _, r := range rcpts {
		if strings.Contains(strings.ToLower(string(ns[0].Payload)), r) {
			t.Errorf("notice names a recipient (%s): %s", r, ns[0].Payload)
		}
	}
	if es := e.audit(t, id); len(es) != 1 || !strings.Contains(es[0].Detail, "sender notice queued") {
		t.Fatalf("audit %+v", es)
	}
	if n := len(e.claimAll(t)); n != 0 {
		t.Fatalf("%d deliveries queued by the deletion itself", n)
	}
}

// TestDeleteNullSender: no notice can go to <>.
func TestDeleteNullSender(t *testing.T) {
	e := newEnv(t)
	id := e.hold(t, holdSpec{nullSender: true})
	r, err := e.svc.Delete(ctx, rita, id, review.DeleteOptions{NotifySender: true})
	if err != nil || r.NoticeQueued || r.Note == "" {
		t.Fatalf("delete %+v %v", r, err)
	}
	if ns := e.outbox(t); len(ns) != 0 {
		t.Fatalf("notices queued for a null-sender message: %+v", ns)
	}
}

// TestMetrics: the metrics pass promlint and count what happened.
func TestMetrics(t *testing.T) {
	e := newEnv(t)
	a := e.hold(t, holdSpec{rule: "r1", age: time.Hour})
	e.hold(t, holdSpec{rule: "r1"})
	e.hold(t, holdSpec{rule: "r2"})
	if _, err := e.svc.Delete(ctx, rita, a, review.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	_, _ = e.svc.Delete(ctx, rita, a, review.DeleteOptions{})
	e.hold(t, holdSpec{rule: "r1", age: 3 * time.Hour})

	problems, err := testutil.GatherAndLint(e.reg)
	if err != nil || len(problems) != 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
	exp := `
# HELP bccguard_quarantine_held Messages held for review, by the rule that held them.
# TYPE bccguard_quarantine_held gauge
bccguard_quarantine_held{rule="r1"} 2
bccguard_quarantine_held{rule="r2"} 1
`
	if err := testutil.GatherAndCompare(e.reg, strings.NewReader(exp), "bccguard_quarantine_held"); err != nil {
		t.Fatal(err)
	}
	if got := (counter(t, e, "bccguard_quarantine_actions_total", "delete", "ok")); got != 1 {
		t.Fatalf("delete ok = %v", got)
	}
	if got := (counter(t, e, "bccguard_quarantine_actions_total", "delete", "not_held")); got != 1 {
		t.Fatalf("delete not_held = %v", got)
	}
	mfs, _ := e.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "bccguard_quarantine_oldest_age_seconds" {
			if v := mf.GetMetric()[0].GetGauge().GetValue(); v < 3*3600-5 || v > 3*3600+5 {
				t.Fatalf("oldest age %v, want about 3h", v)
			}
			return
		}
	}
	t.Fatal("no oldest age metric")
}

// counter reads one series of a counter vector by its label values (in
// label name order).
func counter(t *testing.T, e *env, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i, lp := range m.GetLabel() {
				if i >= len(labels) || lp.GetValue() != labels[i] {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// faultyStore fails the audit log and the hold statistics on demand.
type faultyStore struct {
	*embedded.Store
	fail bool
}

func (f *faultyStore) AddAudit(c context.Context, e store.AuditEntry) error {
	if f.fail {
		return errors.New("disk on fire")
	}
	return f.Store.AddAudit(c, e)
}

func (f *faultyStore) HoldStats(c context.Context) (map[string]int, time.Time, error) {
	if f.fail {
		return nil, time.Time{}, errors.New("disk on fire")
	}
	return f.Store.HoldStats(c)
}

// TestStoreFaults: an action whose audit entry cannot be written still
// stands, and says so loudly; a failing store leaves the quarantine gauges
// out without failing the whole scrape.
func TestStoreFaults(t *testing.T) {
	e := newEnv(t)
	fs := &faultyStore{Store: e.st, fail: true}
	var logs strings.Builder
	reg := prometheus.NewRegistry()
	svc, err := review.New(review.Options{
		Store: fs, Config: config.Defaults().Quarantine, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Registerer: reg, Hostname: "relay.test",
	})
	if err != nil {
		t.Fatal(err)
	}
	id := e.hold(t, holdSpec{})
	if _, err := svc.Release(ctx, rita, id, review.ReleaseOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "could not write the audit entry") {
		t.Fatalf("audit failure not logged: %s", logs.String())
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("scrape failed with the store: %v", err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "bccguard_quarantine_held", "bccguard_quarantine_oldest_age_seconds":
			t.Fatalf("%s reported from a failing store", mf.GetName())
		case "bccguard_quarantine_audit_write_failures_total":
			if v := mf.GetMetric()[0].GetCounter().GetValue(); v != 1 {
				t.Fatalf("audit failures %v", v)
			}
		}
	}
}
