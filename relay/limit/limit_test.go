package limit

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay/store/embedded"
)

var bg = context.Background()

// clock is a test clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newLimiter runs limits over a real embedded store, on a test clock.
func newLimiter(t testing.TB, limits ...config.RateLimit) (*Limiter, *clock, *embedded.Store, *prometheus.Registry) {
	t.Helper()
	st, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for i := range limits {
		if limits[i].Action == "" {
			limits[i].Action = config.RateActionDefer
		}
		if limits[i].IPv4Prefix == 0 {
			limits[i].IPv4Prefix, limits[i].IPv6Prefix = 32, 64
		}
	}
	clk := &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	reg := prometheus.NewRegistry()
	l, err := New(Options{Limits: limits, Counter: st, Registerer: reg, Logger: slog.New(slog.DiscardHandler), Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return l, clk, st, reg
}

var (
	crmA = Client{Listener: "submission", IP: netip.MustParseAddr("192.0.2.10"), User: "crm-a"}
	crmB = Client{Listener: "submission", IP: netip.MustParseAddr("192.0.2.11"), User: "crm-b"}
)

// send runs one transaction with n recipients to acceptance; it returns
// the first refusal.
func send(t *testing.T, l *Limiter, c Client, sender string, n int) (*Tx, error) {
	t.Helper()
	tx, err := l.Mail(bg, c, sender)
	if err != nil {
		return nil, err
	}
	for range n {
		if err := tx.Rcpt(bg); err != nil {
			tx.End()
			return tx, err
		}
	}
	tx.Accepted()
	tx.End()
	return tx, nil
}

func wantExceeded(t *testing.T, err error, limit string, rcpt bool, count, max int64) {
	t.Helper()
	var e *Exceeded
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want *Exceeded of %s", err, limit)
	}
	if e.Limit != limit || e.Recipients != rcpt || e.Count != count || e.Max != max || e.Action != config.RateActionDefer {
		t.Fatalf("got %+v, want limit %s (recipients %v) at %d of %d", e, limit, rcpt, count, max)
	}
}

// TestDeferAtMail: a user over its message limit is refused at MAIL FROM
// while another user is served, and is admitted again once the window has
// passed.
func TestDeferAtMail(t *testing.T) {
	l, clk, _, reg := newLimiter(t, config.RateLimit{Name: "burst", Key: config.RateKeyUser, Per: config.RateWindow(time.Minute), Messages: 3})
	for i := range 3 {
		if _, err := send(t, l, crmA, "news@brand.example", 1); err != nil {
			t.Fatalf("message %d of 3: %v", i+1, err)
		}
		clk.add(5 * time.Second)
	}
	_, err := send(t, l, crmA, "news@brand.example", 1)
	wantExceeded(t, err, "burst", false, 3, 3)
	if err.Error() != "rate limit burst: 3 messages in the last minute (limit 3)" {
		t.Errorf("error text %q", err)
	}
	if _, err := send(t, l, crmB, "news@other.example", 1); err != nil {
		t.Fatalf("another user while the first is over its limit: %v", err)
	}
	// Refused again (the refusal itself counts nowhere) until the first
	// message is out of the window.
	clk.add(45*time.Second - time.Millisecond) // t0 + 60s - 1ms
	_, err = send(t, l, crmA, "news@brand.example", 1)
	wantExceeded(t, err, "burst", false, 3, 3)
	clk.add(2 * time.Second) // past the first one's window and its slot
	if _, err := send(t, l, crmA, "news@brand.example", 1); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	if got := testutil.ToFloat64(l.limited.WithLabelValues("burst", "defer")); got != 2 {
		t.Errorf("bccguard_rate_limited_total{burst,defer} = %v, want 2", got)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("metric lint: %v %+v", err, problems)
	}
}

// TestNotAcceptedIsGivenBack: a transaction that ends without being
// accepted (RSET, a rejected DATA, a lost connection) takes nothing away.
func TestNotAcceptedIsGivenBack(t *testing.T) {
	l, _, _, _ := newLimiter(t,
		config.RateLimit{Name: "m", Key: config.RateKeyUser, Per: config.RateWindow(time.Hour), Messages: 2},
		config.RateLimit{Name: "r", Key: config.RateKeyUser, Per: config.RateWindow(time.Hour), Recipients: 4})
	for range 10 {
		tx, err := l.Mail(bg, crmA, "a@brand.example")
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := tx.Rcpt(bg); err != nil {
				t.Fatal(err)
			}
		}
		tx.End() // never accepted
		tx.End() // and ending twice gives back once
	}
	if _, err := send(t, l, crmA, "a@brand.example", 2); err != nil {
		t.Fatalf("after ten transactions not accepted: %v", err)
	}
	if _, err := send(t, l, crmA, "a@brand.example", 2); err != nil {
		t.Fatalf("second accepted message: %v", err)
	}
	_, err := send(t, l, crmA, "a@brand.example", 1)
	wantExceeded(t, err, "m", false, 2, 2)
}

// TestDeferAtRcpt: recipients over the limit are refused one by one; the
// ones before stay in the transaction.
func TestDeferAtRcpt(t *testing.T) {
	l, clk, _, _ := newLimiter(t, config.RateLimit{Name: "daily-rcpts", Key: config.RateKeyUser, Per: config.RateWindow(24 * time.Hour), Recipients: 5})
	if _, err := send(t, l, crmA, "a@brand.example", 3); err != nil {
		t.Fatal(err)
	}
	tx, err := l.Mail(bg, crmA, "a@brand.example")
	if err != nil {
		t.Fatalf("MAIL with recipients left: %v", err)
	}
	for i := range 2 {
		if err := tx.Rcpt(bg); err != nil {
			t.Fatalf("recipient %d of the 2 left: %v", i+1, err)
		}
	}
	wantExceeded(t, tx.Rcpt(bg), "daily-rcpts", true, 5, 5)
	wantExceeded(t, tx.Rcpt(bg), "daily-rcpts", true, 5, 5)
	tx.Accepted()
	tx.End()
	clk.add(24*time.Hour + 30*time.Minute)
	if _, err := send(t, l, crmA, "a@brand.example", 5); err != nil {
		t.Fatalf("the next day: %v", err)
	}
}

// TestQuarantineLimit: a quarantine limit never refuses; the transactions
// over it are marked for holding, with the rule rate-limit:NAME.
func TestQuarantineLimit(t *testing.T) {
	l, _, _, _ := newLimiter(t, config.RateLimit{Name: "burst", Key: config.RateKeyUser, Per: config.RateWindow(time.Minute), Messages: 2, Action: config.RateActionQuarantine})
	for i := 1; i <= 5; i++ {
		tx, err := send(t, l, crmA, "a@brand.example", 1)
		if err != nil {
			t.Fatalf("message %d: %v (a quarantine limit must not refuse)", i, err)
		}
		h := tx.Hold()
		if i <= 2 && h != nil {
			t.Fatalf("message %d of 2 held: %+v", i, h)
		}
		if i > 2 && (h == nil || h.Rule() != "rate-limit:burst" || h.Count != int64(i) || h.Max != 2) {
			t.Fatalf("message %d: hold %+v, want rate-limit:burst at %d of 2", i, h, i)
		}
	}
	if got := testutil.ToFloat64(l.limited.WithLabelValues("burst", "quarantine")); got != 3 {
		t.Errorf("bccguard_rate_limited_total{burst,quarantine} = %v, want 3", got)
	}
}

// TestKeys: each key groups what it should and nothing else.
func TestKeys(t *testing.T) {
	per := config.RateWindow(time.Hour)
	l, _, _, _ := newLimiter(t,
		config.RateLimit{Name: "domain", Key: config.RateKeySenderDomain, Per: per, Messages: 2},
		config.RateLimit{Name: "net", Key: config.RateKeyClientIP, Per: per, Messages: 2, IPv4Prefix: 24, IPv6Prefix: 64},
		config.RateLimit{Name: "listener", Key: config.RateKeyListener, Per: per, Messages: 2},
		config.RateLimit{Name: "user", Key: config.RateKeyUser, Per: per, Messages: 1},
	)
	ip := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	// Without AUTH the user limit does not apply: two messages pass it.
	anon := func(addr, listener string) Client { return Client{Listener: listener, IP: ip(addr)} }
	if _, err := send(t, l, anon("192.0.2.1", "l1"), "a@Brand.Example.", 1); err != nil {
		t.Fatal(err)
	}
	// The same domain in other case; another /24; another listener.
	if _, err := send(t, l, anon("198.51.100.1", "l2"), "b@brand.example", 1); err != nil {
		t.Fatal(err)
	}
	_, err := send(t, l, anon("203.0.113.1", "l3"), "c@BRAND.example", 1)
	wantExceeded(t, err, "domain", false, 2, 2)
	// Same /24, other addresses and domains.
	if _, err := send(t, l, anon("192.0.2.200", "l4"), "a@one.example", 1); err != nil {
		t.Fatal(err)
	}
	_, err = send(t, l, anon("192.0.2.77", "l5"), "a@two.example", 1)
	wantExceeded(t, err, "net", false, 2, 2)
	// IPv6 by /64; the IPv4-mapped form is the IPv4 address.
	if _, err := send(t, l, anon("2001:db8:1:2::1", "l6"), "a@three.example", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := send(t, l, anon("2001:db8:1:2::ffff", "l7"), "a@four.example", 1); err != nil {
		t.Fatal(err)
	}
	_, err = send(t, l, anon("2001:db8:1:2:abcd::1", "l8"), "a@five.example", 1)
	wantExceeded(t, err, "net", false, 2, 2)
	_, err = send(t, l, anon("::ffff:192.0.2.9", "l9"), "a@six.example", 1)
	wantExceeded(t, err, "net", false, 2, 2)
	// Listener.
	if _, err := send(t, l, anon("203.0.113.9", "l1"), "x@seven.example", 1); err != nil {
		t.Fatal(err)
	}
	_, err = send(t, l, anon("203.0.113.10", "l1"), "x@eight.example", 1)
	wantExceeded(t, err, "listener", false, 2, 2)
	// An internationalized domain counts as one whichever way it is written.
	if _, err := send(t, l, anon("100.64.0.1", "i1"), "a@bücher.example", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := send(t, l, anon("100.64.1.1", "i2"), "a@XN--BCHER-KVA.example", 1); err != nil {
		t.Fatal(err)
	}
	_, err = send(t, l, anon("100.64.2.1", "i3"), "b@Bücher.example", 1)
	wantExceeded(t, err, "domain", false, 2, 2)
	// The null sender is a key of its own.
	if _, err := send(t, l, anon("203.0.113.11", "n1"), "", 1); err != nil {
		t.Fatal(err)
	}
	// With AUTH the user limit applies.
	u := Client{Listener: "u1", IP: ip("198.18.0.50"), User: "crm"}
	if _, err := send(t, l, u, "x@nine.example", 1); err != nil {
		t.Fatal(err)
	}
	u.Listener, u.IP = "u2", ip("198.19.0.51")
	_, err = send(t, l, u, "x@ten.example", 1)
	wantExceeded(t, err, "user", false, 1, 1)
}

// TestUnavailable: when the counts cannot be read the transaction is
// refused, not let through unlimited.
func TestUnavailable(t *testing.T) {
	l, _, st, _ := newLimiter(t, config.RateLimit{Name: "m", Key: config.RateKeyUser, Per: config.RateWindow(time.Minute), Messages: 100})
	tx, err := l.Mail(bg, crmA, "a@brand.example")
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := l.Mail(bg, crmA, "a@brand.example"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Mail with the store closed: %v, want ErrUnavailable", err)
	}
	tx.End() // logs, does not panic
	// Without a limit that applies, nothing is asked of the store.
	if _, err := l.Mail(bg, Client{Listener: "x", IP: crmA.IP}, "a@brand.example"); err != nil {
		t.Fatalf("Mail without AUTH (no limit applies): %v", err)
	}
}

// TestClientCounts: the policy's counts include the message, per user (or
// address), per window, and are given back with a transaction that fails.
func TestClientCounts(t *testing.T) {
	l, clk, _, _ := newLimiter(t)
	counts := func(c Client, rcpts int, accept bool) [3]int64 {
		t.Helper()
		tx, err := l.Mail(bg, c, "a@brand.example")
		if err != nil {
			t.Fatal(err)
		}
		got, err := tx.ClientCounts(bg, rcpts)
		if err != nil {
			t.Fatal(err)
		}
		if accept {
			tx.Accepted()
		}
		tx.End()
		return [3]int64{got[0].Messages, got[1].Messages, got[2].Recipients}
	}
	if got := counts(crmA, 10, true); got != [3]int64{1, 1, 10} {
		t.Fatalf("first message: %v", got)
	}
	if got := counts(crmA, 5, false); got != [3]int64{2, 2, 15} {
		t.Fatalf("second (then refused): %v", got)
	}
	clk.add(2 * time.Minute)
	if got := counts(crmA, 1, true); got != [3]int64{1, 2, 11} {
		t.Fatalf("two minutes later: %v, want the refused one given back, the first out of the minute", got)
	}
	if got := counts(crmB, 1, true); got != [3]int64{1, 1, 1} {
		t.Fatalf("another user: %v", got)
	}
	anon := Client{Listener: "smtp", IP: netip.MustParseAddr("127.0.0.1")}
	if got := counts(anon, 2, true); got != [3]int64{1, 1, 2} {
		t.Fatalf("by address: %v", got)
	}
	var none *Tx
	if c, err := none.ClientCounts(bg, 3); err != nil || c[2].Messages != 0 {
		t.Fatalf("nil Tx: %v, %v", c, err)
	}
}
