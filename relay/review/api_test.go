package review_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/store"
)

// endpoint is one API route, with what a successful call answers.
type endpoint struct {
	method, path string // path may contain {id}: a fresh hold per call
	body         string
	reviewer     bool // needs the reviewer role
	ok           int
}

var endpoints = []endpoint{
	{"GET", "/api/v1/quarantine", "", false, 200},
	{"GET", "/api/v1/quarantine?state=all&rule=many-visible&limit=10", "", false, 200},
	{"GET", "/api/v1/quarantine/{id}", "", false, 200},
	{"GET", "/api/v1/quarantine/{id}/raw", "", false, 200},
	{"POST", "/api/v1/quarantine/{id}/release", `{"rewrite":"bcc"}`, true, 200},
	{"POST", "/api/v1/quarantine/{id}/release", "", true, 200},
	{"POST", "/api/v1/quarantine/{id}/delete", `{"notify_sender":true}`, true, 200},
	{"POST", "/api/v1/quarantine/bulk", `{"filter":{"rule":"many-visible"},"action":"delete","dry_run":true}`, true, 200},
	{"GET", "/api/v1/audit", "", false, 200},
	{"GET", "/api/v1/audit?format=jsonl", "", false, 200},
}

// TestAPIAccess runs every endpoint with every kind of caller: none and
// wrong credentials get 401 with a challenge, a viewer gets 403 on
// reviewer actions, and the right role succeeds, by token and by Basic.
func TestAPIAccess(t *testing.T) {
	e := newEnv(t)
	callers := []struct {
		name   string
		cred   cred
		viewer bool // the caller has the viewer role only
		bad    bool // wrong or no credentials
	}{
		{"no credentials", noCred, false, true},
		{"wrong token", bearer("not-a-token"), false, true},
		{"empty bearer", bearer(""), false, true},
		{"wrong password", basic("alice", "wrong"), false, true},
		{"unknown user", basic("mallory", userPass), false, true},
		{"viewer token", bearer(tokViewer), true, false},
		{"viewer user", basic("victor", userPass), true, false},
		{"reviewer token", bearer(tokReviewerA), false, false},
		{"reviewer user", basic("alice", userPass), false, false},
	}
	for _, ep := range endpoints {
		for _, c := range callers {
			t.Run(ep.method+" "+ep.path+"/"+c.name, func(t *testing.T) {
				path := strings.ReplaceAll(ep.path, "{id}", e.hold(t, holdSpec{}))
				w := e.call(t, c.cred, ep.method, path, ep.body)
				switch {
				case c.bad:
					mustCode(t, w, 401, "unauthorized")
					if len(w.Header().Values("WWW-Authenticate")) == 0 {
						t.Fatal("401 without WWW-Authenticate")
					}
				case c.viewer && ep.reviewer:
					mustCode(t, w, 403, "forbidden")
				default:
					if w.Code != ep.ok {
						t.Fatalf("got %d, want %d: %s", w.Code, ep.ok, w.Body.String())
					}
				}
				if w.Header().Get("Cache-Control") != "no-store" && !c.bad {
					t.Fatalf("Cache-Control %q, want no-store", w.Header().Get("Cache-Control"))
				}
			})
		}
	}
	// Only the metrics and health checks are open.
	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		if w := e.call(t, noCred, "GET", p, ""); w.Code != 200 {
			t.Fatalf("%s without credentials: %d", p, w.Code)
		}
	}
	for _, p := range []string{"/", "/api/", "/api/v1/nothing", "/quarantine", "/secret"} {
		mustCode(t, e.call(t, noCred, "GET", p, ""), 401, "unauthorized")
		mustCode(t, e.call(t, bearer(tokViewer), "GET", p, ""), 404, "not_found")
	}
}

// TestAPIViewerRefusalAudited: a refused action is in the audit log.
func TestAPIViewerRefusalAudited(t *testing.T) {
	e := newEnv(t)
	id := e.hold(t, holdSpec{})
	mustCode(t, e.call(t, bearer(tokViewer), "POST", "/api/v1/quarantine/"+id+"/release", ""), 403, "forbidden")
	es := e.audit(t, id)
	if len(es) != 1 || es[0].Actor != "vera" || es[0].Outcome != "forbidden" || es[0].Action != "release" {
		t.Fatalf("audit = %+v, want one forbidden release by vera", es)
	}
	if e.state(t, id) != store.HoldHeld {
		t.Fatal("a viewer's release changed the hold")
	}
}

func TestAPIErrors(t *testing.T) {
	e := newEnv(t)
	released := e.hold(t, holdSpec{})
	mustCode(t, e.call(t, bearer(tokReviewerA), "POST", "/api/v1/quarantine/"+released+"/release", ""), 200, "")
	deleted := e.hold(t, holdSpec{})
	mustCode(t, e.call(t, bearer(tokReviewerA), "POST", "/api/v1/quarantine/"+deleted+"/delete", ""), 200, "")
	held := e.hold(t, holdSpec{rcpts: []string{"ann@one.example", "bob@two.example"}})

	rev := bearer(tokReviewerB)
	cases := []struct {
		name         string
		method, path string
		body         string
		ctype        string // overrides application/json
		status       int
		code         string
	}{
		{"show unknown", "GET", "/api/v1/quarantine/NOSUCH", "", "", 404, "not_found"},
		{"raw unknown", "GET", "/api/v1/quarantine/NOSUCH/raw", "", "", 404, "not_found"},
		{"release unknown", "POST", "/api/v1/quarantine/NOSUCH/release", "", "", 404, "not_found"},
		{"delete unknown", "POST", "/api/v1/quarantine/NOSUCH/delete", "", "", 404, "not_found"},
		{"release released", "POST", "/api/v1/quarantine/" + released + "/release", "", "", 409, "not_held"},
		{"delete released", "POST", "/api/v1/quarantine/" + released + "/delete", "", "", 409, "not_held"},
		{"release deleted", "POST", "/api/v1/quarantine/" + deleted + "/release", "", "", 409, "not_held"},
		{"delete deleted", "POST", "/api/v1/quarantine/" + deleted + "/delete", "", "", 409, "not_held"},
		{"raw deleted", "GET", "/api/v1/quarantine/" + deleted + "/raw", "", "", 410, "gone"},
		{"unknown rewrite", "POST", "/api/v1/quarantine/" + held + "/release", `{"rewrite":"shuffle"}`, "", 400, "bad_request"},
		{"as-is without force", "POST", "/api/v1/quarantine/" + held + "/release", `{"rewrite":"as-is"}`, "", 400, "bad_request"},
		{"recipient not in envelope", "POST", "/api/v1/quarantine/" + held + "/release", `{"recipients":["ann@one.example","eve@evil.example"]}`, "", 400, "bad_request"},
		{"misspelt option", "POST", "/api/v1/quarantine/" + held + "/release", `{"rewite":"bcc"}`, "", 400, "bad_request"},
		{"not JSON", "POST", "/api/v1/quarantine/" + held + "/release", `{"rewrite":"bcc"}`, "text/plain", 415, "unsupported_media_type"},
		{"broken JSON", "POST", "/api/v1/quarantine/" + held + "/delete", `{"notify_sender":`, "", 400, "bad_request"},
		{"two values", "POST", "/api/v1/quarantine/" + held + "/delete", `{} {}`, "", 400, "bad_request"},
		{"bad state", "GET", "/api/v1/quarantine?state=frozen", "", "", 400, "bad_request"},
		{"bad limit", "GET", "/api/v1/quarantine?limit=-1", "", "", 400, "bad_request"},
		{"bad age", "GET", "/api/v1/quarantine?older_than=soon", "", "", 400, "bad_request"},
		{"bulk without filter", "POST", "/api/v1/quarantine/bulk", `{"action":"delete"}`, "", 400, "bad_request"},
		{"bulk unknown action", "POST", "/api/v1/quarantine/bulk", `{"filter":{"rule":"x"},"action":"shred"}`, "", 400, "bad_request"},
		{"bulk bad age", "POST", "/api/v1/quarantine/bulk", `{"filter":{"older_than":"a while"},"action":"delete"}`, "", 400, "bad_request"},
		{"bulk recipients", "POST", "/api/v1/quarantine/bulk", `{"filter":{"rule":"x"},"action":"release","recipients":["a@b"]}`, "", 400, "bad_request"},
		{"bulk as-is without force", "POST", "/api/v1/quarantine/bulk", `{"filter":{"rule":"x"},"action":"release","rewrite":"as-is"}`, "", 400, "bad_request"},
		{"audit bad since", "GET", "/api/v1/audit?since=yesterday", "", "", 400, "bad_request"},
		{"audit bad format", "GET", "/api/v1/audit?format=xml", "", "", 400, "bad_request"},
		{"wrong method", "DELETE", "/api/v1/quarantine/" + held, "", "", 405, "method_not_allowed"},
		{"GET an action", "GET", "/api/v1/quarantine/" + held + "/release", "", "", 405, "method_not_allowed"},
		{"unknown endpoint", "GET", "/api/v1/quarantine/" + held + "/frob", "", "", 404, "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cr := rev
			if c.ctype != "" {
				cr = func(r *http.Request) { rev(r); r.Header.Set("Content-Type", c.ctype) }
			}
			w := e.call(t, cr, c.method, c.path, c.body)
			mustCode(t, w, c.status, c.code)
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("error Content-Type %q", ct)
			}
		})
	}
	// None of the refused releases touched the held message, and each
	// refusal is audited.
	if e.state(t, held) != store.HoldHeld {
		t.Fatal("held message changed")
	}
	if es := e.audit(t, held); len(es) < 3 {
		t.Fatalf("audit of refused actions = %+v, want at least 3", es)
	}
}

// TestAPIShowAndRaw: show has what a reviewer needs; raw is a download.
func TestAPIShowAndRaw(t *testing.T) {
	e := newEnv(t, fourEyes("many-visible"))
	id := e.hold(t, holdSpec{rcpts: []string{"ann@one.example", "bob@two.example", "cat@two.example"}})
	w := e.call(t, bearer(tokViewer), "GET", "/api/v1/quarantine/"+id, "")
	d := decode[review.Detail](t, w)
	if d.ID != id || d.State != store.HoldHeld || d.Rule != "many-visible" || !d.FourEyes {
		t.Fatalf("detail %+v", d.Summary)
	}
	if d.Subject != "Your survey été" || d.From != "Shop <news@shop.example>" || d.MessageID != "<survey-1@shop.example>" {
		t.Fatalf("header summary: subject %q from %q message-id %q", d.Subject, d.From, d.MessageID)
	}
	if d.VisibleCounts.Total != 3 || d.VisibleCounts.To != 3 || d.VisibleCounts.Domains != 2 ||
		d.VisibleCounts.TopDomains[0] != (review.DomainCount{Domain: "two.example", Count: 2}) {
		t.Fatalf("visible counts %+v", d.VisibleCounts)
	}
	if len(d.EnvelopeRecipients) != 3 || len(d.VisibleRecipients) != 3 || !d.BodyAvailable {
		t.Fatalf("recipients %v / %v, body %v", d.EnvelopeRecipients, d.VisibleRecipients, d.BodyAvailable)
	}
	if d.Preview.Source != "text/plain" || d.Preview.Text != "Hello,\nplease take our survey." {
		t.Fatalf("preview %+v", d.Preview)
	}
	if d.Header[0].Name != "Received" || len(d.Header) != 8 {
		t.Fatalf("header %+v", d.Header)
	}

	w = e.call(t, bearer(tokViewer), "GET", "/api/v1/quarantine/"+id+"/raw", "")
	if w.Header().Get("Content-Type") != "message/rfc822" ||
		w.Header().Get("Content-Disposition") != `attachment; filename=`+id+`.eml` ||
		w.Body.String() != defaultMessage([]string{"ann@one.example", "bob@two.example", "cat@two.example"}) {
		t.Fatalf("raw: %v %q", w.Header(), w.Body.String())
	}
	if es := e.audit(t, id); len(es) != 1 || es[0].Action != "download" || es[0].Actor != "vera" {
		t.Fatalf("download audit %+v", es)
	}

	// Listing: paging and total.
	for range 4 {
		e.hold(t, holdSpec{rule: "other"})
	}
	p := decode[review.Page](t, e.call(t, bearer(tokViewer), "GET", "/api/v1/quarantine?rule=other&limit=3&offset=1", ""))
	if p.Total != 4 || len(p.Items) != 3 || p.Offset != 1 || p.Limit != 3 || p.Items[0].Subject == "" {
		t.Fatalf("page %+v", p)
	}
}

// TestAPIAuditExport: ?format=jsonl is every entry, one JSON object a line.
func TestAPIAuditExport(t *testing.T) {
	e := newEnv(t)
	for range 3 {
		id := e.hold(t, holdSpec{})
		mustCode(t, e.call(t, bearer(tokReviewerA), "POST", "/api/v1/quarantine/"+id+"/delete", ""), 200, "")
	}
	w := e.call(t, bearer(tokViewer), "GET", "/api/v1/audit?format=jsonl", "")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("export: %d %v", w.Code, w.Header())
	}
	var got []store.AuditEntry
	sc := bufio.NewScanner(w.Body)
	for sc.Scan() {
		var a store.AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, a)
	}
	if len(got) != 3 {
		t.Fatalf("exported %d entries, want 3: %+v", len(got), got)
	}
	for _, a := range got {
		if a.Actor != "rita" || a.Action != "delete" || a.Outcome != "ok" || a.ID == 0 || a.At.IsZero() {
			t.Fatalf("entry %+v", a)
		}
	}
	// The export itself is audited, and the JSON list filters by actor.
	list := decode[[]store.AuditEntry](t, e.call(t, bearer(tokViewer), "GET", "/api/v1/audit?actor=vera", ""))
	if len(list) != 1 || list[0].Action != "audit-export" {
		t.Fatalf("audit of vera = %+v", list)
	}
	list = decode[[]store.AuditEntry](t, e.call(t, bearer(tokViewer), "GET", "/api/v1/audit?since=1h&limit=2", ""))
	if len(list) != 2 {
		t.Fatalf("limit 2 gave %d", len(list))
	}
}
