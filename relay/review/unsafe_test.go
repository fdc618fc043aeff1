package review_test

import (
	"strings"
	"testing"
	"time"

	"github.com/bccguard/bccguard/relay/store"
)

// leakyMessage shows its recipients in its Subject:, which no rewrite can
// clean: copies of it would still show them.
func leakyMessage(rcpts []string) string {
	return strings.Replace(defaultMessage(rcpts), "Subject: Your survey", "Subject: Your survey, "+strings.Join(rcpts, " and "), 1)
}

// A release whose copies would still show other recipients is refused
// with unsafe_copy unless forced (and then audited as forced), by the
// rewrite's own table; expiry deletes such a message rather than release
// it.
func TestReleaseUnsafeCopies(t *testing.T) {
	all := []string{"ann@one.example", "bob@two.example", "cat@two.example"}
	e := newEnv(t)
	id := e.hold(t, holdSpec{rcpts: all, raw: leakyMessage(all)})
	for _, body := range []string{`{"rewrite":"explode"}`, `{"rewrite":"bcc"}`} {
		w := e.call(t, basic("alice", userPass), "POST", "/api/v1/quarantine/"+id+"/release", body)
		mustCode(t, w, 409, "unsafe_copy")
		if strings.Contains(w.Body.String(), "ann@") {
			t.Errorf("the refusal quotes an address: %s", w.Body)
		}
	}
	if e.state(t, id) != store.HoldHeld || len(e.claimAll(t)) != 0 {
		t.Fatal("a refused release released")
	}
	// Released with force, it goes, audited as forced.
	w := e.call(t, basic("alice", userPass), "POST", "/api/v1/quarantine/"+id+"/release", `{"rewrite":"explode","force":true}`)
	mustCode(t, w, 200, "")
	if es := e.audit(t, id); len(es) != 3 || es[0].Outcome != "ok" || !strings.Contains(es[0].Detail, "forced") {
		t.Fatalf("audit %+v", es)
	}

	// A copy to the one recipient the Subject: shows is safe.
	one := e.hold(t, holdSpec{rcpts: []string{"ann@one.example"}, raw: leakyMessage([]string{"ann@one.example"})})
	mustCode(t, e.call(t, basic("alice", userPass), "POST", "/api/v1/quarantine/"+one+"/release", ``), 200, "")

	x := newEnv(t, expiryAction("release"))
	due := x.hold(t, holdSpec{rcpts: all, raw: leakyMessage(all), age: 2 * time.Hour, expires: time.Hour})
	x.svc.Start(ctx)
	waitFor(t, func() bool { return x.state(t, due) != store.HoldHeld })
	x.svc.Stop()
	if got := x.state(t, due); got != store.HoldExpired || len(x.claimAll(t)) != 0 {
		t.Fatalf("an unsafe hold expired as %s with %d deliveries, want deleted", got, len(x.claimAll(t)))
	}
	if es := x.audit(t, due); len(es) != 1 || es[0].Action != "expire-delete" || !strings.Contains(es[0].Detail, "other recipients") {
		t.Fatalf("audit %+v", es)
	}
}
