package review

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bccguard/bccguard/relay/store"
)

// Paging limits of List.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Filter selects holds for List and Bulk. Zero values select all.
type Filter struct {
	// States limits List to these states; empty means held only (what a
	// reviewer has to act on). Bulk always acts on held messages.
	States    []store.HoldState
	AllStates bool // List: every state, States ignored
	Rule      string
	Sender    string // envelope sender, case-insensitive
	ClientIP  string
	User      string // the client's AUTH identity
	// OlderThan selects messages received at least this long ago.
	OlderThan time.Duration
	// Offset and Limit page through List's results, newest first (Limit
	// 0: DefaultLimit; at most MaxLimit).
	Offset int
	Limit  int
}

// narrowed reports whether the filter names anything besides states and
// paging: a bulk action on "everything" is refused.
func (f Filter) narrowed() bool {
	return f.Rule != "" || f.Sender != "" || f.ClientIP != "" || f.User != "" || f.OlderThan > 0
}

func (f Filter) storeFilter(now time.Time) store.HoldFilter {
	hf := store.HoldFilter{
		Rule: f.Rule, Sender: f.Sender, ClientIP: f.ClientIP, User: f.User,
		Offset: f.Offset, Limit: f.Limit,
	}
	switch {
	case f.AllStates:
	case len(f.States) > 0:
		hf.States = f.States
	default:
		hf.States = []store.HoldState{store.HoldHeld}
	}
	if f.OlderThan > 0 {
		hf.HeldBefore = now.Add(-f.OlderThan)
	}
	return hf
}

// String describes the filter for the audit log (bulk targets).
func (f Filter) String() string {
	var p []string
	add := func(k, v string) {
		if v != "" {
			p = append(p, k+"="+v)
		}
	}
	add("rule", f.Rule)
	add("sender", f.Sender)
	add("client_ip", f.ClientIP)
	add("user", f.User)
	if f.OlderThan > 0 {
		add("older_than", describeAge(f.OlderThan))
	}
	if len(p) == 0 {
		return "all"
	}
	return strings.Join(p, " ")
}

// Values encodes the filter as the query parameters of
// GET /quarantine (the inverse of ParseFilter).
func (f Filter) Values() url.Values {
	v := url.Values{}
	if f.AllStates {
		v.Set("state", "all")
	}
	for _, s := range f.States {
		v.Add("state", string(s))
	}
	set := func(k, x string) {
		if x != "" {
			v.Set(k, x)
		}
	}
	set("rule", f.Rule)
	set("sender", f.Sender)
	set("client_ip", f.ClientIP)
	set("user", f.User)
	if f.OlderThan > 0 {
		v.Set("older_than", describeAge(f.OlderThan))
	}
	if f.Offset > 0 {
		v.Set("offset", strconv.Itoa(f.Offset))
	}
	if f.Limit > 0 {
		v.Set("limit", strconv.Itoa(f.Limit))
	}
	return v
}

// ParseFilter reads a Filter from query parameters: state (repeated or
// comma-separated: held, released, deleted, expired, or all), rule, sender,
// client_ip, user, older_than (a duration: 90m, 36h, 7d), offset, limit.
func ParseFilter(q url.Values) (Filter, error) {
	f := Filter{
		Rule: q.Get("rule"), Sender: q.Get("sender"),
		ClientIP: q.Get("client_ip"), User: q.Get("user"),
	}
	for _, v := range q["state"] {
		for _, s := range strings.Split(v, ",") {
			switch st := store.HoldState(strings.TrimSpace(s)); st {
			case "":
			case "all":
				f.AllStates = true
			case store.HoldHeld, store.HoldReleased, store.HoldDeleted, store.HoldExpired:
				f.States = append(f.States, st)
			default:
				return f, errorf(CodeBadRequest, "unknown state %q: held, released, deleted, expired or all", s)
			}
		}
	}
	if s := q.Get("older_than"); s != "" {
		d, err := ParseAge(s)
		if err != nil {
			return f, err
		}
		f.OlderThan = d
	}
	var err error
	if f.Offset, err = intParam(q, "offset"); err != nil {
		return f, err
	}
	if f.Limit, err = intParam(q, "limit"); err != nil {
		return f, err
	}
	return f, nil
}

func intParam(q url.Values, k string) (int, error) {
	s := q.Get(k)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, errorf(CodeBadRequest, "%s must be a whole number, not %q", k, s)
	}
	return n, nil
}

// ParseAge parses an age such as "90m", "36h" or "7d" (days are what
// reviewers think in; time.ParseDuration has none).
func ParseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err == nil && n >= 0 && n < 1e5 {
			return time.Duration(n * float64(24*time.Hour)), nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d, nil
	}
	return 0, errorf(CodeBadRequest, "invalid age %q: expected e.g. 90m, 36h or 7d", s)
}

// BulkFilter is the filter of a bulk request as JSON.
type BulkFilter struct {
	Rule      string `json:"rule,omitempty"`
	Sender    string `json:"sender,omitempty"`
	ClientIP  string `json:"client_ip,omitempty"`
	User      string `json:"user,omitempty"`
	OlderThan string `json:"older_than,omitempty"` // e.g. "7d", "36h"
}

// Filter converts the JSON form.
func (b BulkFilter) Filter() (Filter, error) {
	f := Filter{Rule: b.Rule, Sender: b.Sender, ClientIP: b.ClientIP, User: b.User}
	if b.OlderThan != "" {
		d, err := ParseAge(b.OlderThan)
		if err != nil {
			return f, err
		}
		f.OlderThan = d
	}
	return f, nil
}

func (f Filter) limit() int {
	switch {
	case f.Limit <= 0:
		return DefaultLimit
	case f.Limit > MaxLimit:
		return MaxLimit
	}
	return f.Limit
}

func describeAge(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
