package web_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/review/web"
	"github.com/bccguard/bccguard/relay/store"
)

func TestWebUnauthenticated(t *testing.T) {
	e := newEnv(t)
	id := e.hold(t, holdSpec{})
	b := e.browser(t)
	for _, path := range []string{"/quarantine", "/quarantine/m/" + id, "/quarantine/m/" + id + "/raw",
		"/quarantine/bulk", "/quarantine/audit", "/quarantine/audit.jsonl", "/quarantine/nothing-here"} {
		p := b.get(path)
		mustStatus(t, p, http.StatusSeeOther, "GET "+path)
		loc, _ := url.Parse(p.location())
		if loc.Path != "/quarantine/signin" || loc.Query().Get("next") != path {
			t.Errorf("GET %s redirects to %q, want the sign-in page with next=%s", path, p.location(), path)
		}
	}
	for _, path := range []string{"/quarantine/m/" + id + "/release", "/quarantine/m/" + id + "/delete",
		"/quarantine/bulk", "/quarantine/signout"} {
		p := b.post(path, url.Values{"confirm": {"yes"}, "rule": {"many-visible"}, "action": {"release"}})
		mustStatus(t, p, http.StatusUnauthorized, "POST "+path)
		mustContain(t, p, "POST "+path, "Sign-in required")
	}
	if s := e.state(t, id); s != store.HoldHeld {
		t.Fatalf("state after unauthenticated posts: %s", s)
	}
	// The sign-in page and the stylesheet need no session.
	mustStatus(t, b.get("/quarantine/signin"), http.StatusOK, "sign-in page")
	css := b.get("/quarantine/static/app.css")
	mustStatus(t, css, http.StatusOK, "stylesheet")
	if ct := css.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") {
		t.Errorf("stylesheet Content-Type %q", ct)
	}
	if ct := b.get("/quarantine/static/favicon.svg").header.Get("Content-Type"); ct != "image/svg+xml" {
		t.Errorf("favicon Content-Type %q", ct)
	}
	mustStatus(t, b.get("/quarantine/static/"), http.StatusSeeOther, "the static folder (no listing)")
	// A stale or forged session cookie is no session.
	u, _ := url.Parse(e.srv.URL)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: web.SessionCookie, Value: strings.Repeat("A", 43), Path: "/"}})
	mustStatus(t, b.get("/quarantine"), http.StatusSeeOther, "forged cookie")
}

func TestWebSignIn(t *testing.T) {
	e := newEnv(t)
	t.Run("bad password", func(t *testing.T) {
		b := e.browser(t)
		p := b.trySignIn("alice", "wrong")
		mustStatus(t, p, http.StatusUnauthorized, "bad password")
		mustContain(t, p, "bad password", "Wrong user name or password.")
		if b.cookie(web.SessionCookie) != nil {
			t.Error("a session cookie was set for a bad password")
		}
		p = b.trySignIn("mallory", password)
		mustStatus(t, p, http.StatusUnauthorized, "unknown user")
		p = b.trySignIn("alice", "")
		mustStatus(t, p, http.StatusUnauthorized, "empty password")
	})
	t.Run("csrf", func(t *testing.T) {
		b := e.browser(t)
		b.get("/quarantine/signin") // sets the pre-session cookie
		for name, tok := range map[string][]string{"missing": nil, "wrong": {"forged-token"}} {
			p := b.post("/quarantine/signin", url.Values{"csrf": tok, "user": {"alice"}, "password": {password}})
			mustStatus(t, p, http.StatusForbidden, "sign-in with "+name+" CSRF token")
			if b.cookie(web.SessionCookie) != nil {
				t.Fatalf("sign-in with %s CSRF token set a session cookie", name)
			}
		}
		// A form token without its cookie (another browser's) fails too.
		form := e.browser(t).get("/quarantine/signin")
		tok := csrfField.FindStringSubmatch(form.body)[1]
		p := e.browser(t).post("/quarantine/signin", url.Values{"csrf": {tok}, "user": {"alice"}, "password": {password}})
		mustStatus(t, p, http.StatusForbidden, "sign-in token without its cookie")
	})
	t.Run("ok", func(t *testing.T) {
		b := e.browser(t)
		p := b.trySignIn("alice", password)
		mustStatus(t, p, http.StatusSeeOther, "sign in")
		if p.location() != "/quarantine" {
			t.Errorf("after sign-in: redirect to %q", p.location())
		}
		var sc *http.Cookie
		for _, c := range (&http.Response{Header: p.header}).Cookies() {
			if c.Name == web.SessionCookie {
				sc = c
			}
		}
		if sc == nil {
			t.Fatal("no session cookie")
		}
		if len(sc.Value) != 43 || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Path != "/" || sc.Secure {
			t.Errorf("session cookie %+v: want 43 characters (256 bits), HttpOnly, SameSite=Strict, Path=/, not Secure over plain HTTP", sc)
		}
		if sc.MaxAge != int((8 * time.Hour).Seconds()) {
			t.Errorf("session cookie Max-Age %d, want 8h", sc.MaxAge)
		}
		list := b.get("/quarantine")
		mustStatus(t, list, http.StatusOK, "list after sign-in")
		mustContain(t, list, "list", "alice", "reviewer", "Sign out")
	})
	t.Run("next", func(t *testing.T) {
		b := e.browser(t)
		p := b.get("/quarantine/audit?actor=alice")
		form := b.get(p.location())
		tok := csrfField.FindStringSubmatch(form.body)[1]
		next := regexpValue(t, form.body, "next")
		p = b.post("/quarantine/signin", url.Values{"csrf": {tok}, "next": {next}, "user": {"alice"}, "password": {password}})
		if p.location() != "/quarantine/audit?actor=alice" {
			t.Errorf("after sign-in with next: redirect to %q", p.location())
		}
		// Elsewhere is never a destination.
		for _, evil := range []string{"https://evil.example/", "//evil.example/quarantine", "/api/v1/quarantine", `/\evil.example`,
			"/quarantine/../../evil", "/quarantine/%2e%2e/%2e%2e/evil", "/quarantine/..%2f..%2fevil", "/quarantine/../metrics", "quarantine/m/x"} {
			b := e.browser(t)
			form := b.get("/quarantine/signin")
			tok := csrfField.FindStringSubmatch(form.body)[1]
			p := b.post("/quarantine/signin", url.Values{"csrf": {tok}, "next": {evil}, "user": {"alice"}, "password": {password}})
			if p.location() != "/quarantine" {
				t.Errorf("next=%q: redirect to %q, want /quarantine", evil, p.location())
			}
		}
	})
	t.Run("secure over TLS", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodGet, "https://admin.test/quarantine/signin", nil)
		req.TLS = &tls.ConnectionState{}
		w := httptest.NewRecorder()
		e.pages.ServeHTTP(w, req)
		cs := w.Result().Cookies()
		if len(cs) != 1 || !cs[0].Secure || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode {
			t.Fatalf("pre-session cookie over TLS: %+v", cs)
		}
		tok := csrfField.FindStringSubmatch(w.Body.String())[1]
		form := url.Values{"csrf": {tok}, "user": {"alice"}, "password": {password}}
		req = httptest.NewRequest(http.MethodPost, "https://admin.test/quarantine/signin", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.TLS = &tls.ConnectionState{}
		req.AddCookie(cs[0])
		w = httptest.NewRecorder()
		e.pages.ServeHTTP(w, req)
		if w.Code != http.StatusSeeOther {
			t.Fatalf("sign-in over TLS: %d\n%s", w.Code, w.Body)
		}
		for _, c := range w.Result().Cookies() {
			if c.Name == web.SessionCookie && (!c.Secure || !c.HttpOnly) {
				t.Errorf("session cookie over TLS is not Secure and HttpOnly: %+v", c)
			}
		}
	})
}

func regexpValue(t *testing.T, body, name string) string {
	t.Helper()
	i := strings.Index(body, `name="`+name+`" value="`)
	if i < 0 {
		t.Fatalf("no field %s in\n%s", name, body)
	}
	rest := body[i+len(`name="`+name+`" value="`):]
	return html.UnescapeString(rest[:strings.IndexByte(rest, '"')])
}

func TestWebSessionExpiresAndSignOut(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	b.signIn("alice")
	e.clock.Add(8*time.Hour - time.Minute)
	mustStatus(t, b.get("/quarantine"), http.StatusOK, "list before the session ends")
	e.clock.Add(2 * time.Minute)
	mustStatus(t, b.get("/quarantine"), http.StatusSeeOther, "list after 8 hours")

	b = e.browser(t)
	b.signIn("alice")
	mustStatus(t, b.post("/quarantine/signout", nil), http.StatusForbidden, "sign-out without CSRF token")
	mustStatus(t, b.get("/quarantine"), http.StatusOK, "still signed in")
	old := b.cookie(web.SessionCookie).Value
	p := b.postCSRF("/quarantine/signout", nil)
	mustStatus(t, p, http.StatusSeeOther, "sign-out")
	mustStatus(t, b.get("/quarantine"), http.StatusSeeOther, "list after sign-out")
	// The old cookie is dead on the server too, not just in this jar.
	b2 := e.browser(t)
	u, _ := url.Parse(e.srv.URL)
	b2.c.Jar.SetCookies(u, []*http.Cookie{{Name: web.SessionCookie, Value: old, Path: "/"}})
	mustStatus(t, b2.get("/quarantine"), http.StatusSeeOther, "list with a signed-out cookie")
}

func TestWebCSRF(t *testing.T) {
	e := newEnv(t)
	id := e.hold(t, holdSpec{})
	alice := e.browser(t)
	alice.signIn("alice")
	rob := e.browser(t)
	rob.signIn("rob")
	for name, tok := range map[string][]string{"missing": nil, "wrong": {"x" + alice.csrf[1:]}, "another session's": {rob.csrf}} {
		for _, path := range []string{"/quarantine/m/" + id + "/release", "/quarantine/m/" + id + "/delete", "/quarantine/bulk", "/quarantine/signout"} {
			p := alice.post(path, url.Values{"csrf": tok, "confirm": {"yes"}, "rule": {"many-visible"}, "action": {"delete"}})
			mustStatus(t, p, http.StatusForbidden, name+" CSRF token: POST "+path)
		}
	}
	if s := e.state(t, id); s != store.HoldHeld {
		t.Fatalf("state after forged posts: %s", s)
	}
	if es := e.audit(t, id); len(es) != 0 {
		t.Errorf("forged posts reached the service: %+v", es)
	}
}

func TestWebViewer(t *testing.T) {
	e := newEnv(t)
	id := e.hold(t, holdSpec{})
	v := e.browser(t)
	v.signIn("victor")
	for _, path := range []string{"/quarantine", "/quarantine?rule=many-visible", "/quarantine/m/" + id} {
		p := v.get(path)
		mustStatus(t, p, http.StatusOK, "viewer GET "+path)
		for _, forbidden := range []string{"/release", "/delete", "Bulk action", "/quarantine/bulk"} {
			if strings.Contains(p.body, forbidden) {
				t.Errorf("viewer's %s shows %q", path, forbidden)
			}
		}
	}
	mustContain(t, v.get("/quarantine/m/"+id), "viewer detail", "You may look but not act")
	mustStatus(t, v.get("/quarantine/bulk?rule=many-visible"), http.StatusForbidden, "viewer bulk page")
	for _, step := range []url.Values{{}, {"confirm": {"yes"}}} {
		mustStatus(t, v.postCSRF("/quarantine/m/"+id+"/release", step), http.StatusForbidden, "viewer release")
		mustStatus(t, v.postCSRF("/quarantine/m/"+id+"/delete", step), http.StatusForbidden, "viewer delete")
		step.Set("rule", "many-visible")
		step.Set("action", "release")
		step.Set("expect", "1")
		mustStatus(t, v.postCSRF("/quarantine/bulk", step), http.StatusForbidden, "viewer bulk")
	}
	if s := e.state(t, id); s != store.HoldHeld {
		t.Fatalf("state after a viewer's posts: %s", s)
	}
	// The refused actions that reached the service are audited as refused.
	for _, a := range e.audit(t, id) {
		if a.Actor != "victor" || a.Outcome != string(review.CodeForbidden) || !strings.Contains(a.Detail, "via web") {
			t.Errorf("audit of a viewer's refused action: %+v", a)
		}
	}
	// Viewers may still read the audit log and download.
	mustStatus(t, v.get("/quarantine/audit"), http.StatusOK, "viewer audit")
	mustStatus(t, v.get("/quarantine/m/"+id+"/raw"), http.StatusOK, "viewer download")
}

func TestWebRelease(t *testing.T) {
	e := newEnv(t)
	id := e.hold(t, holdSpec{})
	b := e.browser(t)
	b.signIn("alice")

	d := b.get("/quarantine/m/" + id)
	mustStatus(t, d, http.StatusOK, "detail")
	mustContain(t, d, "detail", `action="/quarantine/m/`+id+`/release"`, `value="explode" checked`, "Release…", "Delete…")

	// The first post only asks.
	c := b.postCSRF("/quarantine/m/"+id+"/release", url.Values{"rewrite": {"explode"}})
	mustStatus(t, c, http.StatusOK, "release, first step")
	mustContain(t, c, "confirmation", "Release this message?", "3 copies will be sent", `name="confirm" value="yes"`, "Cancel")
	if s := e.state(t, id); s != store.HoldHeld {
		t.Fatalf("the confirmation page released the message (%s)", s)
	}
	// Confirming releases.
	p := b.postCSRF("/quarantine/m/"+id+"/release", url.Values{"rewrite": {"explode"}, "confirm": {"yes"}})
	mustStatus(t, p, http.StatusSeeOther, "release, confirmed")
	if p.location() != "/quarantine/m/"+id {
		t.Errorf("after release: redirect to %q", p.location())
	}
	d = b.get(p.location())
	mustContain(t, d, "detail after release", "Released as explode to 3 recipients: 3 copies queued.", "badge-released", "release-explode by <strong>alice</strong>")
	if strings.Contains(d.body, "Release…") {
		t.Error("a released message still offers Release")
	}
	if s := e.state(t, id); s != store.HoldReleased {
		t.Fatalf("state %s after release", s)
	}
	if n := len(e.deliveries(t, id)); n != 3 {
		t.Errorf("%d deliveries queued, want 3 (explode)", n)
	}
	es := e.audit(t, id)
	if len(es) != 1 || es[0].Actor != "alice" || es[0].Action != "release-explode" || es[0].Outcome != "ok" || !strings.Contains(es[0].Detail, "via web") {
		t.Fatalf("audit of the release: %+v", es)
	}
	// The flash is shown once.
	if strings.Contains(b.get(p.location()).body, "copies queued") {
		t.Error("the flash message is shown twice")
	}
	// Again: not held any more, said on the page.
	p = b.postCSRF("/quarantine/m/"+id+"/release", url.Values{"rewrite": {"explode"}, "confirm": {"yes"}})
	mustStatus(t, p, http.StatusSeeOther, "second release")
	mustContain(t, b.get(p.location()), "second release", "is released")

	t.Run("subset and bcc", func(t *testing.T) {
		id := e.hold(t, holdSpec{})
		c := b.postCSRF("/quarantine/m/"+id+"/release", url.Values{"rewrite": {"bcc"}, "rcpt": {"ann@one.example", "cat@two.example"}})
		mustContain(t, c, "subset confirmation", "Only the 2 chosen", "ann@one.example", "undisclosed-recipients")
		p := b.postCSRF("/quarantine/m/"+id+"/release", url.Values{"rewrite": {"bcc"}, "rcpt": {"ann@one.example", "cat@two.example"}, "confirm": {"yes"}})
		mustStatus(t, p, http.StatusSeeOther, "subset release")
		ds := e.deliveries(t, id)
		if len(ds) != 1 || len(ds[0].Delivery.Recipients) != 2 || ds[0].Delivery.Rewrite != store.RewriteBcc {
			t.Fatalf("subset bcc release: %+v", ds)
		}
	})
	t.Run("as-is needs force", func(t *testing.T) {
		id := e.hold(t, holdSpec{})
		for _, step := range []url.Values{{"rewrite": {"as-is"}}, {"rewrite": {"as-is"}, "confirm": {"yes"}}} {
			p := b.postCSRF("/quarantine/m/"+id+"/release", step)
			mustStatus(t, p, http.StatusSeeOther, "as-is without force")
			mustContain(t, b.get(p.location()), "as-is without force", "force")
		}
		if s := e.state(t, id); s != store.HoldHeld {
			t.Fatalf("as-is without force released it (%s)", s)
		}
		c := b.postCSRF("/quarantine/m/"+id+"/release", url.Values{"rewrite": {"as-is"}, "force": {"1"}})
		mustContain(t, c, "forced confirmation", "Forced release as-is", `name="force" value="1"`, "button danger")
		p := b.postCSRF("/quarantine/m/"+id+"/release", url.Values{"rewrite": {"as-is"}, "force": {"1"}, "confirm": {"yes"}})
		mustStatus(t, p, http.StatusSeeOther, "forced release")
		// Newest first: the forced release, and the confirmed post without
		// force, which the service refused and audited.
		if es := e.audit(t, id); len(es) != 2 || es[0].Action != "release-as-is" || !strings.Contains(es[0].Detail, "forced") ||
			es[1].Outcome != string(review.CodeBadRequest) {
			t.Fatalf("audit of a forced release: %+v", es)
		}
	})
	t.Run("unknown message", func(t *testing.T) {
		mustStatus(t, b.get("/quarantine/m/NOSUCHMESSAGE"), http.StatusNotFound, "unknown message")
		mustStatus(t, b.postCSRF("/quarantine/m/NOSUCHMESSAGE/release", url.Values{"confirm": {"yes"}}), http.StatusNotFound, "release of an unknown message")
	})
}

func TestWebDelete(t *testing.T) {
	e := newEnv(t)
	id := e.hold(t, holdSpec{})
	b := e.browser(t)
	b.signIn("alice")
	c := b.postCSRF("/quarantine/m/"+id+"/delete", url.Values{"notify": {"1"}})
	mustStatus(t, c, http.StatusOK, "delete, first step")
	mustContain(t, c, "delete confirmation", "Delete this message?", "news@shop.example", `name="notify" value="1"`)
	if s := e.state(t, id); s != store.HoldHeld {
		t.Fatalf("the confirmation page deleted the message (%s)", s)
	}
	p := b.postCSRF("/quarantine/m/"+id+"/delete", url.Values{"notify": {"1"}, "confirm": {"yes"}})
	mustStatus(t, p, http.StatusSeeOther, "delete, confirmed")
	d := b.get(p.location())
	mustContain(t, d, "after delete", "Deleted. A notice to the sender is queued.", "badge-deleted", "no longer stored")
	if s := e.state(t, id); s != store.HoldDeleted {
		t.Fatalf("state %s after delete", s)
	}
	es := e.audit(t, id)
	if len(es) != 1 || es[0].Actor != "alice" || es[0].Action != "delete" || !strings.Contains(es[0].Detail, "via web") || !strings.Contains(es[0].Detail, "sender notice queued") {
		t.Fatalf("audit of the delete: %+v", es)
	}
	mustStatus(t, b.get("/quarantine/m/"+id+"/raw"), http.StatusGone, "download of a deleted message")
}

func TestWebFourEyes(t *testing.T) {
	e := newEnv(t, "many-visible")
	id := e.hold(t, holdSpec{})
	alice, rob := e.browser(t), e.browser(t)
	alice.signIn("alice")
	rob.signIn("rob")

	mustContain(t, alice.get("/quarantine"), "list", "four-eyes")
	mustContain(t, alice.get("/quarantine/m/"+id), "detail", "Four-eyes rule.", "No one has approved it yet")
	c := alice.postCSRF("/quarantine/m/"+id+"/release", url.Values{"rewrite": {"explode"}})
	mustContain(t, c, "first reviewer's confirmation", "recorded as the first approval", "Approve release as explode")
	p := alice.postCSRF("/quarantine/m/"+id+"/release", url.Values{"rewrite": {"explode"}, "confirm": {"yes"}})
	mustStatus(t, p, http.StatusSeeOther, "first approval")
	mustContain(t, alice.get(p.location()), "after the first approval",
		"Your approval to release as explode is recorded", "Approved by <strong>alice</strong>", "You approved it: a different reviewer must release it.")
	if s := e.state(t, id); s != store.HoldHeld {
		t.Fatalf("one reviewer released a four-eyes hold (%s)", s)
	}
	mustContain(t, alice.get("/quarantine"), "list after the first approval", "1 of 2 approvals")

	// The same reviewer again is refused.
	p = alice.postCSRF("/quarantine/m/"+id+"/release", url.Values{"rewrite": {"explode"}, "confirm": {"yes"}})
	mustContain(t, alice.get(p.location()), "second approval by the same reviewer", "a different reviewer must release it")
	if s := e.state(t, id); s != store.HoldHeld {
		t.Fatalf("the same reviewer twice released a four-eyes hold (%s)", s)
	}

	// A second reviewer sees who approved, and completes it.
	d := rob.get("/quarantine/m/" + id)
	mustContain(t, d, "second reviewer's detail", "Approved by <strong>alice</strong>", "It needs a second reviewer")
	c = rob.postCSRF("/quarantine/m/"+id+"/release", url.Values{"rewrite": {"explode"}})
	mustContain(t, c, "second reviewer's confirmation", "alice approved this release; yours completes it")
	p = rob.postCSRF("/quarantine/m/"+id+"/release", url.Values{"rewrite": {"explode"}, "confirm": {"yes"}})
	mustContain(t, rob.get(p.location()), "after the second reviewer", "Released as explode")
	if s := e.state(t, id); s != store.HoldReleased {
		t.Fatalf("state %s after two reviewers", s)
	}
	var actions []string
	for _, a := range e.audit(t, id) {
		actions = append(actions, a.Actor+":"+a.Action+":"+a.Outcome)
	}
	want := "rob:release-explode:ok alice:approve:needs_second_reviewer alice:approve:ok"
	if strings.Join(actions, " ") != want {
		t.Errorf("audit %q, want %q", strings.Join(actions, " "), want)
	}
}

func TestWebBulk(t *testing.T) {
	e := newEnv(t)
	var promo []string
	for range 3 {
		promo = append(promo, e.hold(t, holdSpec{rule: "promo", sender: "crm@brand.example"}))
	}
	other := e.hold(t, holdSpec{rule: "customer-list"})
	b := e.browser(t)
	b.signIn("alice")

	list := b.get("/quarantine?rule=promo")
	mustContain(t, list, "filtered list", "Bulk action on this filter", `href="/quarantine/bulk?rule=promo"`, "chip-active")
	form := b.get("/quarantine/bulk?rule=promo")
	mustStatus(t, form, http.StatusOK, "bulk form")
	mustContain(t, form, "bulk form", `name="rule" type="text" value="promo"`, "dry run")

	// No filter: refused, with the reason.
	p := b.postCSRF("/quarantine/bulk", url.Values{"action": {"release"}})
	mustStatus(t, p, http.StatusBadRequest, "bulk without a filter")
	mustContain(t, p, "bulk without a filter", "needs a filter")

	// The dry run counts and changes nothing.
	dry := b.postCSRF("/quarantine/bulk", url.Values{"action": {"release"}, "rule": {"promo"}, "rewrite": {"explode"}})
	mustStatus(t, dry, http.StatusOK, "dry run")
	mustContain(t, dry, "dry run", "Dry run: 3 held messages match the filter rule=promo", "Release 3 messages as explode",
		`name="expect" value="3"`, promo[0])
	for _, id := range append(promo, other) {
		if s := e.state(t, id); s != store.HoldHeld {
			t.Fatalf("the dry run changed %s to %s", id, s)
		}
	}
	// A changed count asks again.
	p = b.postCSRF("/quarantine/bulk", url.Values{"action": {"release"}, "rule": {"promo"}, "rewrite": {"explode"}, "confirm": {"yes"}, "expect": {"2"}})
	mustStatus(t, p, http.StatusConflict, "bulk with a stale count")
	mustContain(t, p, "bulk with a stale count", "changed from 2 to 3")
	// Applying releases exactly the matching ones.
	p = b.postCSRF("/quarantine/bulk", url.Values{"action": {"release"}, "rule": {"promo"}, "rewrite": {"explode"}, "confirm": {"yes"}, "expect": {"3"}})
	mustStatus(t, p, http.StatusSeeOther, "bulk apply")
	mustContain(t, b.get(p.location()), "after bulk", "Bulk release (rule=promo): 3 matched, 3 done, 0 failed.")
	for _, id := range promo {
		if s := e.state(t, id); s != store.HoldReleased {
			t.Errorf("%s is %s after the bulk release", id, s)
		}
		if es := e.audit(t, id); len(es) != 1 || !strings.Contains(es[0].Detail, "via web") {
			t.Errorf("audit of %s: %+v", id, es)
		}
	}
	if s := e.state(t, other); s != store.HoldHeld {
		t.Errorf("a hold outside the filter is %s", s)
	}
	if es := e.audit(t, "rule=promo"); len(es) != 1 || es[0].Action != "bulk-release" || es[0].Actor != "alice" {
		t.Errorf("audit of the bulk action: %+v", es)
	}

	// Bulk delete, with nothing left to match.
	dry = b.postCSRF("/quarantine/bulk", url.Values{"action": {"delete"}, "rule": {"promo"}})
	mustContain(t, dry, "empty dry run", "Nothing matches")
	if strings.Contains(dry.body, `name="confirm"`) {
		t.Error("an empty dry run offers to confirm")
	}
	dry = b.postCSRF("/quarantine/bulk", url.Values{"action": {"delete"}, "rule": {"customer-list"}, "notify": {"1"}})
	mustContain(t, dry, "delete dry run", "Delete 1 message", "button danger")
	p = b.postCSRF("/quarantine/bulk", url.Values{"action": {"delete"}, "rule": {"customer-list"}, "notify": {"1"}, "confirm": {"yes"}, "expect": {"1"}})
	mustStatus(t, p, http.StatusSeeOther, "bulk delete")
	if s := e.state(t, other); s != store.HoldDeleted {
		t.Errorf("bulk delete: %s", s)
	}
}

func TestWebListFiltersAndPages(t *testing.T) {
	e := newEnv(t)
	for i := range 30 {
		e.hold(t, holdSpec{rule: "promo", sender: "crm@brand.example", age: time.Duration(i) * time.Hour})
	}
	old := e.hold(t, holdSpec{rule: "customer-list", sender: "sales@brand.example", ip: "198.51.100.7", user: "salesbot", age: 10 * 24 * time.Hour,
		subject: "the customer list you asked for"})
	b := e.browser(t)
	b.signIn("victor")

	p := b.get("/quarantine")
	mustContain(t, p, "list", "31 messages are held", "the oldest arrived 10 days ago", "promo <span class=\"chip-count\">30</span>",
		"customer-list <span class=\"chip-count\">1</span>", "Showing 1–25 of 31", `href="/quarantine?offset=25"`)
	p = b.get("/quarantine?offset=25")
	mustContain(t, p, "page 2", "Showing 26–31 of 31", "← Newer", "the customer list you asked for")
	for q, want := range map[string]string{
		"sender=sales@brand.example": "Showing 1–1 of 1",
		"client_ip=198.51.100.7":     "Showing 1–1 of 1",
		"user=salesbot":              "Showing 1–1 of 1",
		"older_than=7d":              "Showing 1–1 of 1",
		"rule=promo":                 "Showing 1–25 of 30",
		"state=released":             "No released messages.",
	} {
		mustContain(t, b.get("/quarantine?"+q), q, want)
	}
	p = b.get("/quarantine?older_than=soon")
	mustStatus(t, p, http.StatusBadRequest, "bad age")
	mustContain(t, p, "bad age", "Invalid age")
	mustContain(t, b.get("/quarantine/m/"+old), "detail", "salesbot", "198.51.100.7", "submission", "crm.shop.example")
}

func TestWebDetailShowsWhy(t *testing.T) {
	e := newEnv(t)
	id := e.hold(t, holdSpec{rcpts: []string{"ann@one.example", "bob@two.example", "cat@two.example", "dan@three.example"},
		names: []string{"Ann Archer", "Bob Baker", "Cat Cole", "Dan Dole"}, body: "Dear customer,\r\nplease rate us.\r\n"})
	b := e.browser(t)
	b.signIn("victor")
	d := b.get("/quarantine/m/" + id)
	mustContain(t, d, "detail",
		"Why it was held", "many-visible", "visible.external &gt;= 2",
		`<span class="figure-value">4</span>`, "visible recipients", "figure trigger",
		"Whom it would have exposed", "<strong>4</strong> addresses shown to every recipient", "(To: 4, Cc: 0) at 3 domains",
		"two.example", `<meter min="0" max="2" value="2">`,
		"Ann Archer", "dan@three.example",
		"news@shop.example", "192.0.2.10", "submission",
		`<pre class="preview">Dear customer,`, "Message-ID", "&lt;survey-1@shop.example&gt;",
		`href="/quarantine/m/`+id+`/raw"`)
	raw := b.get("/quarantine/m/" + id + "/raw")
	mustStatus(t, raw, http.StatusOK, "download")
	if ct, cd := raw.header.Get("Content-Type"), raw.header.Get("Content-Disposition"); ct != "message/rfc822" || !strings.Contains(cd, "attachment") {
		t.Errorf("download: Content-Type %q, Content-Disposition %q", ct, cd)
	}
	if !strings.Contains(raw.body, "Subject: Your survey") {
		t.Errorf("download is not the message:\n%s", raw.body)
	}
	if es := e.audit(t, id); len(es) != 1 || es[0].Action != "download" || es[0].Actor != "victor" {
		t.Errorf("audit of the download: %+v", es)
	}
}

func TestWebAudit(t *testing.T) {
	e := newEnv(t)
	id := e.hold(t, holdSpec{})
	id2 := e.hold(t, holdSpec{})
	alice := e.browser(t)
	alice.signIn("alice")
	alice.postCSRF("/quarantine/m/"+id+"/release", url.Values{"confirm": {"yes"}})
	rob := e.browser(t)
	rob.signIn("rob")
	rob.postCSRF("/quarantine/m/"+id2+"/delete", url.Values{"confirm": {"yes"}})

	p := alice.get("/quarantine/audit")
	mustStatus(t, p, http.StatusOK, "audit page")
	mustContain(t, p, "audit page", "release-explode", "delete", "rob", "alice", `href="/quarantine/m/`+id+`"`, "via web",
		`href="/quarantine/audit.jsonl"`)
	p = alice.get("/quarantine/audit?actor=rob")
	mustContain(t, p, "audit by actor", "delete", id2)
	if strings.Contains(p.body, "release-explode") {
		t.Error("the audit page filtered by actor rob shows alice's release")
	}
	p = alice.get("/quarantine/audit?target=" + id)
	mustContain(t, p, "audit by target", "release-explode", `href="/quarantine/audit.jsonl?target=`+id+`"`)

	x := alice.get("/quarantine/audit.jsonl?actor=rob")
	mustStatus(t, x, http.StatusOK, "export")
	if ct := x.header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("export Content-Type %q", ct)
	}
	sc := bufio.NewScanner(strings.NewReader(x.body))
	n := 0
	for sc.Scan() {
		var ae store.AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &ae); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		if ae.Actor != "rob" {
			t.Errorf("export filtered by rob has %+v", ae)
		}
		n++
	}
	if n != 1 {
		t.Errorf("export has %d lines, want 1 (rob's delete)\n%s", n, x.body)
	}
}

// pagesOf signs in as a reviewer, makes each kind of page exist and
// returns them all.
func pagesOf(t *testing.T, e *env, ids ...string) map[string]page {
	t.Helper()
	b := e.browser(t)
	out := map[string]page{"signin": b.get("/quarantine/signin"), "signin-failed": b.trySignIn("alice", "nope")}
	b.signIn("alice")
	out["list"] = b.get("/quarantine")
	out["bulk"] = b.get("/quarantine/bulk?rule=many-visible")
	out["bulk-dry-run"] = b.postCSRF("/quarantine/bulk", url.Values{"action": {"release"}, "rule": {"many-visible"}})
	out["audit"] = b.get("/quarantine/audit")
	out["not-found"] = b.get("/quarantine/m/NOSUCH")
	for i, id := range ids {
		n := string(rune('a' + i))
		out["detail-"+n] = b.get("/quarantine/m/" + id)
		out["release-confirm-"+n] = b.postCSRF("/quarantine/m/"+id+"/release", url.Values{"rewrite": {"explode"}, "rcpt": {"ann@one.example"}})
		out["delete-confirm-"+n] = b.postCSRF("/quarantine/m/"+id+"/delete", url.Values{"notify": {"1"}})
	}
	v := e.browser(t)
	v.signIn("victor")
	out["forbidden"] = v.get("/quarantine/bulk")
	return out
}

func TestWebSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	id := e.hold(t, holdSpec{})
	pages := pagesOf(t, e, id)
	b := e.browser(t)
	pages["redirect"] = b.get("/quarantine")
	pages["static"] = b.get("/quarantine/static/app.css")
	for name, p := range pages {
		h := p.header
		if got := h.Get("Content-Security-Policy"); got != web.ContentSecurityPolicy {
			t.Errorf("%s: Content-Security-Policy %q", name, got)
		}
		for k, want := range map[string]string{
			"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Frame-Options": "DENY",
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %s %q, want %q", name, k, got, want)
			}
		}
	}
	for _, d := range []string{"default-src 'none'", "style-src 'self'", "img-src 'self'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(web.ContentSecurityPolicy, d) {
			t.Errorf("the CSP lacks %s", d)
		}
	}
}

// TestWebNoExternalURLs parses every page and checks that each URL in it
// (links, forms, stylesheets, images) stays on the admin listener, and
// that there is no script and no inline style the CSP would have to allow.
func TestWebNoExternalURLs(t *testing.T) {
	e := newEnv(t)
	id := e.hold(t, holdSpec{})
	for name, p := range pagesOf(t, e, id) {
		if !strings.HasPrefix(p.header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: Content-Type %q", name, p.header.Get("Content-Type"))
			continue
		}
		checkPage(t, name, p.body)
	}
}

func checkPage(t *testing.T, name, body string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	forms := 0
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "iframe", "object", "embed", "base":
				t.Errorf("%s: has a <%s> element", name, n.Data)
			case "form":
				forms++
				method, hasCSRF := "get", false
				for _, a := range n.Attr {
					if a.Key == "method" {
						method = a.Val
					}
				}
				var find func(*html.Node)
				find = func(c *html.Node) {
					if c.Type == html.ElementNode && c.Data == "input" && attr(c, "name") == "csrf" && attr(c, "value") != "" {
						hasCSRF = true
					}
					for x := c.FirstChild; x != nil; x = x.NextSibling {
						find(x)
					}
				}
				find(n)
				if method == "post" && !hasCSRF {
					t.Errorf("%s: a POST form without a CSRF field: action %q", name, attr(n, "action"))
				}
			}
			for _, a := range n.Attr {
				switch {
				case a.Key == "style" || strings.HasPrefix(a.Key, "on"):
					t.Errorf("%s: <%s %s=%q>: inline styles and handlers are not allowed by the CSP", name, n.Data, a.Key, a.Val)
				case a.Key == "href" || a.Key == "src" || a.Key == "action" || a.Key == "formaction" || a.Key == "srcset":
					if !strings.HasPrefix(a.Val, "/") || strings.HasPrefix(a.Val, "//") {
						t.Errorf("%s: <%s %s=%q> is not a path on this server", name, n.Data, a.Key, a.Val)
					}
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	for _, s := range []string{"http://", "https://"} {
		if strings.Contains(body, s) {
			t.Errorf("%s: the page mentions %s", name, s)
		}
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// TestWebEscapes holds a message whose subject, display names, sender and
// body try to inject markup; every page shows them as text.
func TestWebEscapes(t *testing.T) {
	e := newEnv(t)
	evil := `<script>alert("subject")</script><img src=x onerror=alert(1)>`
	id := e.hold(t, holdSpec{
		subject: evil,
		rcpts:   []string{"ann@one.example", "bob@two.example"},
		names:   []string{`"><script>alert("name")</script>`, `<b onmouseover=alert(2)>Bob</b>`},
		sender:  `"<svg/onload=alert(3)>"@shop.example`,
		body:    "<html><body><script>alert(4)</script><a href=\"javascript:alert(5)\">click</a></body></html>\r\n",
	})
	pages := pagesOf(t, e, id)
	b := e.browser(t)
	b.signIn("alice")
	pages["filtered-list"] = b.get("/quarantine?sender=" + url.QueryEscape(`"<svg/onload=alert(3)>"@shop.example`))
	for name, p := range pages {
		checkPage(t, name, p.body)
		for _, raw := range []string{"<script", "<img src=x", "<svg", "<b onmouseover"} {
			if strings.Contains(p.body, raw) {
				t.Errorf("%s: unescaped %q in the page", name, raw)
			}
		}
	}
	d := pages["detail-a"]
	mustContain(t, d, "detail", "&lt;script&gt;alert(&#34;subject&#34;)&lt;/script&gt;", "&lt;b onmouseover=alert(2)&gt;Bob&lt;/b&gt;",
		"&lt;svg/onload=alert(3)&gt;")
	mustContain(t, pages["list"], "list", "&lt;script&gt;alert(&#34;subject&#34;)")
}

// TestWebSessionOnAPI: the API accepts a signed-in browser's session, as
// via web, and wants the CSRF token in a header for anything that acts.
func TestWebSessionOnAPI(t *testing.T) {
	e := newEnv(t)
	id := e.hold(t, holdSpec{})
	b := e.browser(t)
	b.signIn("alice")
	p := b.get("/api/v1/quarantine")
	mustStatus(t, p, http.StatusOK, "API list with the session")
	mustContain(t, p, "API list", id)

	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/v1/quarantine/"+id+"/release", nil)
	mustStatus(t, b.do(req), http.StatusUnauthorized, "API release with the session but no CSRF header")
	req, _ = http.NewRequest(http.MethodPost, e.srv.URL+"/api/v1/quarantine/"+id+"/release", nil)
	req.Header.Set(web.CSRFHeader, "wrong")
	mustStatus(t, b.do(req), http.StatusUnauthorized, "API release with a wrong CSRF header")
	if s := e.state(t, id); s != store.HoldHeld {
		t.Fatalf("state %s", s)
	}
	req, _ = http.NewRequest(http.MethodPost, e.srv.URL+"/api/v1/quarantine/"+id+"/release", nil)
	req.Header.Set(web.CSRFHeader, b.csrf)
	mustStatus(t, b.do(req), http.StatusOK, "API release with the session and its CSRF token")
	if es := e.audit(t, id); len(es) != 1 || es[0].Actor != "alice" || !strings.Contains(es[0].Detail, "via web") {
		t.Errorf("audit: %+v", es)
	}
	// A dead session is a wrong credential, not an absent one.
	b.postCSRF("/quarantine/signout", nil)
	u, _ := url.Parse(e.srv.URL)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: web.SessionCookie, Value: strings.Repeat("B", 43), Path: "/"}})
	mustStatus(t, b.get("/api/v1/quarantine"), http.StatusUnauthorized, "API with a dead session")
}

// TestWebCrossOrigin: a browser's cross-site form post is refused before
// any page code runs (the admin listener's cross-origin protection), even
// with a valid session and token.
func TestWebCrossOrigin(t *testing.T) {
	e := newEnv(t)
	id := e.hold(t, holdSpec{})
	b := e.browser(t)
	b.signIn("alice")
	form := url.Values{"csrf": {b.csrf}, "confirm": {"yes"}}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/quarantine/m/"+id+"/release", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	mustStatus(t, b.do(req), http.StatusForbidden, "cross-site post")
	if s := e.state(t, id); s != store.HoldHeld {
		t.Fatalf("state %s after a cross-site post", s)
	}
}

// TestSignInThrottled: after five wrong passwords the sign-in form refuses
// even the right one (429, Retry-After) instead of checking it; before,
// every attempt cost a bcrypt and the right password worked at once.
func TestSignInThrottled(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	form := b.get("/quarantine/signin")
	tok := csrfField.FindStringSubmatch(form.body)[1]
	for i := 0; i < 5; i++ {
		p := b.post("/quarantine/signin", url.Values{"csrf": {tok}, "user": {"alice"}, "password": {"wrong"}})
		mustStatus(t, p, http.StatusUnauthorized, "wrong password")
	}
	p := b.post("/quarantine/signin", url.Values{"csrf": {tok}, "user": {"alice"}, "password": {password}})
	mustStatus(t, p, http.StatusTooManyRequests, "right password after five wrong ones")
	mustContain(t, p, "throttled sign-in", "Too many failed sign-ins")
	if p.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	if p.header.Get("Set-Cookie") != "" && strings.Contains(p.header.Get("Set-Cookie"), "bccguard_session=") {
		t.Error("a session was made")
	}
}
