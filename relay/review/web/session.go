package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/bccguard/bccguard/relay/admin"
	"github.com/bccguard/bccguard/relay/review"
)

// Cookies the pages set.
const (
	// SessionCookie carries the session ID. Its path is / so that the API
	// (under /api/v1) accepts the session too.
	SessionCookie = "bccguard_session"
	// signinCookie carries the pre-session token that the sign-in form's
	// CSRF field is derived from.
	signinCookie = "bccguard_signin"
	// CSRFHeader is where an API client using the session cookie (a
	// script in a signed-in browser) must repeat the session's CSRF token
	// for a request that changes something.
	CSRFHeader = "X-CSRF-Token"
)

// DefaultSessionTTL is how long a sign-in lasts.
const DefaultSessionTTL = 8 * time.Hour

// maxSessions bounds the store. Sessions are only made by a successful
// sign-in, so this is far above any real use; reaching it drops the
// sessions closest to expiry rather than growing without end.
const maxSessions = 10000

// Sessions and CSRF tokens are written here rather than taken from
// gorilla/sessions and gorilla/csrf: what the pages need is a map of random
// IDs with an expiry and one token per session compared in constant time,
// smaller than those libraries' configuration, and the standard library's
// http.CrossOriginProtection (in front of the whole admin listener) already
// does the Origin/Sec-Fetch-Site checking gorilla/csrf would add.

// session is one signed-in browser. Only the SHA-256 of its ID is kept, so
// a memory dump or a timing side channel on the map lookup says nothing
// usable about live cookie values.
type session struct {
	actor   review.Actor
	csrf    string
	expires time.Time
	flash   *flash
}

// flash is a one-time message shown on the next page (after a redirect).
type flash struct {
	Kind string // ok, warn or error
	Text string
}

type sessions struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[[sha256.Size]byte]*session
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, now: now, m: map[[sha256.Size]byte]*session{}}
}

// randomToken returns 256 random bits, base64url without padding (43
// characters).
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func sessionKey(id string) [sha256.Size]byte { return sha256.Sum256([]byte(id)) }

// create starts a session for a and returns its ID.
func (s *sessions) create(a review.Actor) (string, *session) {
	id := randomToken()
	ss := &session{actor: a, csrf: randomToken(), expires: s.now().Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, x := range s.m {
		if !now.Before(x.expires) {
			delete(s.m, k)
		}
	}
	for len(s.m) >= maxSessions {
		var oldest [sha256.Size]byte
		first := true
		for k, x := range s.m {
			if first || x.expires.Before(s.m[oldest].expires) {
				oldest, first = k, false
			}
		}
		delete(s.m, oldest)
	}
	s.m[sessionKey(id)] = ss
	return id, ss
}

// get returns a copy of the live session with ID id, or nil.
func (s *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	k := sessionKey(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.m[k]
	if !ok {
		return nil
	}
	if !s.now().Before(ss.expires) {
		delete(s.m, k)
		return nil
	}
	c := *ss
	return &c
}

// takeFlash returns and clears the session's flash message.
func (s *sessions) takeFlash(id string) *flash {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.m[sessionKey(id)]
	if !ok {
		return nil
	}
	f := ss.flash
	ss.flash = nil
	return f
}

func (s *sessions) setFlash(id, kind, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss, ok := s.m[sessionKey(id)]; ok {
		ss.flash = &flash{Kind: kind, Text: text}
	}
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, sessionKey(id))
}

// tokenEqual compares two secrets in constant time (for equal lengths; the
// lengths of our tokens are public).
func tokenEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// signinToken is the sign-in form's CSRF field for a pre-session cookie
// value: an HMAC under a key only this process knows, so a cookie planted
// by someone else (e.g. from a sibling host) is useless without the form
// that this server rendered for it.
func (p *Pages) signinToken(cookie string) string {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte("bccguard sign-in\x00"))
	m.Write([]byte(cookie))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// current returns the request's session and its ID, or nil.
func (p *Pages) current(r *http.Request) (string, *session) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return "", nil
	}
	ss := p.sessions.get(c.Value)
	if ss == nil {
		return "", nil
	}
	return c.Value, ss
}

// Authenticate implements admin.Authenticator: the API (and anything else
// behind admin.Auth) accepts a signed-in browser's session, as the actor
// with Via "web". A request that changes something must also carry the
// session's CSRF token in the X-CSRF-Token header: the cookie alone is sent
// by the browser on its own, and an empty-bodied form post would otherwise
// be a valid API call. A session cookie that is unknown or expired is a
// wrong credential (ErrBadCredentials), not an absent one.
func (p *Pages) Authenticate(r *http.Request) (*review.Actor, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	ss := p.sessions.get(c.Value)
	if ss == nil {
		return nil, admin.ErrBadCredentials
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if !tokenEqual(r.Header.Get(CSRFHeader), ss.csrf) {
			return nil, admin.ErrBadCredentials
		}
	}
	a := ss.actor
	return &a, nil
}

var _ admin.Authenticator = (*Pages)(nil)

// setCookie sets a cookie the way every cookie of the pages is set:
// HttpOnly, SameSite=Strict, and Secure when the request came over TLS.
func setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}
