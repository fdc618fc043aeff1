package review_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/internal/syncbuf"
	"github.com/bccguard/bccguard/relay/admin"
	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/review/reviewtest"
	"github.com/bccguard/bccguard/relay/store"
	"github.com/bccguard/bccguard/relay/store/embedded"
)

// The test's credentials: two reviewer tokens (two people, for the
// four-eyes rule), a viewer token, and Basic users of both roles.
const (
	tokReviewerA = "token-for-rita"
	tokReviewerB = "token-for-rob"
	tokViewer    = "token-for-vera"
	userPass     = "correct horse"
)

var ctx = context.Background()

// env is a Service over a real embedded store in a temp folder, behind the
// real admin handler.
type env struct {
	st    *embedded.Store
	svc   *review.Service
	reg   *prometheus.Registry
	clock *reviewtest.Clock
	wakes atomic.Int32
	// notifyWakes counts the Notifier's wake-ups (notices committed).
	notifyWakes atomic.Int32
	handler     http.Handler
	logs        *syncbuf.Buffer
}

func fourEyes(rules ...string) reviewtest.Option {
	return func(_ *reviewtest.Fixture, o *review.Options) { o.Config.FourEyesRules = rules }
}

func expiryAction(a string) reviewtest.Option {
	return func(_ *reviewtest.Fixture, o *review.Options) { o.Config.ExpiryAction = config.ExpiryAction(a) }
}

func expiryEvery(d time.Duration) reviewtest.Option {
	return func(_ *reviewtest.Fixture, o *review.Options) { o.ExpiryInterval = d }
}

var (
	hashOnce sync.Once
	userHash string
)

func newEnv(t *testing.T, opts ...reviewtest.Option) *env {
	t.Helper()
	e := &env{}
	// The notifier sees the quarantine settings before the test's options
	// change them.
	base := func(_ *reviewtest.Fixture, o *review.Options) {
		o.Wake = func() { e.wakes.Add(1) }
		o.Config.DeleteNotice = "Your message was deleted by the mail policy review."
	}
	f := reviewtest.NewService(t, append([]reviewtest.Option{base, reviewtest.SenderNotices(func() { e.notifyWakes.Add(1) })}, opts...)...)
	e.st, e.svc, e.reg, e.clock, e.logs = f.Store, f.Service, f.Registry, f.Clock, f.Logs
	hashOnce.Do(func() {
		h, _ := bcrypt.GenerateFromPassword([]byte(userPass), bcrypt.MinCost)
		userHash = string(h)
	})
	// The access tests send many wrong credentials on purpose: a guard
	// that never throttles keeps them about access (guard_test.go in
	// relay/admin tests the throttling).
	authn, err := admin.AuthFromConfig(config.Admin{
		Tokens: []config.AdminToken{
			{Name: "rita", SHA256: sum(tokReviewerA), Role: config.RoleReviewer},
			{Name: "rob", SHA256: sum(tokReviewerB), Role: config.RoleReviewer},
			{Name: "vera", SHA256: sum(tokViewer), Role: config.RoleViewer},
		},
		Users: []config.AdminUser{
			{Name: "alice", PasswordHash: userHash, Role: config.RoleReviewer},
			{Name: "victor", PasswordHash: userHash, Role: config.RoleViewer},
		},
	}, admin.NewGuard(admin.GuardOptions{FreeFailures: 1 << 20}))
	if err != nil {
		t.Fatal(err)
	}
	e.handler = admin.NewHandler(admin.Options{Gatherer: e.reg, Auth: authn, API: review.NewHandler(e.svc)})
	return e
}

// outbox lists the notifications in the store.
func (e *env) outbox(t *testing.T) []store.Notification {
	t.Helper()
	ns, err := e.st.Notifications(ctx, store.NotificationFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func sum(tok string) string {
	s := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(s[:])
}

// Actors for calling the Service directly.
var (
	rita   = review.Actor{Name: "rita", Role: review.RoleReviewer, Via: review.ViaAPI}
	rob    = review.Actor{Name: "rob", Role: review.RoleReviewer, Via: review.ViaAPI}
	vera   = review.Actor{Name: "vera", Role: review.RoleViewer, Via: review.ViaAPI}
	nobody = review.Actor{}
)

// holdSpec describes a held message to create.
type holdSpec struct {
	rule       string
	sender     string
	nullSender bool
	rcpts      []string
	ip         string
	user       string
	age        time.Duration // received this long before the clock's now
	expires    time.Duration // after receipt; 0: 30 days
	raw        string        // the message; "" for a default one naming rcpts in To:
}

// hold commits a quarantined message as the relay does and returns its ID.
func (e *env) hold(t *testing.T, h holdSpec) string {
	t.Helper()
	if h.rule == "" {
		h.rule = "many-visible"
	}
	if h.sender == "" && !h.nullSender {
		h.sender = "news@shop.example"
	}
	if h.rcpts == nil {
		h.rcpts = []string{"ann@one.example", "bob@two.example", "cat@two.example"}
	}
	if h.ip == "" {
		h.ip = "192.0.2.10"
	}
	if h.expires == 0 {
		h.expires = 30 * 24 * time.Hour
	}
	if h.raw == "" {
		h.raw = defaultMessage(h.rcpts)
	}
	recv := e.clock.Now().Add(-h.age)
	q := &store.Quarantine{Rule: h.rule, Reason: "visible.external >= 2", ExpiresAt: recv.Add(h.expires),
		Figures: map[string]int{"visible.count": len(h.rcpts)}}
	env := store.Envelope{Sender: h.sender}
	for _, r := range h.rcpts {
		env.Recipients = append(env.Recipients, store.Recipient{Addr: r})
		q.Visible = append(q.Visible, store.VisibleRecipient{Name: "Name of " + r, Address: r, Field: "to"})
	}
	return reviewtest.Hold(t, e.st, h.raw, store.Message{
		Envelope: env, Client: store.Client{Listener: "smtp", IP: h.ip, User: h.user},
		ReceivedAt: recv, Quarantine: q,
	})
}

func defaultMessage(rcpts []string) string {
	return "Received: from crm ([192.0.2.10])\r\n\tby relay.test (bccguard) with ESMTP id X;\r\n\tMon, 2 Mar 2026 10:00:00 +0000\r\n" +
		"From: Shop <news@shop.example>\r\n" +
		"To: " + strings.Join(rcpts, ", ") + "\r\n" +
		"Subject: Your survey =?utf-8?q?=C3=A9t=C3=A9?=\r\n" +
		"Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n" +
		"Message-ID: <survey-1@shop.example>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" +
		"Hello,\r\nplease take our survey.\r\n"
}

// claimAll returns every delivery due within the next hour, by message.
func (e *env) claimAll(t *testing.T) []store.Claimed {
	t.Helper()
	cs, err := e.st.Claim(ctx, "test", time.Now().Add(time.Hour), 1000, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// audit returns the audit entries about target, newest first.
func (e *env) audit(t *testing.T, target string) []store.AuditEntry {
	t.Helper()
	return reviewtest.Audit(t, e.st, target)
}

func (e *env) state(t *testing.T, id string) store.HoldState {
	t.Helper()
	return reviewtest.State(t, e.st, id)
}

// cred sets one kind of credential on a request.
type cred func(*http.Request)

func bearer(tok string) cred {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func basic(user, pass string) cred {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

func noCred(*http.Request) {}

// call sends one API request through the admin handler.
func (e *env) call(t *testing.T, c cred, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := reviewtest.APIRequest(method, path, body)
	c(r) // after: a test may override the Content-Type
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	return w
}

// errCode returns the API error code of an answer ("" if it is no error).
func errCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var b review.ErrorBody
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Error == nil {
		return ""
	}
	return string(b.Error.Code)
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, w.Body.String(), err)
	}
	return v
}

func mustCode(t *testing.T, w *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if w.Code != status || errCode(t, w) != code {
		t.Fatalf("got %d %q, want %d %q; body %s", w.Code, errCode(t, w), status, code, w.Body.String())
	}
}

func addrs(rs []store.Recipient) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Addr)
	}
	return strings.Join(s, ",")
}
