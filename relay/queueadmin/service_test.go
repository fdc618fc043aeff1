package queueadmin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/review/reviewtest"
	"github.com/bccguard/bccguard/relay/store"
	"github.com/bccguard/bccguard/relay/store/embedded"
	"github.com/bccguard/bccguard/relay/store/storetest"
)

var bg = context.Background()

var (
	cli    = review.Actor{Name: "cli:ops", Role: review.RoleReviewer, Via: review.ViaCLI}
	viewer = review.Actor{Name: "token:dash", Role: review.RoleViewer, Via: review.ViaAPI}
)

type fixture struct {
	st    *embedded.Store
	svc   *Service
	woken int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{st: st}
	f.svc, err = New(Options{Store: st, Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry(),
		Hostname: "relay.example.org", Wake: func() { f.woken++ }})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

const original = "From: news@brand.example\r\nTo: ann@example.net\r\nSubject: Spring sale\r\n\r\nHello\r\n"

// queue stores a message with one delivery per recipient (explode); a
// recipient "name+nonotify@..." asks for no failure notice.
func (f *fixture) queue(t *testing.T, sender string, rcpts ...string) string {
	t.Helper()
	env := store.Envelope{Sender: sender}
	var ds []store.NewDelivery
	for _, r := range rcpts {
		rc := store.Recipient{Addr: r}
		if strings.Contains(r, "+nonotify") {
			rc.Notify = []string{"NEVER"}
		}
		env.Recipients = append(env.Recipients, rc)
		ds = append(ds, store.NewDelivery{Recipients: []store.Recipient{rc}, Rewrite: store.RewriteExplode})
	}
	return storetest.Put(t, f.st, []byte(original), store.Message{Envelope: env, Client: store.Client{Listener: "smtp", IP: "192.0.2.1", User: "crm"},
		HeaderLen: int64(strings.Index(original, "\r\n\r\n") + 4)}, ds)
}

func (f *fixture) audit(t *testing.T, target string) []store.AuditEntry {
	t.Helper()
	es, err := f.st.Audit(bg, store.AuditFilter{Target: target})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func wantCode(t *testing.T, err error, code review.Code, contains string) {
	t.Helper()
	var e *review.Error
	if !errors.As(err, &e) || e.Code != code || !strings.Contains(e.Message, contains) {
		t.Fatalf("got %v, want %s containing %q", err, code, contains)
	}
}

// TestHoldReleaseRequeueAudited: each action changes the deliveries, says
// so, and leaves an audit entry "via cli".
func TestHoldReleaseRequeueAudited(t *testing.T) {
	f := newFixture(t)
	id := f.queue(t, "news@brand.example", "ann@example.net", "bob@example.org")
	for _, c := range []struct {
		do      func(context.Context, review.Actor, string) (Result, error)
		action  string
		changed int
		note    string
	}{
		{f.svc.Hold, "hold", 2, ""},
		{f.svc.Hold, "hold", 0, "nothing to hold"},
		{f.svc.Release, "release", 2, ""},
		{f.svc.Release, "release", 0, "nothing to release"},
		{f.svc.Requeue, "requeue", 2, ""},
	} {
		r, err := c.do(bg, cli, id)
		if err != nil || r.Changed != c.changed || r.Action != c.action || !strings.Contains(r.Note, c.note) {
			t.Fatalf("%s: %+v, %v; want %d changed, note %q", c.action, r, err, c.changed, c.note)
		}
		e := f.audit(t, id)[0]
		if e.Action != "queue-"+c.action || e.Actor != "cli:ops" || e.Outcome != "ok" || !strings.HasPrefix(e.Detail, "via cli") {
			t.Fatalf("audit entry after %s: %+v", c.action, e)
		}
	}
	if f.woken != 2 {
		t.Errorf("the workers were woken %d times, want 2 (release and requeue that changed something)", f.woken)
	}
	if n := testutil.ToFloat64(f.svc.actions.WithLabelValues("hold", "ok")); n != 2 {
		t.Errorf("bccguard_queue_actions_total{hold,ok} = %v", n)
	}
}

// TestRefusals: unknown IDs, delivery IDs, quarantined messages and
// actors without the role get a clear refusal, audited.
func TestRefusals(t *testing.T) {
	f := newFixture(t)
	id := f.queue(t, "news@brand.example", "ann@example.net")
	_, err := f.svc.Hold(bg, cli, "NOSUCHID")
	wantCode(t, err, review.CodeNotFound, "no message NOSUCHID in the queue")
	if e := f.audit(t, "NOSUCHID"); len(e) != 1 || e[0].Outcome != "not_found" || e[0].Action != "queue-hold" {
		t.Fatalf("audit of a refused hold: %+v", e)
	}
	_, err = f.svc.Show(bg, cli, "NOSUCHID")
	wantCode(t, err, review.CodeNotFound, "no message NOSUCHID in the queue")
	_, err = f.svc.Release(bg, cli, id+".1")
	wantCode(t, err, review.CodeBadRequest, "use its message ID "+id)
	if m, err := f.svc.Show(bg, cli, id+".1"); err != nil || m.ID != id {
		t.Fatalf("show of a delivery ID: %+v, %v; want its message", m, err)
	}
	_, err = f.svc.Requeue(bg, viewer, id)
	wantCode(t, err, review.CodeForbidden, "the reviewer role is needed")
	_, err = f.svc.Cat(bg, viewer, id)
	wantCode(t, err, review.CodeForbidden, "the reviewer role is needed")
	if _, err := f.svc.Show(bg, viewer, id); err != nil {
		t.Fatalf("a viewer may show: %v", err)
	}
	_, err = f.svc.Show(bg, review.Actor{}, id)
	wantCode(t, err, review.CodeUnauthorized, "")

	// A quarantined message belongs to the quarantine's commands.
	sp, _, _ := f.st.NewSpool(bg)
	_, _ = io.WriteString(sp, original)
	held, err := sp.Commit(bg, store.Message{Envelope: store.Envelope{Sender: "a@brand.example", Recipients: []store.Recipient{{Addr: "x@example.net"}}},
		Quarantine: &store.Quarantine{Rule: "many-visible", ExpiresAt: time.Now().Add(time.Hour)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []func() error{
		func() error { _, err := f.svc.Show(bg, cli, held); return err },
		func() error { _, err := f.svc.Hold(bg, cli, held); return err },
		func() error { _, err := f.svc.Cat(bg, cli, held); return err },
		func() error { _, err := f.svc.Delete(bg, cli, held, DeleteOptions{}); return err },
	} {
		wantCode(t, op(), review.CodeNotFound, "held for review in the quarantine")
	}
	if err := f.st.Discard(bg, held, store.HoldDeleted, store.Resolution{Actor: "x", At: time.Now(), Action: "delete"}); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Show(bg, cli, held)
	wantCode(t, err, review.CodeNotFound, "it was held for review and is deleted")
}

// TestShowRecipients: each envelope recipient with its delivery's state.
func TestShowRecipients(t *testing.T) {
	f := newFixture(t)
	id := f.queue(t, "news@brand.example", "ann@example.net", "bob@example.org", "cy@example.com")
	now := time.Now()
	cs, err := f.st.Claim(bg, "w", now, 2, time.Minute)
	if err != nil || len(cs) != 2 {
		t.Fatal(cs, err)
	}
	_ = f.st.Complete(bg, "w", cs[0].Delivery.ID, store.Outcome{State: store.StateDelivered, Error: ""})
	_ = f.st.Complete(bg, "w", cs[1].Delivery.ID, store.Outcome{State: store.StateDeferred, NextAttempt: now.Add(time.Hour), Error: "451 4.2.0 mailbox busy"})
	m, err := f.svc.Show(bg, cli, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Recipients) != 3 || len(m.Deliveries) != 3 || m.Envelope.Sender != "news@brand.example" {
		t.Fatalf("show: %+v", m)
	}
	got := map[string]RecipientState{}
	for _, r := range m.Recipients {
		got[r.Addr] = r
	}
	if r := got["ann@example.net"]; r.State != "delivered" || r.Attempts != 1 || r.NextAttempt != nil {
		t.Errorf("ann: %+v", r)
	}
	if r := got["bob@example.org"]; r.State != "deferred" || r.Attempts != 1 || r.LastReply != "451 4.2.0 mailbox busy" || r.NextAttempt == nil {
		t.Errorf("bob: %+v", r)
	}
	if r := got["cy@example.com"]; r.State != "queued" || r.Attempts != 0 || r.NextAttempt == nil {
		t.Errorf("cy: %+v", r)
	}
}

// TestDeleteWithDSN: a dry run changes nothing; the deletion removes the
// message and, asked to, sends the sender a DSN for the recipients who
// wanted failure notices, with the original attached. A local part that
// needs quotes is quoted in Final-Recipient, as it went upstream.
func TestDeleteWithDSN(t *testing.T) {
	f := newFixture(t)
	id := f.queue(t, "news@brand.example", "ann@example.net", "bob+nonotify@example.org", "cy smith@example.net")
	dry, err := f.svc.Delete(bg, cli, id, DeleteOptions{DryRun: true, NotifySender: true})
	if err != nil || dry.Status != StatusWouldDelete || len(dry.Undelivered) != 3 || dry.NoticeID != "" {
		t.Fatalf("dry run: %+v, %v", dry, err)
	}
	if _, err := f.st.Message(bg, id); err != nil {
		t.Fatalf("a dry run deleted: %v", err)
	}
	if len(f.audit(t, id)) != 0 {
		t.Fatalf("a dry run was audited as an action")
	}
	res, err := f.svc.Delete(bg, cli, id, DeleteOptions{NotifySender: true})
	if err != nil || res.Status != StatusDeleted || len(res.Undelivered) != 3 || res.NoticeID == "" {
		t.Fatalf("delete: %+v, %v", res, err)
	}
	if _, err := f.st.Message(bg, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	e := f.audit(t, id)[0]
	if e.Action != "queue-delete" || !strings.Contains(e.Detail, "3 recipients not delivered") || !strings.Contains(e.Detail, "DSN queued as "+res.NoticeID) {
		t.Fatalf("audit: %+v", e)
	}
	m, err := f.st.Message(bg, res.NoticeID)
	if err != nil || m.Envelope.Sender != "" || m.Envelope.Recipients[0].Addr != "news@brand.example" {
		t.Fatalf("DSN record: %+v, %v", m, err)
	}
	rc, _ := f.st.Open(bg, res.NoticeID)
	b, _ := io.ReadAll(rc)
	rc.Close()
	dsn := string(b)
	for _, want := range []string{"MAILER-DAEMON@relay.example.org>", "Final-Recipient: rfc822; ann@example.net",
		`Final-Recipient: rfc822; "cy smith"@example.net`,
		"Action: failed", "Status: 5.0.0", "deleted it from the queue", "X-Bccguard-Queue-ID: " + id, "Subject: Spring sale"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("DSN lacks %q:\n%s", want, dsn)
		}
	}
	if strings.Contains(dsn, "Final-Recipient: rfc822; bob+nonotify@example.org") {
		t.Errorf("DSN reports a recipient who asked for NOTIFY=NEVER")
	}
	// The null sender gets nothing.
	id2 := f.queue(t, "", "ann@example.net")
	res, err = f.svc.Delete(bg, cli, id2, DeleteOptions{NotifySender: true})
	if err != nil || res.NoticeID != "" || !strings.Contains(res.Note, "null sender") {
		t.Fatalf("delete of a message from <>: %+v, %v", res, err)
	}
}

// TestBulkDelete: --all with a filter lists on a dry run, then deletes
// what it lists, with one audit entry per message and one for the whole.
func TestBulkDelete(t *testing.T) {
	f := newFixture(t)
	a := f.queue(t, "news@brand.example", "ann@example.net")
	b := f.queue(t, "News@Brand.Example", "bob@example.net")
	c := f.queue(t, "other@brand.example", "cy@example.net")
	if _, err := f.svc.Hold(bg, cli, c); err != nil {
		t.Fatal(err)
	}
	req := DeleteRequest{All: true, Sender: "news@brand.example", DeleteOptions: DeleteOptions{DryRun: true}}
	res, err := f.svc.BulkDelete(bg, cli, req)
	if err != nil || !res.DryRun || res.Matched != 2 || len(res.Results) != 2 || res.Results[0].ID != a || res.Results[1].ID != b ||
		res.Filter != "all sender=news@brand.example" {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
	req.DryRun = false
	res, err = f.svc.BulkDelete(bg, cli, req)
	if err != nil || res.Succeeded != 2 || res.Failed != 0 {
		t.Fatalf("delete: %+v, %v", res, err)
	}
	if es := f.audit(t, "all sender=news@brand.example"); len(es) != 1 || es[0].Action != "queue-delete-all" || !strings.Contains(es[0].Detail, "2 matched, 2 deleted") {
		t.Fatalf("audit of the bulk delete: %+v", es)
	}
	if len(f.audit(t, a)) != 1 || len(f.audit(t, b)) != 1 {
		t.Fatalf("each message deleted is audited")
	}
	res, err = f.svc.BulkDelete(bg, cli, DeleteRequest{All: true, States: []store.State{store.StateHeld}})
	if err != nil || res.Succeeded != 1 || res.Results[0].ID != c {
		t.Fatalf("delete --all --state held: %+v, %v", res, err)
	}
	// Mistakes are refused before anything is done.
	for _, r := range []DeleteRequest{
		{},
		{IDs: []string{a}, All: true},
		{IDs: []string{a}, Sender: "x@example.com"},
		{All: true, States: []store.State{store.StateDelivered}},
	} {
		_, err := f.svc.BulkDelete(bg, cli, r)
		wantCode(t, err, review.CodeBadRequest, "")
	}
	// By ID: an unknown one fails on its own.
	d := f.queue(t, "x@brand.example", "dee@example.net")
	res, err = f.svc.BulkDelete(bg, cli, DeleteRequest{IDs: []string{"NOSUCHID", d}})
	if err != nil || res.Succeeded != 1 || res.Failed != 1 || res.Results[0].Error == nil || res.Results[0].Error.Code != review.CodeNotFound {
		t.Fatalf("delete of an unknown and a known ID: %+v, %v", res, err)
	}
}

// TestAPI: the routes, their roles and JSON, through the HTTP handler.
func TestAPI(t *testing.T) {
	f := newFixture(t)
	id := f.queue(t, "news@brand.example", "ann@example.net")
	h := NewHandler(f.svc)
	call := func(a review.Actor, method, path, body string) *httptest.ResponseRecorder {
		t.Helper()
		r := reviewtest.APIRequest(method, path, body)
		if a.Name != "" {
			r = r.WithContext(review.WithActor(r.Context(), a))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	errCode := func(w *httptest.ResponseRecorder) review.Code {
		var eb review.ErrorBody
		_ = json.Unmarshal(w.Body.Bytes(), &eb)
		if eb.Error == nil {
			return ""
		}
		return eb.Error.Code
	}
	for _, c := range []struct {
		a            review.Actor
		method, path string
		body         string
		status       int
		code         review.Code
	}{
		{review.Actor{}, "GET", "/queue", "", 401, review.CodeUnauthorized},
		{viewer, "GET", "/queue", "", 200, ""},
		{viewer, "GET", "/queue?state=bogus", "", 400, review.CodeBadRequest},
		{viewer, "GET", "/queue/" + id, "", 200, ""},
		{viewer, "GET", "/queue/NOSUCHID", "", 404, review.CodeNotFound},
		{viewer, "POST", "/queue/" + id + "/hold", "", 403, review.CodeForbidden},
		{viewer, "GET", "/queue/" + id + "/raw", "", 403, review.CodeForbidden},
		{cli, "POST", "/queue/" + id + "/hold", "", 200, ""},
		{cli, "POST", "/queue/" + id + "/hold", `{"bogus": 1}`, 400, review.CodeBadRequest},
		{cli, "POST", "/queue/" + id + "/release", "", 200, ""},
		{cli, "POST", "/queue/" + id + "/requeue", "", 200, ""},
		{cli, "POST", "/queue/flush", "", 200, ""},
		{cli, "POST", "/queue/delete", `{"all": true, "dry_run": true}`, 200, ""},
		{cli, "POST", "/queue/" + id + "/delete", `{"dry_run": true}`, 200, ""},
		{cli, "POST", "/queue/NOSUCHID/delete", "", 404, review.CodeNotFound},
		{cli, "GET", "/queue/" + id + "/nothing", "", 404, review.CodeNotFound},
	} {
		w := call(c.a, c.method, c.path, c.body)
		if w.Code != c.status || errCode(w) != c.code {
			t.Errorf("%s %s as %q: %d %s, want %d %s", c.method, c.path, c.a.Name, w.Code, w.Body, c.status, c.code)
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: no Cache-Control: no-store", c.method, c.path)
		}
	}
	w := call(cli, "GET", "/queue/"+id+"/raw", "")
	if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), []byte(original)) || w.Header().Get("Content-Type") != "message/rfc822" {
		t.Fatalf("raw: %d %q %s", w.Code, w.Body, w.Header())
	}
	if e := f.audit(t, id)[0]; e.Action != "queue-cat" || e.Outcome != "ok" {
		t.Fatalf("cat is audited: %+v", e)
	}
	var m Message
	if err := json.Unmarshal(call(viewer, "GET", "/queue/"+id, "").Body.Bytes(), &m); err != nil || m.ID != id || m.Recipients[0].State != "queued" {
		t.Fatalf("show JSON: %+v, %v", m, err)
	}
	var ds []store.Delivery
	if err := json.Unmarshal(call(viewer, "GET", "/queue?state=queued", "").Body.Bytes(), &ds); err != nil || len(ds) != 1 {
		t.Fatalf("list JSON: %v, %v", ds, err)
	}
}
