package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/bccguard/bccguard/relay/admin"
	"github.com/bccguard/bccguard/relay/review"
)

type signinPage struct {
	Token   string // the form's CSRF field
	Next    string
	User    string
	Error   string
	Notice  string
	Expired bool
}

func (signinPage) title() string { return "Sign in" }

// signinForm shows the sign-in form. The form's CSRF field is bound to a
// pre-session cookie: a sign-in posted from another site (login CSRF,
// which would sign the victim's browser in as the attacker) has neither.
func (p *Pages) signinForm(w http.ResponseWriter, r *http.Request) {
	next := localNext(r.URL.Query().Get("next"))
	if _, ss := p.current(r); ss != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	pg := signinPage{Next: next}
	if r.URL.Query().Get("signed_out") != "" {
		pg.Notice = "You are signed out."
	}
	pg.Token = p.signinCookie(w, r)
	p.render(w, r, http.StatusOK, "signin", nil, pg)
}

// signinCookie returns the pre-session form token for the request's
// sign-in cookie, setting a new cookie if it has none. An existing cookie
// is kept, so that two open sign-in tabs both work.
func (p *Pages) signinCookie(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(signinCookie); err == nil && len(c.Value) == 43 {
		return p.signinToken(c.Value)
	}
	v := randomToken()
	setCookie(w, r, signinCookie, v, Base+"/signin", 3600)
	return p.signinToken(v)
}

func (p *Pages) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		p.render(w, r, http.StatusBadRequest, "error", nil, errorPage{Title: "Bad request", Message: "The form could not be read.", Back: Base + "/signin"})
		return
	}
	next := localNext(r.PostFormValue("next"))
	c, err := r.Cookie(signinCookie)
	if err != nil || !tokenEqual(r.PostFormValue("csrf"), p.signinToken(c.Value)) {
		p.log.Warn("sign-in form without a valid CSRF token refused", "remote", r.RemoteAddr)
		pg := signinPage{Next: next, Expired: true,
			Error: "The sign-in form had expired or was not sent from this site. Please sign in again."}
		pg.Token = p.signinCookie(w, r)
		p.render(w, r, http.StatusForbidden, "signin", nil, pg)
		return
	}
	user, pass := r.PostFormValue("user"), r.PostFormValue("password")
	var a *review.Actor
	err = admin.ErrBadCredentials
	if user != "" && pass != "" && len(user) <= 200 && len(pass) <= 1024 {
		a, err = p.users.Check(r.Context(), admin.MethodForm, user, pass, admin.ClientPrefix(r))
	}
	var te *admin.ThrottledError
	if errors.As(err, &te) || errors.Is(err, admin.ErrBusy) {
		wait := "a few seconds"
		if te != nil {
			w.Header().Set("Retry-After", strconv.Itoa(te.Seconds()))
			wait = te.RetryAfter.Round(time.Second).String()
		} else {
			w.Header().Set("Retry-After", "5")
		}
		p.log.Warn("review page sign-in refused: throttled", "remote", r.RemoteAddr, "err", err)
		pg := signinPage{Next: next, User: user, Token: p.signinToken(c.Value),
			Error: "Too many failed sign-ins for this user or from this address. Please wait " + wait + " and try again."}
		p.render(w, r, http.StatusTooManyRequests, "signin", nil, pg)
		return
	}
	if a == nil || !a.CanView() {
		// The typed name is not logged: people paste passwords into it.
		p.log.Warn("review page sign-in failed", "remote", r.RemoteAddr)
		pg := signinPage{Next: next, User: user, Token: p.signinToken(c.Value),
			Error: "Wrong user name or password."}
		p.render(w, r, http.StatusUnauthorized, "signin", nil, pg)
		return
	}
	// A new session ID on every sign-in: nothing set before it (session
	// fixation) survives.
	actor := review.Actor{Name: a.Name, Role: a.Role, Via: review.ViaWeb}
	id, _ := p.sessions.create(actor)
	setCookie(w, r, SessionCookie, id, "/", int(p.sessions.ttl.Seconds()))
	setCookie(w, r, signinCookie, "", Base+"/signin", -1)
	p.log.Info("review page sign-in", "user", actor.Name, "role", actor.Role, "remote", r.RemoteAddr)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (p *Pages) signout(w http.ResponseWriter, r *http.Request, c *call) {
	p.sessions.remove(c.id)
	setCookie(w, r, SessionCookie, "", "/", -1)
	p.log.Info("review page sign-out", "user", c.actor.Name, "remote", r.RemoteAddr)
	http.Redirect(w, r, Base+"/signin?"+url.Values{"signed_out": {"1"}}.Encode(), http.StatusSeeOther)
}
