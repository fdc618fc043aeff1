// Package limit enforces bccguard's rate limits: how many messages and
// recipients each CRM may send per window, counted by AUTH user, sender
// domain, client network or listener, as configured in rate_limits.
//
// A session asks at MAIL FROM (Limiter.Mail) and at each RCPT TO
// (Tx.Rcpt). A limit whose action is defer refuses the transaction or the
// recipient there, as a well-behaved client retries such a temporary
// reply; one whose action is quarantine lets the message in and marks it
// (Tx.Hold), and the relay holds it for review. What a transaction took
// is given back if it is not accepted (Tx.End), so a deferred or rejected
// attempt does not use up the allowance of its retry.
//
// Counts are sliding windows of 60 slots kept by the store
// (store.RateCounter): in memory, saved across restarts, for the embedded
// store; shared by every replica on PostgreSQL. When the counts cannot be
// read or written the transaction is refused with ErrUnavailable: a store
// outage never lets mail through unlimited.
package limit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/idna"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay/store"
)

// ErrUnavailable: the counts could not be checked (the store failed). The
// relay defers the transaction; the cause is wrapped for the log.
var ErrUnavailable = errors.New("rate limits cannot be checked now")

// storeTimeout bounds one check of the counts, so a hung database defers
// the transaction instead of hanging the session.
const storeTimeout = 10 * time.Second

// Client is who a mail transaction comes from, as limits key it.
type Client struct {
	Listener string
	IP       netip.Addr
	// User is the SMTP AUTH identity, "" if the client did not log in
	// (user limits then do not apply).
	User string
}

// Options are what main wires into a Limiter.
type Options struct {
	Limits     []config.RateLimit
	Counter    store.RateCounter
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
}

// Limiter checks transactions against the configured limits. It is safe
// for concurrent use.
type Limiter struct {
	rules   []rule
	counter store.RateCounter
	log     *slog.Logger
	limited *prometheus.CounterVec
	now     func() time.Time
}

// rule is one configured limit, ready to key transactions.
type rule struct {
	config.RateLimit
	window time.Duration
	hold   bool   // action quarantine
	prefix string // "limit:NAME/", the start of its scopes' names
}

// key is the value of the rule's key for c and sender domain d, after a
// letter for its kind ("u" user, "d" domain, "n" network, "l" listener);
// ok is false when the rule does not apply (a user limit and no AUTH).
// nets keeps the networks named so far for c, so that rules keyed by the
// same prefix length name it once.
func (r *rule) key(c Client, domain string, nets *[]netValue) (kind, value string, ok bool) {
	switch r.Key {
	case config.RateKeyUser:
		return "u", c.User, c.User != ""
	case config.RateKeySenderDomain:
		return "d", domain, true
	case config.RateKeyClientIP:
		ip := c.IP.Unmap()
		bits := r.IPv6Prefix
		if ip.Is4() {
			bits = r.IPv4Prefix
		}
		for _, n := range *nets {
			if n.bits == bits {
				return "n", n.value, n.ok
			}
		}
		nv := netValue{bits: bits, ok: true}
		if p, err := ip.Prefix(bits); err == nil {
			nv.value = p.String()
		} else {
			nv.value, nv.ok = ip.String(), ip.IsValid()
		}
		*nets = append(*nets, nv)
		return "n", nv.value, nv.ok
	case config.RateKeyListener:
		return "l", c.Listener, true
	}
	return "", "", false
}

// netValue is a client network as a limit keyed by prefix length bits
// names it.
type netValue struct {
	bits  int
	value string
	ok    bool
}

// New builds a Limiter and registers its metric.
func New(o Options) (*Limiter, error) {
	if o.Counter == nil || o.Registerer == nil || o.Logger == nil {
		return nil, errors.New("limit: Counter, Registerer and Logger are required")
	}
	l := &Limiter{
		counter: o.Counter,
		log:     o.Logger,
		now:     o.Now,
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_rate_limited_total",
			Help: "Mail transactions a rate limit acted on, by limit and action: defer counts each MAIL FROM (451 4.7.0) " +
				"and each RCPT TO (452 4.5.3) refused, quarantine each message held for review.",
		}, []string{"limit", "action"}),
	}
	if l.now == nil {
		l.now = time.Now
	}
	if err := o.Registerer.Register(l.limited); err != nil {
		return nil, fmt.Errorf("limit: register metrics: %w", err)
	}
	for _, c := range o.Limits {
		l.rules = append(l.rules, rule{RateLimit: c, window: c.Per.D(), hold: c.Action == config.RateActionQuarantine,
			prefix: "limit:" + c.Name + "/"})
		l.limited.WithLabelValues(c.Name, c.Action) // at 0 from the start
	}
	return l, nil
}

// Exceeded is a transaction over a limit: the error Mail and Rcpt return
// for a defer limit, and what Tx.Hold reports for a quarantine one.
type Exceeded struct {
	Limit  string
	Action string // config.RateActionDefer or config.RateActionQuarantine
	// Recipients is set when the recipients bound is the one exceeded.
	Recipients bool
	// Count is the count in the window with this transaction (for a
	// refused one, as it stands); Max is the limit's bound.
	Count, Max int64
	Window     time.Duration
}

func (e *Exceeded) Error() string {
	what := "messages"
	if e.Recipients {
		what = "recipients"
	}
	return fmt.Sprintf("rate limit %s: %d %s in the last %s (limit %d)", e.Limit, e.Count, what, windowText(e.Window), e.Max)
}

// Rule is the policy rule name of a message the limit holds.
func (e *Exceeded) Rule() string { return "rate-limit:" + e.Limit }

func windowText(w time.Duration) string {
	switch w {
	case time.Minute:
		return "minute"
	case time.Hour:
		return "hour"
	case 24 * time.Hour:
		return "day"
	}
	return w.String()
}

// senderDomain is the domain limits key a sender by: lowercased, without
// a final dot, an internationalized domain in its ASCII form (so its two
// spellings share one count); "" for the null sender.
func senderDomain(sender string) string {
	at := strings.LastIndexByte(sender, '@')
	if at < 0 {
		return ""
	}
	d := strings.ToLower(strings.TrimSuffix(sender[at+1:], "."))
	if a, err := idna.Lookup.ToASCII(d); err == nil && a != "" {
		return a
	}
	return d
}

// Mail starts a transaction from c with envelope sender at MAIL FROM: it
// takes one message from every limit that counts messages and applies to
// c. A defer limit over its bound refuses it (*Exceeded, nothing taken);
// a store failure refuses it with ErrUnavailable.
func (l *Limiter) Mail(ctx context.Context, c Client, sender string) (*Tx, error) {
	tx := &Tx{l: l, c: c, domain: senderDomain(sender)}
	if err := tx.take(ctx, false); err != nil {
		return nil, err
	}
	return tx, nil
}

// Tx is one mail transaction's part in the limits. Its methods may be
// called on a nil *Tx (no limiter), and do nothing then.
type Tx struct {
	l      *Limiter
	c      Client
	domain string
	// checks are what MAIL FROM ([0]) and each RCPT TO ([1]) take, made
	// once per transaction (prepare): every recipient takes the same.
	checks   [2]check
	prepared bool
	taken    []taken
	hold     *Exceeded
	done     bool
}

// check is the requests of one kind of take (a message or a recipient)
// and the rules they come from, in the same order.
type check struct {
	reqs  []store.RateRequest
	rules []*rule
}

// prepare makes the transaction's checks: for a message, then for a
// recipient, a request per rule that counts it and applies to tx. A rule
// counting both names the same scope in both.
func (tx *Tx) prepare() {
	tx.prepared = true
	l := tx.l
	n := len(l.rules)
	reqs := make([]store.RateRequest, 0, 2*n)
	rules := make([]*rule, 0, 2*n)
	scopes := make([]string, n)
	var nets []netValue // a client network's name, once per prefix length
	for i := range l.rules {
		r := &l.rules[i]
		if r.Messages == 0 && r.Recipients == 0 {
			continue
		}
		kind, v, ok := r.key(tx.c, tx.domain, &nets)
		if ok {
			scopes[i] = r.prefix + kind + ":" + v
		}
	}
	for k, rcpt := range []bool{false, true} {
		from := len(reqs)
		for i := range l.rules {
			r := &l.rules[i]
			bound := r.Messages
			if rcpt {
				bound = r.Recipients
			}
			if bound == 0 || scopes[i] == "" {
				continue
			}
			q := store.RateRequest{Scope: scopes[i], Window: r.window}
			if rcpt {
				q.Recipients = 1
			} else {
				q.Messages = 1
			}
			if !r.hold { // a quarantine limit never refuses: it counts, then holds
				q.MaxMessages, q.MaxRecipients = r.Messages, r.Recipients
			}
			reqs = append(reqs, q)
			rules = append(rules, r)
		}
		tx.checks[k] = check{reqs: reqs[from:len(reqs):len(reqs)], rules: rules[from:len(rules):len(rules)]}
	}
}

// taken is one TakeRate to give back if the transaction fails. Its
// requests are shared with the transaction's checks and never changed.
type taken struct {
	at   time.Time
	reqs []store.RateRequest
}

// Rcpt takes one recipient from every limit that counts recipients. A
// defer limit over its bound refuses this recipient (*Exceeded).
func (tx *Tx) Rcpt(ctx context.Context) error {
	if tx == nil {
		return nil
	}
	return tx.take(ctx, true)
}

// Hold is the quarantine limit the transaction went over (the first
// one), or nil: the relay then holds the message with rule Rule().
func (tx *Tx) Hold() *Exceeded {
	if tx == nil {
		return nil
	}
	return tx.hold
}

// take checks and adds one message (or, with rcpt, one recipient) to the
// limits that count it.
func (tx *Tx) take(ctx context.Context, rcpt bool) error {
	l := tx.l
	if !tx.prepared {
		tx.prepare()
	}
	chk := &tx.checks[0]
	if rcpt {
		chk = &tx.checks[1]
	}
	reqs, rules := chk.reqs, chk.rules
	if len(reqs) == 0 {
		return nil
	}
	at := l.now()
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	res, err := l.counter.TakeRate(ctx, at, reqs)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	count := func(i int) int64 {
		if rcpt {
			return res.Counts[i].Recipients
		}
		return res.Counts[i].Messages
	}
	bound := func(r *rule) int64 {
		if rcpt {
			return r.Recipients
		}
		return r.Messages
	}
	if !res.Taken {
		for i, over := range res.Over {
			if over {
				r := rules[i]
				e := &Exceeded{Limit: r.Name, Action: r.Action, Recipients: rcpt, Count: count(i), Max: bound(r), Window: r.window}
				l.limited.WithLabelValues(r.Name, r.Action).Inc()
				l.log.Info("rate limit: deferred", "limit", r.Name, "scope", reqs[i].Scope, "listener", tx.c.Listener,
					"client_ip", tx.c.IP.String(), "user", tx.c.User, "at", map[bool]string{false: "mail", true: "rcpt"}[rcpt],
					"count", e.Count, "max", e.Max)
				return e
			}
		}
		return errors.New("limit: store refused a take without saying which limit")
	}
	tx.taken = append(tx.taken, taken{at: at, reqs: reqs})
	if tx.hold == nil {
		for i, r := range rules {
			if r.hold && count(i) > bound(r) {
				tx.hold = &Exceeded{Limit: r.Name, Action: r.Action, Recipients: rcpt, Count: count(i), Max: bound(r), Window: r.window}
				break
			}
		}
	}
	return nil
}

// Accepted records that the message was accepted (250 after DATA): its
// counts stay, and a held message is counted on the metric.
func (tx *Tx) Accepted() {
	if tx == nil || tx.done {
		return
	}
	tx.done = true
	if h := tx.hold; h != nil {
		tx.l.limited.WithLabelValues(h.Limit, h.Action).Inc()
		tx.l.log.Info("rate limit: held for review", "limit", h.Limit, "listener", tx.c.Listener,
			"client_ip", tx.c.IP.String(), "user", tx.c.User, "count", h.Count, "max", h.Max)
	}
}

// End closes the transaction (RSET, a new MAIL FROM, the end of the
// session, or after DATA): unless it was accepted, what it took is given
// back. A failure to give back leaves the counts higher, never lower.
func (tx *Tx) End() {
	if tx == nil || tx.done {
		return
	}
	tx.done = true
	if len(tx.taken) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	for _, t := range tx.taken {
		if err := tx.l.counter.GiveRate(ctx, t.at, t.reqs); err != nil {
			tx.l.log.Warn("rate limit: could not give back the counts of a transaction not accepted; they stay until the window passes", "err", err)
			return
		}
	}
}
