package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay/admin"
	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/review/reviewtest"
	"github.com/bccguard/bccguard/relay/review/web"
	"github.com/bccguard/bccguard/relay/store"
	"github.com/bccguard/bccguard/relay/store/embedded"
)

const password = "correct horse battery"

var ctx = context.Background()

// env is the real admin handler (API and pages) over a review.Service on
// an embedded store in a temporary folder, served by httptest.
type env struct {
	st    *embedded.Store
	svc   *review.Service
	pages *web.Pages
	clock *reviewtest.Clock
	srv   *httptest.Server
}

var (
	hashOnce sync.Once
	hash     string
)

func newEnv(t *testing.T, fourEyes ...string) *env {
	t.Helper()
	f := reviewtest.NewService(t, func(_ *reviewtest.Fixture, o *review.Options) {
		o.Config.FourEyesRules = fourEyes
		o.Config.DeleteNotice = "Your message was deleted by the mail policy review."
	}, reviewtest.SenderNotices(nil))
	st, reg := f.Store, f.Registry
	log := slog.New(slog.NewTextHandler(f.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := &env{st: st, svc: f.Service, clock: f.Clock}
	var err error
	hashOnce.Do(func() {
		h, _ := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		hash = string(h)
	})
	users, err := admin.NewBasicAuth([]config.AdminUser{
		{Name: "alice", PasswordHash: hash, Role: config.RoleReviewer},
		{Name: "rob", PasswordHash: hash, Role: config.RoleReviewer},
		{Name: "victor", PasswordHash: hash, Role: config.RoleViewer},
	})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := admin.NewTokenAuth(nil)
	if err != nil {
		t.Fatal(err)
	}
	authn := admin.NewAuth(tokens, users)
	e.pages, err = web.New(web.Options{Service: e.svc, Users: users, Stats: st.HoldStats, Logger: log, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	authn.Add(e.pages)
	h := admin.NewHandler(admin.Options{Gatherer: reg, Auth: authn, API: review.NewHandler(e.svc), Pages: e.pages})
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see them.
type browser struct {
	t    *testing.T
	e    *env
	c    *http.Client
	csrf string // the session's token, from the last page that had one
}

func (e *env) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, e: e, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// page is one answer.
type page struct {
	code   int
	header http.Header
	body   string
}

func (p page) location() string { return p.header.Get("Location") }

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := page{code: resp.StatusCode, header: resp.Header, body: string(body)}
	if m := csrfField.FindStringSubmatch(p.body); m != nil && !strings.Contains(req.URL.Path, "/signin") {
		b.csrf = m[1]
	}
	return p
}

func (b *browser) get(path string) page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.e.srv.URL+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// postCSRF posts form with the session's CSRF token.
func (b *browser) postCSRF(path string, form url.Values) page {
	b.t.Helper()
	if b.csrf == "" {
		b.get("/quarantine")
	}
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	f.Set("csrf", b.csrf)
	return b.post(path, f)
}

// signIn signs in through the form, as a browser does.
func (b *browser) signIn(user string) {
	b.t.Helper()
	p := b.trySignIn(user, password)
	if p.code != http.StatusSeeOther {
		b.t.Fatalf("sign in as %s: %d\n%s", user, p.code, p.body)
	}
	b.get("/quarantine") // picks up the session's CSRF token
}

func (b *browser) trySignIn(user, pass string) page {
	b.t.Helper()
	form := b.get("/quarantine/signin")
	m := csrfField.FindStringSubmatch(form.body)
	if m == nil {
		b.t.Fatalf("sign-in form has no CSRF field:\n%s", form.body)
	}
	return b.post("/quarantine/signin", url.Values{"csrf": {m[1]}, "user": {user}, "password": {pass}})
}

func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.e.srv.URL + "/")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func mustStatus(t *testing.T, p page, code int, what string) {
	t.Helper()
	if p.code != code {
		t.Fatalf("%s: status %d, want %d\n%s", what, p.code, code, p.body)
	}
}

func mustContain(t *testing.T, p page, what string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(p.body, w) {
			t.Errorf("%s: page does not contain %q\n%s", what, w, p.body)
		}
	}
}

// holdSpec describes a quarantined message to create.
type holdSpec struct {
	rule    string
	sender  string
	rcpts   []string
	names   []string // display names of the visible recipients
	subject string
	ip      string
	user    string
	age     time.Duration
	body    string
}

// hold commits a quarantined message as the relay does and returns its ID.
func (e *env) hold(t *testing.T, h holdSpec) string {
	t.Helper()
	if h.rule == "" {
		h.rule = "many-visible"
	}
	if h.sender == "" {
		h.sender = "news@shop.example"
	}
	if h.rcpts == nil {
		h.rcpts = []string{"ann@one.example", "bob@two.example", "cat@two.example"}
	}
	if h.subject == "" {
		h.subject = "Your survey"
	}
	if h.ip == "" {
		h.ip = "192.0.2.10"
	}
	if h.body == "" {
		h.body = "Hello,\r\nplease take our survey.\r\n"
	}
	recv := e.clock.Now().Add(-h.age)
	q := &store.Quarantine{Rule: h.rule, Reason: "visible.external >= 2", ExpiresAt: recv.Add(30 * 24 * time.Hour),
		Figures: map[string]int{"visible.count": len(h.rcpts), "visible.external": len(h.rcpts), "body.addresses": 0}}
	env := store.Envelope{Sender: h.sender}
	var to []string
	for i, r := range h.rcpts {
		env.Recipients = append(env.Recipients, store.Recipient{Addr: r})
		name := "Name of " + r
		if i < len(h.names) {
			name = h.names[i]
		}
		q.Visible = append(q.Visible, store.VisibleRecipient{Name: name, Address: r, Field: "to"})
		to = append(to, r)
	}
	raw := "Received: from crm ([192.0.2.10]) by relay.test (bccguard) with ESMTP id X; Mon, 2 Mar 2026 10:00:00 +0000\r\n" +
		"From: Shop <" + h.sender + ">\r\n" +
		"To: " + strings.Join(to, ", ") + "\r\n" +
		"Subject: " + h.subject + "\r\n" +
		"Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n" +
		"Message-ID: <survey-1@shop.example>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" + h.body
	return reviewtest.Hold(t, e.st, raw, store.Message{
		Envelope: env, Client: store.Client{Listener: "submission", IP: h.ip, User: h.user, Helo: "crm.shop.example"},
		ReceivedAt: recv, Quarantine: q,
	})
}

func (e *env) state(t *testing.T, id string) store.HoldState {
	t.Helper()
	return reviewtest.State(t, e.st, id)
}

// audit returns the audit entries about target, newest first.
func (e *env) audit(t *testing.T, target string) []store.AuditEntry {
	t.Helper()
	return reviewtest.Audit(t, e.st, target)
}

// deliveries returns the deliveries queued for message id.
func (e *env) deliveries(t *testing.T, id string) []store.Claimed {
	t.Helper()
	cs, err := e.st.Claim(ctx, "test", time.Now().Add(time.Hour), 1000, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Claimed
	for _, c := range cs {
		if c.Message.ID == id {
			out = append(out, c)
		}
	}
	return out
}
