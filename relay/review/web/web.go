// Package web serves the quarantine review pages at /quarantine on the
// admin listener: server-rendered HTML (html/template) for people, over the
// same review.Service as the JSON API and the CLI, so every action checks
// the same roles and writes the same audit entries (with Via "web").
//
// The pages have their own sign-in (admin users, bcrypt, a server-side
// session in memory behind an HttpOnly, SameSite=Strict cookie) and add the
// session to the admin listener's authenticators, so the API accepts it
// too. Every page is sent with a strict Content-Security-Policy: no
// scripts at all, styles and images only from the pages themselves; every
// form carries a per-session CSRF token (the sign-in form one bound to a
// pre-session cookie). Nothing needs JavaScript: confirmations are pages.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/bccguard/bccguard/relay/review"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Base is where the pages are mounted on the admin listener.
const Base = "/quarantine"

// ContentSecurityPolicy is sent with every page: no scripts, no inline
// styles, nothing from anywhere but the pages themselves, no framing.
const ContentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// maxForm bounds a form post: the largest is a release to a chosen subset
// of a large recipient list.
const maxForm = 1 << 20

// Verifier checks an admin user's password for a client, throttling
// failures (admin.BasicAuth does): see admin.BasicAuth.Check for the
// errors.
type Verifier interface {
	Check(ctx context.Context, method, user, pass string, from netip.Prefix) (*review.Actor, error)
}

// Options are what main wires into the pages.
type Options struct {
	Service *review.Service
	// Users signs people in.
	Users Verifier
	// Stats, if set, counts held messages by rule (the store's HoldStats)
	// for the list page.
	Stats func(context.Context) (map[string]int, time.Time, error)
	// Logger gets sign-ins, sign-in failures and errors.
	Logger *slog.Logger
	// SessionTTL is how long a sign-in lasts (default 8h).
	SessionTTL time.Duration
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
}

// Pages is the http.Handler of the review pages, and the session cookie
// Authenticator for the rest of the admin listener.
type Pages struct {
	svc      *review.Service
	users    Verifier
	stats    func(context.Context) (map[string]int, time.Time, error)
	log      *slog.Logger
	now      func() time.Time
	sessions *sessions
	key      []byte
	tmpl     map[string]*template.Template
	mux      *http.ServeMux
}

// New builds the pages.
func New(o Options) (*Pages, error) {
	if o.Service == nil || o.Users == nil || o.Logger == nil {
		return nil, errors.New("web: Service, Users and Logger are required")
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	p := &Pages{
		svc: o.Service, users: o.Users, stats: o.Stats, log: o.Logger, now: o.Now,
		sessions: newSessions(o.SessionTTL, o.Now),
		key:      []byte(randomToken()),
	}
	var err error
	if p.tmpl, err = parseTemplates(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Base+"/signin", p.signinForm)
	mux.HandleFunc("POST "+Base+"/signin", p.signin)
	files := http.StripPrefix(Base+"/static/", http.FileServerFS(static))
	mux.HandleFunc("GET "+Base+"/static/{file}", func(w http.ResponseWriter, r *http.Request) {
		files.ServeHTTP(w, r) // one file: no directory listing
	})

	mux.HandleFunc("POST "+Base+"/signout", p.authed(p.signout))
	mux.HandleFunc("GET "+Base, p.authed(p.list))
	mux.HandleFunc("GET "+Base+"/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Base, http.StatusSeeOther)
	})
	mux.HandleFunc("GET "+Base+"/m/{id}", p.authed(p.detail))
	mux.HandleFunc("GET "+Base+"/m/{id}/raw", p.authed(p.raw))
	mux.HandleFunc("POST "+Base+"/m/{id}/release", p.authed(p.release))
	mux.HandleFunc("POST "+Base+"/m/{id}/delete", p.authed(p.delete))
	mux.HandleFunc("GET "+Base+"/bulk", p.authed(p.bulkForm))
	mux.HandleFunc("POST "+Base+"/bulk", p.authed(p.bulk))
	mux.HandleFunc("GET "+Base+"/audit", p.authed(p.audit))
	mux.HandleFunc("GET "+Base+"/audit.jsonl", p.authed(p.auditExport))
	mux.HandleFunc(Base+"/", p.authed(func(w http.ResponseWriter, r *http.Request, c *call) {
		p.fail(w, r, c, http.StatusNotFound, "There is no page at "+r.URL.Path+".")
	}))
	p.mux = mux
	return p, nil
}

// ServeHTTP implements http.Handler: every answer, redirects and static
// files included, gets the security headers.
func (p *Pages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	p.mux.ServeHTTP(w, r)
}

// call is one authenticated request.
type call struct {
	id    string // session ID
	sess  *session
	actor review.Actor
}

// authed lets signed-in users through. Others are sent to the sign-in page
// (GET) or refused with 401 (anything else: a form post from a browser
// whose session ended must not be replayed after signing in). A request
// that changes something must carry the session's CSRF token (403).
func (p *Pages) authed(h func(http.ResponseWriter, *http.Request, *call)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ss := p.current(r)
		if ss == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, Base+"/signin?"+url.Values{"next": {r.URL.RequestURI()}}.Encode(), http.StatusSeeOther)
				return
			}
			p.render(w, r, http.StatusUnauthorized, "error", nil, errorPage{
				Title:   "Sign-in required",
				Message: "Your session has ended or you are not signed in. Sign in and try again.",
			})
			return
		}
		c := &call{id: id, sess: ss, actor: ss.actor}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				p.fail(w, r, c, http.StatusBadRequest, "The form could not be read.")
				return
			}
			if !tokenEqual(r.PostFormValue("csrf"), ss.csrf) {
				p.log.Warn("review page: form without a valid CSRF token refused",
					"path", r.URL.Path, "user", ss.actor.Name, "remote", r.RemoteAddr)
				p.fail(w, r, c, http.StatusForbidden,
					"This form was not sent from a page of this session (its security token is missing or wrong). Reload the page and try again.")
				return
			}
		}
		h(w, r, c)
	}
}

// requireReviewer answers 403 to actors who may not act, for the steps
// that do nothing yet (confirmation pages); the action itself is refused,
// and audited, by the Service.
func (p *Pages) requireReviewer(w http.ResponseWriter, r *http.Request, c *call) bool {
	if c.actor.CanReview() {
		return true
	}
	p.fail(w, r, c, http.StatusForbidden,
		fmt.Sprintf("%s may only look: releasing and deleting need the %s role.", c.actor.Name, review.RoleReviewer))
	return false
}

// serviceError answers with a Service error as a page.
func (p *Pages) serviceError(w http.ResponseWriter, r *http.Request, c *call, err error) {
	var e *review.Error
	msg := "Something went wrong; the details are in bccguard's log."
	if errors.As(err, &e) && e.Code != review.CodeInternal {
		msg = sentence(e.Message)
	} else {
		p.log.Error("review page failed", "path", r.URL.Path, "err", err)
	}
	p.fail(w, r, c, review.CodeOf(err).HTTPStatus(), msg)
}

// flashAndRedirect shows text on the next page and sends the browser there
// (post/redirect/get: reloading the result does not repeat the action).
func (p *Pages) flashAndRedirect(w http.ResponseWriter, r *http.Request, c *call, kind, text, to string) {
	p.sessions.setFlash(c.id, kind, text)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// sentence capitalises the first letter of a Service message and ends it
// with a full stop, for showing on a page.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	if c := s[0]; c >= 'a' && c <= 'z' {
		s = string(c-'a'+'A') + s[1:]
	}
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// detailURL is the detail page of message id.
func detailURL(id string) string { return Base + "/m/" + url.PathEscape(id) }

// localNext returns next, cleaned, if it is a path of the pages (so a
// sign-in link cannot send the browser anywhere else), Base otherwise.
func localNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || strings.HasPrefix(next, "//") ||
		strings.Contains(next, "\\") || !strings.HasPrefix(u.Path, "/") {
		return Base
	}
	// The path as the browser will resolve it: "/quarantine/../../evil"
	// is "/evil", whatever it looked like before (also with %2e%2e or
	// %2f, which url.Parse has decoded into Path).
	clean := path.Clean(u.Path)
	if clean != Base && !strings.HasPrefix(clean, Base+"/") ||
		strings.HasPrefix(clean, Base+"/signin") || strings.HasPrefix(clean, Base+"/static/") {
		return Base
	}
	return (&url.URL{Path: clean, RawQuery: u.RawQuery}).RequestURI()
}
