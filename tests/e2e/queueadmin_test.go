package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/user"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/relay/store/postgres/pgtest"
	"github.com/bccguard/bccguard/tests/harness"
)

// The queue commands (bccguard queue show, cat, hold, release, requeue,
// delete) through the real binary, on both store backends: their JSON,
// their audit entries, and their refusal of an unknown ID.

func TestQueueAdminEmbedded(t *testing.T) {
	t.Parallel()
	queueAdminScenario(t, "")
}

func TestQueueAdminPostgres(t *testing.T) {
	t.Parallel()
	queueAdminScenario(t, fmt.Sprintf("store: {backend: postgres, dsn: %q}\n", pgtest.Database(t, "bccguard_e2e_qa")))
}

// queueLifetime is short so that a hold visibly outlasts it, and long enough
// that bob's copy is still queued when the test holds it on a loaded machine
// (at 3 s, a make test sharing two cores with other builds saw it expire
// between the first attempt and the hold).
const queueLifetime = 6 * time.Second

type queuedView struct {
	ID       string `json:"id"`
	Envelope struct {
		Sender string `json:"sender"`
	} `json:"envelope"`
	Recipients []struct {
		Addr        string     `json:"addr"`
		State       string     `json:"state"`
		Attempts    int        `json:"attempts"`
		LastReply   string     `json:"last_reply"`
		NextAttempt *time.Time `json:"next_attempt"`
		HeldSince   *time.Time `json:"held_since"`
	} `json:"recipients"`
}

func (v queuedView) rcpt(t *testing.T, addr string) (state string, attempts int, reply string) {
	t.Helper()
	for _, r := range v.Recipients {
		if r.Addr == addr {
			return r.State, r.Attempts, r.LastReply
		}
	}
	t.Fatalf("queue show %s: no recipient %s in %+v", v.ID, addr, v.Recipients)
	return
}

func queueAdminScenario(t *testing.T, storeConfig string) {
	const reviewerToken, viewerToken = "reviewer-token-of-the-queue-test", "viewer-token-of-the-queue-test"
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	sink := harness.NewSink(t)
	// bob's and carol's mailboxes are full (452); ann's takes mail.
	full := smtptest.SMTPErr(452, "4.2.2", "mailbox full")
	rejecting := func(_, to string) *smtp.SMTPError {
		if to == "bob@example.org" || to == "carol@example.net" {
			return full
		}
		return nil
	}
	sink.OnRcpt(rejecting)
	r := harness.Start(t, storeConfig+fmt.Sprintf(`
queue: {retry_first: 1s, retry_max: 1s, lifetime: %s}
admin:
  listen: "{{addr "admin"}}"
  tokens:
    - {name: ops-bot, sha256: %s, role: reviewer}
    - {name: dashboard, sha256: %s, role: viewer}
`, queueLifetime, sum(reviewerToken), sum(viewerToken)), harness.WithUpstream(sink.Addr()))
	dd := []string{"--data-dir", r.DataDir()}
	cli := func(args ...string) string { t.Helper(); return r.MustCLI(append(args, dd...)...) }
	me, _ := user.Current()
	actor := "cli:" + me.Username
	audit := func(target string) []struct{ Actor, Action, Outcome, Detail string } {
		t.Helper()
		var es []struct{ Actor, Action, Outcome, Detail string }
		if err := json.Unmarshal([]byte(cli("quarantine", "audit", "--json", "--target", target)), &es); err != nil {
			t.Fatal(err)
		}
		return es
	}
	wantAudit := func(target, action, outcome string) {
		t.Helper()
		es := audit(target)
		if len(es) == 0 || es[0].Action != action || es[0].Actor != actor || es[0].Outcome != outcome || !strings.HasPrefix(es[0].Detail, "via cli") {
			t.Fatalf("latest audit entry for %s: %+v, want %s by %s, %s, via cli", target, es, action, actor, outcome)
		}
	}
	show := func(id string) queuedView {
		t.Helper()
		var v queuedView
		out := cli("queue", "show", id, "--json")
		if err := json.Unmarshal([]byte(out), &v); err != nil || v.ID != id {
			t.Fatalf("queue show %s --json: %v\n%s", id, err, out)
		}
		return v
	}
	send := func(from string, rcpts ...string) (string, []byte) {
		t.Helper()
		msg := harness.CRLF(fmt.Sprintf("From: %s\nTo: %s\nSubject: queue test\n\nHello.\n", from, rcpts[0]))
		return queueID(t, harness.Send(t, r.Addr(), from, rcpts, msg)), msg
	}

	// 1. show: ann has it; bob's copy waits, with the upstream's reply.
	m1, raw1 := send("news@brand.example", "ann@example.net", "bob@example.org")
	sink.WaitFor(t, 1, deliverTimeout)
	var v queuedView
	harness.Eventually(t, queueTimeout, "bob's copy deferred", func() bool {
		v = show(m1)
		st, n, _ := v.rcpt(t, "bob@example.org")
		return st == "deferred" && n >= 1
	})
	if st, _, _ := v.rcpt(t, "ann@example.net"); st != "finished" {
		t.Errorf("ann, delivered in the first attempt: %s, want finished", st)
	}
	if _, _, reply := v.rcpt(t, "bob@example.org"); !strings.Contains(reply, "452") || !strings.Contains(reply, "mailbox full") {
		t.Errorf("bob's last reply %q, want the upstream's 452", reply)
	}
	if v.Envelope.Sender != "news@brand.example" || v.Recipients[1].NextAttempt == nil {
		t.Errorf("queue show: %+v, want the sender and bob's next try", v)
	}
	if out := cli("queue", "show", m1); !strings.Contains(out, "bob@example.org") || !strings.Contains(out, "deferred") || !strings.Contains(out, "mailbox full") {
		t.Errorf("queue show (text):\n%s", out)
	}

	// 2. cat: the stored original, audited.
	if raw := cli("queue", "cat", m1); !strings.HasSuffix(raw, string(raw1)) || !strings.HasPrefix(raw, "Received: ") {
		t.Errorf("queue cat: %q, want bccguard's Received: then the message as sent", raw)
	}
	wantAudit(m1, "queue-cat", "ok")

	// 3. hold: not attempted while held, and the time held does not count
	// towards the queue lifetime.
	var res []struct {
		ID      string
		Action  string
		Changed int
	}
	if err := json.Unmarshal([]byte(cli("queue", "hold", m1, "--json")), &res); err != nil || len(res) != 1 || res[0].Changed != 1 || res[0].Action != "hold" {
		t.Fatalf("queue hold --json: %+v, %v", res, err)
	}
	wantAudit(m1, "queue-hold", "ok")
	tried := sink.RejectedRcpts()
	received := time.Now()
	harness.Eventually(t, queueTimeout, "the hold to outlast the queue lifetime", func() bool {
		return time.Since(received) > queueLifetime+time.Second
	})
	if st, _, _ := show(m1).rcpt(t, "bob@example.org"); st != "held" {
		t.Fatalf("bob's copy after the hold: %s", st)
	}
	if n := sink.RejectedRcpts(); n > tried+1 { // one attempt may have been in flight
		t.Fatalf("%d attempts on a held delivery", n-tried)
	}
	tried = sink.RejectedRcpts()
	cli("queue", "release", m1)
	wantAudit(m1, "queue-release", "ok")
	harness.Eventually(t, queueTimeout, "an attempt after the release", func() bool { return sink.RejectedRcpts() > tried })
	if st, _, _ := show(m1).rcpt(t, "bob@example.org"); st != "deferred" {
		t.Fatalf("bob's copy, refused again after a hold longer than the queue lifetime: %s, want deferred (not expired)", st)
	}

	// 4. requeue.
	if err := json.Unmarshal([]byte(cli("queue", "requeue", m1, "--json")), &res); err != nil || res[0].Changed != 1 {
		t.Fatalf("queue requeue --json: %+v, %v", res, err)
	}
	wantAudit(m1, "queue-requeue", "ok")

	// 5. delete, with a dry run first and a DSN to the sender.
	m2, _ := send("news@brand.example", "carol@example.net")
	var del struct {
		DryRun  bool `json:"dry_run"`
		Matched int
		Results []struct {
			ID, Status  string
			Undelivered []string
			NoticeID    string `json:"notice_id"`
		}
	}
	if err := json.Unmarshal([]byte(cli("queue", "delete", m2, "--dry-run", "--json")), &del); err != nil ||
		!del.DryRun || del.Results[0].Status != "would_delete" || del.Results[0].Undelivered[0] != "carol@example.net" {
		t.Fatalf("queue delete --dry-run --json: %+v, %v", del, err)
	}
	show(m2) // still there
	if err := json.Unmarshal([]byte(cli("queue", "delete", m2, "--notify-sender", "--json")), &del); err != nil ||
		del.Results[0].Status != "deleted" || del.Results[0].NoticeID == "" {
		t.Fatalf("queue delete --notify-sender --json: %+v, %v", del, err)
	}
	wantAudit(m2, "queue-delete", "ok")
	dsnMsgs := sink.WaitUntil(t, deliverTimeout, "the DSN for the deleted message", func(ms []*smtptest.Message) bool {
		for _, m := range ms {
			if m.From == "" && strings.Contains(string(m.Data), "deleted it from the queue") {
				return true
			}
		}
		return false
	})
	for _, m := range dsnMsgs {
		if m.From == "" && (len(m.Rcpts) != 1 || m.Rcpts[0].Addr != "news@brand.example" || !bytes.Contains(m.Data, []byte("Final-Recipient: rfc822; carol@example.net"))) {
			t.Errorf("DSN: to %v:\n%s", m.RcptAddrs(), m.Data)
		}
	}

	// 6. delete --all: a dry run unless --yes.
	m3, _ := send("bulk@brand.example", "carol@example.net")
	m4, _ := send("bulk@brand.example", "carol@example.net")
	m5, _ := send("other@brand.example", "carol@example.net")
	out := cli("queue", "delete", "--all", "--sender", "bulk@brand.example")
	if !strings.Contains(out, m3) || !strings.Contains(out, m4) || strings.Contains(out, m5) || !strings.Contains(out, "2 messages would be deleted; add --yes") {
		t.Fatalf("queue delete --all without --yes:\n%s", out)
	}
	show(m3)
	if err := json.Unmarshal([]byte(cli("queue", "delete", "--all", "--sender", "bulk@brand.example", "--yes", "--json")), &del); err != nil ||
		del.DryRun || del.Matched != 2 {
		t.Fatalf("queue delete --all --yes --json: %+v, %v", del, err)
	}
	wantAudit("all sender=bulk@brand.example", "queue-delete-all", "ok")
	wantAudit(m4, "queue-delete", "ok")
	show(m5)

	// 7. An unknown ID is refused with a clear message, and audited.
	for _, args := range [][]string{{"show", "NOSUCHID"}, {"cat", "NOSUCHID"}, {"hold", "NOSUCHID"}, {"release", "NOSUCHID"},
		{"requeue", "NOSUCHID"}, {"delete", "NOSUCHID"}} {
		res := r.CLI(append(append([]string{"queue"}, args...), dd...)...)
		if res.ExitCode != 1 || !strings.Contains(res.Stdout+res.Stderr, "no message NOSUCHID in the queue") {
			t.Errorf("queue %s of an unknown ID: want exit 1 and a clear message, got\n%s", args[0], res)
		}
	}
	wantAudit("NOSUCHID", "queue-delete", "not_found")
	if res := r.CLI(append([]string{"queue", "hold", m5 + ".1"}, dd...)...); res.ExitCode != 1 || !strings.Contains(res.Stderr, "use its message ID "+m5) {
		t.Errorf("queue hold of a delivery ID:\n%s", res)
	}

	// 8. The API: the same under /api/v1/queue, for the reviewer role.
	api := func(token, method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+r.AdminAddr()+"/api/v1/queue"+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := api(viewerToken, "GET", "/"+m5); code != 200 || !strings.Contains(body, `"carol@example.net"`) {
		t.Errorf("GET /api/v1/queue/%s as a viewer: %d %s", m5, code, body)
	}
	if code, body := api(viewerToken, "POST", "/"+m5+"/hold"); code != 403 || !strings.Contains(body, `"forbidden"`) {
		t.Errorf("hold as a viewer: %d %s, want 403", code, body)
	}
	if code, body := api(reviewerToken, "POST", "/"+m5+"/hold"); code != 200 || !strings.Contains(body, `"changed":1`) {
		t.Errorf("hold as a reviewer: %d %s", code, body)
	}
	if es := audit(m5); es[0].Action != "queue-hold" || es[0].Actor != "ops-bot" || !strings.HasPrefix(es[0].Detail, "via api") {
		t.Errorf("audit of the API's hold: %+v", es[0])
	}
	if code, body := api(reviewerToken, "GET", "/NOSUCHID"); code != 404 || !strings.Contains(body, "no message NOSUCHID in the queue") {
		t.Errorf("GET an unknown ID: %d %s", code, body)
	}
	if code, _ := api("", "GET", ""); code != 401 {
		t.Errorf("GET /api/v1/queue without credentials: %d, want 401", code)
	}

	// bob's copy goes once his mailbox has room; then m1 has left the queue.
	sink.AcceptAll()
	r.QueueFlush()
	sink.WaitUntil(t, deliverTimeout, "bob's copy", func(ms []*smtptest.Message) bool {
		for _, m := range ms {
			if len(m.Rcpts) == 1 && m.Rcpts[0].Addr == "bob@example.org" {
				return true
			}
		}
		return false
	})
	harness.Eventually(t, queueTimeout, m1+" gone from the queue", func() bool {
		res := r.CLI(append([]string{"queue", "show", m1}, dd...)...)
		return res.ExitCode == 1 && strings.Contains(res.Stderr, "all its deliveries are finished")
	})
	var actions []string
	for _, e := range audit(m1) {
		actions = append(actions, e.Action)
	}
	if got := strings.Join(actions, " "); got != "queue-requeue queue-release queue-hold queue-cat" {
		t.Errorf("audit entries for %s, newest first: %s; want one per action (showing is not one)", m1, got)
	}
}
