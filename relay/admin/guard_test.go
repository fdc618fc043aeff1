package admin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay/store"
)

// guarded is a BasicAuth and a TokenAuth sharing one Guard on a clock the
// test moves, with the audit entries it writes.
type guarded struct {
	basic *BasicAuth
	token *TokenAuth
	guard *Guard
	reg   *prometheus.Registry
	now   time.Time

	mu    sync.Mutex
	audit []store.AuditEntry
}

func newGuarded(t *testing.T) *guarded {
	t.Helper()
	g := &guarded{reg: prometheus.NewRegistry(), now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	clock := func() time.Time { return g.now }
	g.guard = NewGuard(GuardOptions{Registerer: g.reg, Now: clock, SlotWait: 50 * time.Millisecond,
		Audit: func(_ context.Context, e store.AuditEntry) error {
			g.mu.Lock()
			g.audit = append(g.audit, e)
			g.mu.Unlock()
			return nil
		}})
	var err error
	g.basic, err = NewBasicAuth([]config.AdminUser{{Name: "alice", PasswordHash: hash(t, "right"), Role: config.RoleReviewer}})
	if err != nil {
		t.Fatal(err)
	}
	g.basic.now = clock
	g.basic.SetGuard(g.guard)
	g.token, err = NewTokenAuth(nil)
	if err != nil {
		t.Fatal(err)
	}
	g.token.SetGuard(g.guard)
	return g
}

func ip(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func (g *guarded) check(user, pass, from string) error {
	_, err := g.basic.Check(context.Background(), MethodForm, user, pass, ip(from))
	return err
}

func (g *guarded) failures(method, reason string) float64 {
	return testutil.ToFloat64(g.guard.failures.WithLabelValues(method, reason))
}

// TestGuardBacksOffAndRefusesEvenTheRightPassword is the finding: 20 wrong
// passwords used to take 1.8 s, and the right one worked at once after
// them.
func TestGuardBacksOffAndRefusesEvenTheRightPassword(t *testing.T) {
	g := newGuarded(t)
	for i := 0; i < DefaultFreeFailures; i++ {
		if err := g.check("alice", "wrong", "192.0.2.1/32"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d: %v, want ErrBadCredentials", i+1, err)
		}
	}
	var te *ThrottledError
	if err := g.check("alice", "right", "192.0.2.1/32"); !errors.As(err, &te) || te.RetryAfter != DefaultFirstDelay {
		t.Fatalf("right password after %d failures: %v, want a wait of %v", DefaultFreeFailures, err, DefaultFirstDelay)
	}
	// After the wait, one more failure doubles it.
	g.now = g.now.Add(DefaultFirstDelay)
	if err := g.check("alice", "wrong", "192.0.2.1/32"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("after the wait: %v", err)
	}
	if err := g.check("alice", "right", "192.0.2.1/32"); !errors.As(err, &te) || te.RetryAfter != 2*DefaultFirstDelay {
		t.Fatalf("second wait: %v, want %v", err, 2*DefaultFirstDelay)
	}
	g.now = g.now.Add(2 * DefaultFirstDelay)
	if err := g.check("alice", "right", "192.0.2.1/32"); err != nil {
		t.Fatalf("right password after the wait: %v", err)
	}
	// The success cleared the count: the next failure is free again.
	if err := g.check("alice", "wrong", "192.0.2.1/32"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("after a success: %v", err)
	}
	if w, th := g.failures(MethodForm, "wrong"), g.failures(MethodForm, "throttled"); w != 7 || th != 2 {
		t.Errorf("bccguard_admin_auth_failures_total: wrong %v, throttled %v; want 7 and 2", w, th)
	}
	if problems, err := testutil.GatherAndLint(g.reg); err != nil || len(problems) > 0 {
		t.Errorf("metric lint: %v %v", problems, err)
	}
}

// TestGuardPerAddressAndPerUser: guessing many names from one address is
// throttled by the address; guessing one name from many addresses by the
// name. The wait is capped.
func TestGuardPerAddressAndPerUser(t *testing.T) {
	g := newGuarded(t)
	for i := 0; i < DefaultFreeFailures; i++ {
		g.check("user"+string(rune('a'+i)), "x", "2001:db8::1/64")
	}
	var te *ThrottledError
	if err := g.check("alice", "right", "2001:db8::1/64"); !errors.As(err, &te) {
		t.Fatalf("from the guessing /64: %v, want throttled", err)
	}
	if err := g.check("alice", "right", "192.0.2.9/32"); err != nil {
		t.Fatalf("the same user from elsewhere: %v", err)
	}

	g = newGuarded(t)
	for i := 0; i < DefaultFreeFailures; i++ {
		g.check("alice", "x", netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}).String()+"/32")
	}
	if err := g.check("alice", "right", "203.0.113.7/32"); !errors.As(err, &te) {
		t.Fatalf("alice from a new address after failures from many: %v, want throttled", err)
	}
	if err := g.check("bob", "x", "203.0.113.7/32"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("another user: %v, want a normal check", err)
	}
	for i := 0; i < 40; i++ {
		g.now = g.now.Add(time.Hour - time.Second)
		g.check("alice", "x", "198.51.100.1/32")
	}
	if err := g.check("alice", "right", "198.51.100.1/32"); !errors.As(err, &te) || te.RetryAfter > DefaultMaxDelay {
		t.Fatalf("after 40 more failures: %v, want a wait of at most %v", err, DefaultMaxDelay)
	}
}

// TestGuardAudits: reaching the threshold is audited once per key, with the
// name only of a configured user (a typed password must not end up in the
// audit log).
func TestGuardAudits(t *testing.T) {
	g := newGuarded(t)
	for i := 0; i < DefaultFreeFailures+3; i++ {
		g.check("alice", "wrong", "192.0.2.1/32")
		g.now = g.now.Add(time.Hour)
	}
	for i := 0; i < DefaultFreeFailures; i++ {
		g.check("hunter2-pasted", "wrong", "192.0.2.2/32")
	}
	var targets []string
	for _, e := range g.audit {
		if e.Action != "sign-in-throttled" || !strings.Contains(e.Detail, "via form") {
			t.Errorf("audit entry %+v", e)
		}
		targets = append(targets, e.Target)
	}
	want := "user alice,client 192.0.2.1/32,unknown user,client 192.0.2.2/32"
	if strings.Join(targets, ",") != want {
		t.Errorf("audited %v, want %s", targets, want)
	}
}

// TestGuardCachedCredentialsPass: a script whose Basic credentials were
// verified a moment ago is not locked out by a stranger's failures.
func TestGuardCachedCredentialsPass(t *testing.T) {
	g := newGuarded(t)
	if err := g.check("alice", "right", "192.0.2.1/32"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < DefaultFreeFailures; i++ {
		g.check("alice", "wrong", "198.51.100.1/32")
	}
	if err := g.check("alice", "right", "192.0.2.1/32"); err != nil {
		t.Errorf("cached credentials: %v", err)
	}
}

// TestGuardCapsConcurrentChecks: with every bcrypt slot taken, a check
// waits a bounded time and is refused as busy.
func TestGuardCapsConcurrentChecks(t *testing.T) {
	g := newGuarded(t)
	var held []func()
	for i := 0; i < cap(g.guard.slots); i++ {
		r, err := g.guard.slot(context.Background(), MethodForm)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, r)
	}
	if err := g.check("alice", "right", "192.0.2.1/32"); !errors.Is(err, ErrBusy) {
		t.Fatalf("all slots taken: %v, want ErrBusy", err)
	}
	for _, r := range held {
		r()
	}
	if err := g.check("alice", "right", "192.0.2.1/32"); err != nil {
		t.Fatalf("slots free again: %v", err)
	}
	if g.failures(MethodForm, "busy") != 1 {
		t.Errorf("busy not counted")
	}
}

// TestGuardOnTheAPI: HTTP Basic and tokens are throttled by client
// address, answered 429 with Retry-After.
func TestGuardOnTheAPI(t *testing.T) {
	g := newGuarded(t)
	h := NewAuth(g.token, g.basic).Require(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	do := func(set func(r *http.Request)) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/api/v1/quarantine", nil)
		r.RemoteAddr = "192.0.2.50:4711"
		set(r)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for i := 0; i < DefaultFreeFailures; i++ {
		if w := do(func(r *http.Request) { r.Header.Set("Authorization", "Bearer guess") }); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d", i+1, w.Code)
		}
	}
	w := do(func(r *http.Request) { r.SetBasicAuth("alice", "right") })
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" || !strings.Contains(w.Body.String(), "too_many_requests") {
		t.Fatalf("after 5 wrong tokens, Basic from the same address: %d %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if g.failures(MethodToken, "wrong") != 5 || g.failures(MethodBasic, "throttled") != 1 {
		t.Errorf("token wrong %v, basic throttled %v", g.failures(MethodToken, "wrong"), g.failures(MethodBasic, "throttled"))
	}
}
