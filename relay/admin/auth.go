package admin

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay/review"
)

// ErrBadCredentials is what an Authenticator returns for a request that
// carries its kind of credential, but a wrong one.
var ErrBadCredentials = errors.New("admin: invalid credentials")

// Authenticator identifies the caller of a request from one kind of
// credential: a bearer token, HTTP Basic, or (added by the review pages) a
// session cookie.
type Authenticator interface {
	// Authenticate returns the caller; nil and no error when the request
	// carries no credential of this kind; ErrBadCredentials (or another
	// error) when it carries one that does not verify.
	Authenticate(r *http.Request) (*review.Actor, error)
}

// Auth tries its Authenticators in order. The first that recognises a
// credential decides: a wrong credential is never passed over in favour of
// another one.
type Auth struct {
	authns []Authenticator
}

// NewAuth returns an Auth over authns.
func NewAuth(authns ...Authenticator) *Auth { return &Auth{authns: authns} }

// Add appends an Authenticator (the review pages add their session
// cookie). Call it before the handler serves.
func (a *Auth) Add(x Authenticator) { a.authns = append(a.authns, x) }

// Identify returns the caller of r: nil and no error when r carries no
// credentials at all.
func (a *Auth) Identify(r *http.Request) (*review.Actor, error) {
	if a == nil {
		return nil, nil
	}
	for _, x := range a.authns {
		act, err := x.Authenticate(r)
		if err != nil || act != nil {
			return act, err
		}
	}
	return nil, nil
}

// Require lets through only requests whose caller Identify recognises,
// with the caller in the request's context (review.WithActor). Others get
// 401 with a WWW-Authenticate challenge. Roles are checked further in.
func (a *Auth) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		act, err := a.Identify(r)
		if writeThrottled(w, err) {
			return
		}
		if err != nil || act == nil {
			msg := "credentials required: Authorization: Bearer TOKEN, or HTTP Basic with an admin user"
			if err != nil {
				msg = "invalid credentials"
			}
			// Both schemes the API accepts are announced.
			w.Header().Add("WWW-Authenticate", `Bearer realm="bccguard"`)
			w.Header().Add("WWW-Authenticate", `Basic realm="bccguard", charset="UTF-8"`)
			review.WriteError(w, &review.Error{Code: review.CodeUnauthorized, Message: msg})
			return
		}
		next.ServeHTTP(w, r.WithContext(review.WithActor(r.Context(), *act)))
	})
}

// AuthFromConfig builds the bearer token and HTTP Basic authenticators
// of the admin section, throttled by g (nil: a Guard of their own with the
// defaults).
func AuthFromConfig(c config.Admin, g *Guard) (*Auth, error) {
	t, err := NewTokenAuth(c.Tokens)
	if err != nil {
		return nil, err
	}
	b, err := NewBasicAuth(c.Users)
	if err != nil {
		return nil, err
	}
	if g != nil {
		t.SetGuard(g)
		b.SetGuard(g)
	}
	return NewAuth(t, b), nil
}

// TokenAuth checks "Authorization: Bearer TOKEN" against the SHA-256
// hashes in the config. Failures are throttled per client address by its
// Guard.
type TokenAuth struct {
	tokens []token
	guard  *Guard
}

type token struct {
	sum        [sha256.Size]byte
	name, role string
}

// NewTokenAuth returns a TokenAuth for the configured tokens.
func NewTokenAuth(ts []config.AdminToken) (*TokenAuth, error) {
	out := &TokenAuth{guard: NewGuard(GuardOptions{})}
	for _, t := range ts {
		b, err := hex.DecodeString(strings.TrimSpace(t.SHA256))
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("admin token %q: sha256 must be 64 hex digits", t.Name)
		}
		tk := token{name: t.Name, role: t.Role}
		copy(tk.sum[:], b)
		out.tokens = append(out.tokens, tk)
	}
	return out, nil
}

// Authenticate implements Authenticator.
func (t *TokenAuth) Authenticate(r *http.Request) (*review.Actor, error) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, nil
	}
	from := ClientPrefix(r)
	if err := t.guard.allow(MethodToken, "", from); err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	// Every configured token is compared, in constant time, so the time
	// taken says nothing about which one (if any) nearly matched.
	match := -1
	for i := range t.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.tokens[i].sum[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		t.guard.failed(r.Context(), MethodToken, "", false, from)
		return nil, ErrBadCredentials
	}
	t.guard.succeeded("", from)
	return &review.Actor{Name: t.tokens[match].name, Role: t.tokens[match].role, Via: review.ViaAPI}, nil
}

// basicCacheTTL is how long a verified user/password pair is trusted
// without bcrypt again: an API client sends Basic credentials on every
// request, and bcrypt at cost 10+ would make each one take 50-100 ms of CPU.
const basicCacheTTL = 2 * time.Minute

// maxBasicCache bounds the cache; it only ever holds verified pairs.
const maxBasicCache = 1024

// BasicAuth checks HTTP Basic credentials against the admin users' bcrypt
// hashes. The review pages' sign-in form uses Check. Failures are
// throttled per user name and client address by its Guard, which also caps
// how many bcrypt checks run at once.
type BasicAuth struct {
	guard  *Guard
	users  map[string]basicUser
	dummy  []byte // compared for unknown users, so they cost as much as known ones
	macKey []byte // keys the cache, so it holds no password or plain hash of one
	now    func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]cached
}

type basicUser struct {
	hash []byte
	role string
}

type cached struct {
	name, role string
	until      time.Time
}

// NewBasicAuth returns a BasicAuth for the configured users.
func NewBasicAuth(us []config.AdminUser) (*BasicAuth, error) {
	b := &BasicAuth{guard: NewGuard(GuardOptions{}), users: map[string]basicUser{}, cache: map[[sha256.Size]byte]cached{}, now: time.Now}
	// The dummy costs what the real hashes cost, no more: it is there to
	// make unknown users as slow as known ones.
	cost := bcrypt.MinCost
	for _, u := range us {
		c, err := bcrypt.Cost([]byte(u.PasswordHash))
		if err != nil {
			return nil, fmt.Errorf("admin user %q: password_hash is not a bcrypt hash", u.Name)
		}
		cost = max(cost, c)
		b.users[u.Name] = basicUser{hash: []byte(u.PasswordHash), role: u.Role}
	}
	var err error
	if b.dummy, err = bcrypt.GenerateFromPassword([]byte("bccguard-dummy"), cost); err != nil {
		return nil, err
	}
	b.macKey = make([]byte, 32)
	_, _ = rand.Read(b.macKey)
	return b, nil
}

// Authenticate implements Authenticator.
func (b *BasicAuth) Authenticate(r *http.Request) (*review.Actor, error) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return nil, nil
	}
	return b.Check(r.Context(), MethodBasic, user, pass, ClientPrefix(r))
}

// Check checks a user's password for a client at from, signing in by
// method, and returns the actor (Via api; the sign-in form sets its own).
// It fails with ErrBadCredentials, with a *ThrottledError while the user
// name or the address must wait after failures (the password is then not
// checked at all), or with ErrBusy when no bcrypt slot came free.
func (b *BasicAuth) Check(ctx context.Context, method, user, pass string, from netip.Prefix) (*review.Actor, error) {
	k := b.key(user, pass)
	if a := b.cached(k); a != nil {
		// Verified recently: no bcrypt, and no waiting either, so that a
		// stranger's failures cannot lock out a script that knows the
		// password.
		b.guard.succeeded(user, from)
		return a, nil
	}
	if err := b.guard.allow(method, user, from); err != nil {
		return nil, err
	}
	release, err := b.guard.slot(ctx, method)
	if err != nil {
		return nil, err
	}
	a := b.compare(k, user, pass)
	release()
	if a == nil {
		_, known := b.users[user]
		b.guard.failed(ctx, method, user, known, from)
		return nil, ErrBadCredentials
	}
	b.guard.succeeded(user, from)
	return a, nil
}

// Verify checks a user's password, without throttling: for tests and
// callers that throttle themselves. The admin listener uses Check.
func (b *BasicAuth) Verify(user, pass string) *review.Actor {
	k := b.key(user, pass)
	if a := b.cached(k); a != nil {
		return a
	}
	return b.compare(k, user, pass)
}

// key is the cache key of a user/password pair.
func (b *BasicAuth) key(user, pass string) [sha256.Size]byte {
	mac := hmac.New(sha256.New, b.macKey)
	// The user's length goes first so no user/password split of the same
	// bytes shares a key.
	mac.Write(binary.BigEndian.AppendUint32(nil, uint32(len(user))))
	mac.Write([]byte(user))
	mac.Write([]byte(pass))
	var k [sha256.Size]byte
	copy(k[:], mac.Sum(nil))
	return k
}

// cached is the actor of a pair verified within basicCacheTTL, or nil.
func (b *BasicAuth) cached(k [sha256.Size]byte) *review.Actor {
	b.mu.Lock()
	c, hit := b.cache[k]
	b.mu.Unlock()
	if hit && b.now().Before(c.until) {
		return &review.Actor{Name: c.name, Role: c.role, Via: review.ViaAPI}
	}
	return nil
}

// compare runs bcrypt (against a dummy hash for unknown users, so they
// cost as much) and caches a success.
func (b *BasicAuth) compare(k [sha256.Size]byte, user, pass string) *review.Actor {
	u, known := b.users[user]
	hash := u.hash
	if !known {
		hash = b.dummy
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil || !known {
		return nil
	}
	now := b.now()
	b.mu.Lock()
	if len(b.cache) >= maxBasicCache {
		for x, e := range b.cache {
			if !now.Before(e.until) {
				delete(b.cache, x)
			}
		}
		if len(b.cache) >= maxBasicCache {
			clear(b.cache)
		}
	}
	b.cache[k] = cached{name: user, role: u.role, until: now.Add(basicCacheTTL)}
	b.mu.Unlock()
	return &review.Actor{Name: user, Role: u.role, Via: review.ViaAPI}
}

// SetGuard makes b throttle with g (shared with the token check and the
// sign-in form, so switching between them resets nothing).
func (b *BasicAuth) SetGuard(g *Guard) { b.guard = g }

// SetGuard makes t throttle with g.
func (t *TokenAuth) SetGuard(g *Guard) { t.guard = g }
