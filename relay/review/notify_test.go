package review_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay/notify"
	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/review/reviewtest"
	"github.com/bccguard/bccguard/relay/store"
)

// withChannel gives the Service a Notifier with one webhook channel that
// takes every event, for rules in fourEyes under the four-eyes rule.
func withChannel(t *testing.T, fourEyes ...string) reviewtest.Option {
	return func(_ *reviewtest.Fixture, o *review.Options) {
		o.Config.FourEyesRules = fourEyes
		cfg, err := config.Parse("t.yaml", []byte("hostname: relay.test\nadmin: {public_url: \"https://review.example\"}\nnotify:\n  channels:\n    - {name: siem, type: webhook, url: \"https://siem.example\", secret_env: S}\n"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Quarantine = o.Config
		o.Notify = reviewtest.Notifier{Notifier: notify.NewNotifier(cfg)}
	}
}

// events lists the outbox as "event/actor/action" per message.
func events(t *testing.T, e *env, id string) []string {
	t.Helper()
	var out []string
	for _, n := range e.outbox(t) {
		if n.MessageID != id || n.Channel != "siem" {
			continue
		}
		var ev notify.Event
		if err := json.Unmarshal(n.Payload, &ev); err != nil {
			t.Fatal(err)
		}
		s := ev.Event
		if ev.Review != nil {
			s += "/" + ev.Review.Actor + "/" + ev.Review.Action
		}
		if ev.Message.Subject == "" || ev.Link != "https://review.example/quarantine/m/"+id {
			t.Errorf("%s: subject %q, link %q", s, ev.Message.Subject, ev.Link)
		}
		out = append(out, s)
	}
	return out
}

// TestReviewNotices: every review action commits its notification with
// the state change, and a refused one commits none.
func TestReviewNotices(t *testing.T) {
	e := newEnv(t, withChannel(t, "four-eyes"))
	a := e.hold(t, holdSpec{rule: "four-eyes"})
	if r, err := e.svc.Release(ctx, rita, a, review.ReleaseOptions{}); err != nil || r.Status != review.StatusNeedsSecondReviewer {
		t.Fatalf("first release %+v %v", r, err)
	}
	if _, err := e.svc.Release(ctx, rita, a, review.ReleaseOptions{}); err == nil {
		t.Fatal("the same reviewer released twice")
	}
	if _, err := e.svc.Release(ctx, rob, a, review.ReleaseOptions{Rewrite: "bcc"}); err != nil {
		t.Fatal(err)
	}
	// rob's bcc release found no bcc approval but his own: one more wait,
	// which rita's bcc release completes.
	if got := strings.Join(events(t, e, a), " "); got != "needs_second_reviewer/rita/approve needs_second_reviewer/rob/approve" {
		t.Fatalf("events %q", got)
	}
	if _, err := e.svc.Release(ctx, rita, a, review.ReleaseOptions{Rewrite: "bcc"}); err != nil {
		t.Fatalf("rita completing rob's bcc release: %v", err)
	}
	if _, err := e.svc.Release(ctx, rob, a, review.ReleaseOptions{Rewrite: "bcc"}); err == nil {
		t.Fatal("a released hold was released again")
	}
	if got := strings.Join(events(t, e, a), " "); got != "needs_second_reviewer/rita/approve needs_second_reviewer/rob/approve released/rita/release-bcc" {
		t.Fatalf("events %q", got)
	}

	d := e.hold(t, holdSpec{})
	if _, err := e.svc.Delete(ctx, rita, d, review.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	x := e.hold(t, holdSpec{expires: time.Hour})
	e.clock.Add(2 * time.Hour)
	if _, err := e.svc.Expire(ctx, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(events(t, e, d), " "); got != "deleted/rita/delete" {
		t.Errorf("delete: %q", got)
	}
	if got := strings.Join(events(t, e, x), " "); got != "expired/system:expiry/expire-delete" {
		t.Errorf("expiry: %q", got)
	}
	for _, n := range e.outbox(t) {
		if n.State != store.NotificationPending {
			t.Errorf("%s: %s", n.Key, n.State)
		}
	}
}
