package e2e

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bccguard/bccguard/internal/smtptest"
	"github.com/bccguard/bccguard/tests/harness"
)

// The review side of issue 12: sign-in throttling, next= confinement and
// invisible characters in what reviewers are shown, against the real binary.

const reviewUser, reviewPass = "rita", "a long test passphrase"

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func startReviewRelay(t *testing.T) (*harness.Relay, *smtptest.Sink) {
	t.Helper()
	sink := harness.NewSink(t)
	r := harness.Start(t, `
policy:
  on_parse_error: quarantine
  rules:
    - {name: hold-all, when: "true", action: quarantine}
admin:
  listen: "{{addr "admin"}}"
  users:
    - {name: `+reviewUser+`, password_hash: "`+bcryptHash(t, reviewPass)+`", role: reviewer}
`, harness.WithUpstream(sink.Addr()))
	return r, sink
}

// webClient is a browser without a browser: cookies, no redirects followed.
type webClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newWebClient(t *testing.T, r *harness.Relay) *webClient {
	jar, _ := cookiejar.New(nil)
	return &webClient{t: t, base: "http://" + r.AdminAddr(), c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (w *webClient) do(req *http.Request) (*http.Response, string) {
	w.t.Helper()
	res, err := w.c.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func (w *webClient) get(path string) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodGet, w.base+path, nil)
	return w.do(req)
}

// signIn posts the sign-in form (fetching it first for its CSRF token).
func (w *webClient) signIn(user, pass, next string) *http.Response {
	w.t.Helper()
	_, form := w.get("/quarantine/signin")
	m := csrfInput.FindStringSubmatch(form)
	if m == nil {
		w.t.Fatalf("no CSRF field in the sign-in form:\n%s", form)
	}
	v := url.Values{"csrf": {m[1]}, "user": {user}, "password": {pass}, "next": {next}}
	req, _ := http.NewRequest(http.MethodPost, w.base+"/quarantine/signin", strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, _ := w.do(req)
	return res
}

func metricLine(t *testing.T, r *harness.Relay, prefix string) float64 {
	t.Helper()
	res, err := http.Get("http://" + r.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, prefix+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	t.Fatalf("no metric %s in /metrics", prefix)
	return 0
}

// TestSignInThrottling: 20 wrong passwords on the sign-in form, then the
// right one, which is refused (429) until the wait is over; HTTP Basic on
// the API from the same address is refused too. Failures are counted and
// audited. Before the fix the 20 attempts each ran bcrypt and the right
// password worked at once after them.
func TestSignInThrottling(t *testing.T) {
	t.Parallel()
	r, _ := startReviewRelay(t)
	w := newWebClient(t, r)
	for i := 0; i < 20; i++ {
		if res := w.signIn(reviewUser, "wrong guess", ""); res.StatusCode != http.StatusUnauthorized && res.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("wrong password %d: %d", i+1, res.StatusCode)
		}
	}
	res := w.signIn(reviewUser, reviewPass, "")
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("the right password after 20 wrong ones: %d (Retry-After %q), want 429 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+r.AdminAddr()+"/api/v1/quarantine", nil)
	req.SetBasicAuth(reviewUser, reviewPass)
	if res, _ := w.do(req); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("HTTP Basic from the same address meanwhile: %d, want 429", res.StatusCode)
	}
	if v := metricLine(t, r, `bccguard_admin_auth_failures_total{method="form",reason="wrong"}`); v != 5 {
		t.Errorf("form failures counted as wrong: %v, want 5 (the rest waited)", v)
	}
	if v := metricLine(t, r, `bccguard_admin_auth_failures_total{method="form",reason="throttled"}`); v < 16 {
		t.Errorf("form attempts refused while waiting: %v, want at least 16", v)
	}
	audit := r.MustCLI("quarantine", "audit", "--json", "--data-dir", r.DataDir())
	if !strings.Contains(audit, "sign-in-throttled") || !strings.Contains(audit, "user "+reviewUser) {
		t.Errorf("the audit log has no sign-in-throttled entry for %s:\n%s", reviewUser, audit)
	}
	// Once the wait is over, the right password works (and clears the count).
	harness.Eventually(t, 30*time.Second, "the right password to work after the wait", func() bool {
		return w.signIn(reviewUser, reviewPass, "").StatusCode == http.StatusSeeOther
	})
}

// TestSignInNextConfined: next=/quarantine/../../evil used to send the
// browser to /evil after signing in; now it stays on the review pages.
func TestSignInNextConfined(t *testing.T) {
	t.Parallel()
	r, _ := startReviewRelay(t)
	for _, next := range []string{"/quarantine/../../evil", "/quarantine/%2e%2e/%2e%2e/evil", "/quarantine/m/../../api/v1/quarantine"} {
		w := newWebClient(t, r)
		res := w.signIn(reviewUser, reviewPass, next)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/quarantine" {
			t.Errorf("next=%s: %d to %q, want 303 to /quarantine", next, res.StatusCode, res.Header.Get("Location"))
		}
	}
	w := newWebClient(t, r)
	if res := w.signIn(reviewUser, reviewPass, "/quarantine/audit?actor=x"); res.Header.Get("Location") != "/quarantine/audit?actor=x" {
		t.Errorf("a page of the review pages as next: redirect to %q", res.Header.Get("Location"))
	}
}

// TestReviewNeutralizesInvisibleCharacters: a display name with a
// right-to-left override (U+202E) is shown with the override made visible,
// on the review page and in `bccguard quarantine show`, never as the
// character itself. Before the fix the override reached both.
func TestReviewNeutralizesInvisibleCharacters(t *testing.T) {
	t.Parallel()
	r, _ := startReviewRelay(t)
	// "Ann \u202Etxt.exe" encoded, so the header itself is plain ASCII.
	msg := harness.CRLF("From: crm@brand.example\nTo: =?UTF-8?Q?Ann_=E2=80=AEexe=2Etxt?= <ann@example.com>, Bob\u200b <bob@example.net>\nSubject: invoice\n\nx\n")
	c := harness.DialRaw(t, r.Addr(), "")
	c.Expect("EHLO "+harness.ClientHelo, 250, "")
	rep := transact(t, c, "crm@brand.example", []string{"ann@example.com", "bob@example.net"}, string(msg), false)
	m := regexp.MustCompile(`held for review as (\S+)`).FindStringSubmatch(rep.Text())
	if m == nil {
		t.Fatalf("end of data: %s, want held for review", rep)
	}
	id := m[1]
	leaks := func(where, s string) {
		t.Helper()
		for _, bad := range []string{"\u202e", "&#8238;", `\u202e`, "\u200b", `\u200b`, "&#8203;"} {
			if strings.Contains(strings.ToLower(s), strings.ToLower(bad)) {
				t.Errorf("%s shows the invisible character %q", where, bad)
			}
		}
		if !strings.Contains(s, "[U+202E]") {
			t.Errorf("%s does not show the override as [U+202E]:\n%s", where, s)
		}
	}
	w := newWebClient(t, r)
	if res := w.signIn(reviewUser, reviewPass, ""); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", res.StatusCode)
	}
	res, page := w.get("/quarantine/m/" + url.PathEscape(id))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("detail page: %d", res.StatusCode)
	}
	leaks("the review page", html.UnescapeString(page))
	leaks("quarantine show", r.MustCLI("quarantine", "show", id, "--data-dir", r.DataDir()))
	leaks("quarantine show --json", r.MustCLI("quarantine", "show", id, "--json", "--data-dir", r.DataDir()))
}
