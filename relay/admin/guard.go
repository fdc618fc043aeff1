package admin

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/store"
)

// Sign-in throttling by default (GuardOptions may change it): after
// DefaultFreeFailures failed attempts in a row for one user name or from
// one client address, each further failure makes that key wait
// DefaultFirstDelay, then twice as long each time, up to DefaultMaxDelay;
// while it waits, every attempt for it is refused at once (429) without a
// password check, the right password too. A success clears the user's and
// the address's count; a key with no failure for ForgetAfter starts afresh.
const (
	DefaultFreeFailures = 5
	DefaultFirstDelay   = time.Second
	DefaultMaxDelay     = 15 * time.Minute
	ForgetAfter         = time.Hour
	// maxKeys bounds each table: user names come from unauthenticated
	// requests. When full, keys that are not waiting are dropped first;
	// a new key that still does not fit is not tracked by name, and
	// its client address is.
	maxKeys = 10000
	// DefaultSlotWait is how long a password check waits for a free
	// bcrypt slot before the request is refused as busy.
	DefaultSlotWait = 3 * time.Second
)

// Methods of authentication, as the metric labels them.
const (
	MethodForm  = "form"  // the review pages' sign-in form
	MethodBasic = "basic" // HTTP Basic on the API
	MethodToken = "token" // a bearer token on the API
)

// ThrottledError is returned instead of checking a credential while its
// user name or client address must wait.
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed sign-ins: try again in %s", e.RetryAfter.Round(time.Second))
}

// Seconds is RetryAfter rounded up, for a Retry-After header.
func (e *ThrottledError) Seconds() int { return int(math.Ceil(e.RetryAfter.Seconds())) }

// ErrBusy is returned when every bcrypt slot stayed taken for the slot wait.
var ErrBusy = errors.New("too many sign-ins being checked at once: try again shortly")

// GuardOptions configure a Guard; every field is optional.
type GuardOptions struct {
	// Registerer gets bccguard_admin_auth_failures_total.
	Registerer prometheus.Registerer
	// Audit records a user name or address that started to be throttled
	// (the review audit log: the store's AddAudit).
	Audit func(ctx context.Context, e store.AuditEntry) error
	// Slots is the most password checks (bcrypt) at once; default half
	// the CPUs, at least one, so unauthenticated requests cannot take
	// the whole machine.
	Slots int
	// SlotWait, FreeFailures, FirstDelay and MaxDelay default to the
	// Default... constants.
	SlotWait     time.Duration
	FreeFailures int
	FirstDelay   time.Duration
	MaxDelay     time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Guard throttles failed admin sign-ins per user name and per client
// address, caps concurrent password checks, counts failures and audits
// throttling. One Guard serves the sign-in form, HTTP Basic and tokens, so
// switching between them does not reset a count.
type Guard struct {
	audit    func(ctx context.Context, e store.AuditEntry) error
	now      func() time.Time
	slotWait time.Duration
	free     int
	first    time.Duration
	maxDelay time.Duration
	slots    chan struct{}
	failures *prometheus.CounterVec

	mu    sync.Mutex
	users map[string]*failures
	addrs map[netip.Prefix]*failures
}

type failures struct {
	n     int       // failures in a row
	last  time.Time // of the last failure
	until time.Time // no attempt before this
}

// NewGuard returns a Guard.
func NewGuard(o GuardOptions) *Guard {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Slots <= 0 {
		o.Slots = max(1, runtime.NumCPU()/2)
	}
	if o.SlotWait <= 0 {
		o.SlotWait = DefaultSlotWait
	}
	if o.FreeFailures <= 0 {
		o.FreeFailures = DefaultFreeFailures
	}
	if o.FirstDelay <= 0 {
		o.FirstDelay = DefaultFirstDelay
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = DefaultMaxDelay
	}
	g := &Guard{
		audit: o.Audit, now: o.Now, slots: make(chan struct{}, o.Slots),
		slotWait: o.SlotWait, free: o.FreeFailures, first: o.FirstDelay, maxDelay: o.MaxDelay,
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_admin_auth_failures_total",
			Help: "Failed admin sign-ins (review pages and API), by method (form, basic, token) and reason (wrong credentials, throttled while waiting, busy: no password-check slot).",
		}, []string{"method", "reason"}),
		users: map[string]*failures{},
		addrs: map[netip.Prefix]*failures{},
	}
	for _, m := range []string{MethodForm, MethodBasic, MethodToken} {
		for _, r := range []string{"wrong", "throttled", "busy"} {
			g.failures.WithLabelValues(m, r)
		}
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(g.failures)
	}
	return g
}

// ClientPrefix is the key of a client address: the address itself, or its
// /64 for IPv6 (one host's addresses). The zero Prefix when there is none.
func ClientPrefix(r *http.Request) netip.Prefix {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// allow refuses an attempt while user (if not "") or from must wait.
func (g *Guard) allow(method, user string, from netip.Prefix) error {
	now := g.now()
	g.mu.Lock()
	wait := time.Duration(0)
	if f := g.users[user]; user != "" && f != nil {
		wait = max(wait, f.until.Sub(now))
	}
	if f := g.addrs[from]; f != nil {
		wait = max(wait, f.until.Sub(now))
	}
	g.mu.Unlock()
	if wait > 0 {
		g.failures.WithLabelValues(method, "throttled").Inc()
		return &ThrottledError{RetryAfter: wait}
	}
	return nil
}

// slot waits for a password-check slot; release gives it back.
func (g *Guard) slot(ctx context.Context, method string) (release func(), err error) {
	t := time.NewTimer(g.slotWait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return func() { <-g.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		g.failures.WithLabelValues(method, "busy").Inc()
		return nil, ErrBusy
	}
}

// failed records a failed attempt. known says whether user is a
// configured user: only then is the name kept in the audit log (people
// type passwords into the name field).
func (g *Guard) failed(ctx context.Context, method, user string, known bool, from netip.Prefix) {
	g.failures.WithLabelValues(method, "wrong").Inc()
	now := g.now()
	var started []store.AuditEntry
	g.mu.Lock()
	if user != "" {
		if f := entry(g.users, user, now); f != nil && g.fail(f, now) {
			target := "unknown user"
			if known {
				target = "user " + user
			}
			started = append(started, g.entryFor(method, target, f, now))
		}
	}
	if from.IsValid() {
		if f := entry(g.addrs, from, now); f != nil && g.fail(f, now) {
			started = append(started, g.entryFor(method, "client "+from.String(), f, now))
		}
	}
	g.mu.Unlock()
	if g.audit == nil {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, e := range started {
		_ = g.audit(actx, e)
	}
}

func (g *Guard) entryFor(method, target string, f *failures, now time.Time) store.AuditEntry {
	return store.AuditEntry{At: now, Actor: "(not signed in)", Action: "sign-in-throttled", Target: target,
		Outcome: "ok", Detail: fmt.Sprintf("via %s; %d failed sign-ins in a row; next attempt allowed in %s",
			method, f.n, f.until.Sub(now).Round(time.Second))}
}

// fail counts a failure of f and sets its wait. It reports whether the
// key has just reached the threshold (which is audited once, not at every
// further failure).
func (g *Guard) fail(f *failures, now time.Time) bool {
	f.n++
	f.last = now
	if f.n < g.free {
		return false
	}
	d := g.maxDelay
	if shift := f.n - g.free; shift < 30 {
		d = min(g.maxDelay, g.first<<shift)
	}
	f.until = now.Add(d)
	return f.n == g.free
}

// entry finds or makes the key's record; nil when the table is full of
// keys that are waiting.
func entry[K comparable](m map[K]*failures, k K, now time.Time) *failures {
	if f := m[k]; f != nil {
		if now.Sub(f.last) > ForgetAfter && !now.Before(f.until) {
			*f = failures{}
		}
		return f
	}
	if len(m) >= maxKeys {
		for x, f := range m {
			if !now.Before(f.until) {
				delete(m, x)
			}
		}
		if len(m) >= maxKeys {
			return nil
		}
	}
	f := &failures{}
	m[k] = f
	return f
}

// succeeded clears the user's and the address's counts.
func (g *Guard) succeeded(user string, from netip.Prefix) {
	g.mu.Lock()
	delete(g.users, user)
	delete(g.addrs, from)
	g.mu.Unlock()
}

// writeThrottled answers a throttled or busy request on the API (429 with
// Retry-After) and reports whether err was one.
func writeThrottled(w http.ResponseWriter, err error) bool {
	var te *ThrottledError
	switch {
	case errors.As(err, &te):
		w.Header().Set("Retry-After", strconv.Itoa(te.Seconds()))
	case errors.Is(err, ErrBusy):
		w.Header().Set("Retry-After", "5")
	default:
		return false
	}
	review.WriteError(w, &review.Error{Code: review.CodeTooManyRequests, Message: err.Error()})
	return true
}
