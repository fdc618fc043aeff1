package web

import (
	"cmp"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/bccguard/bccguard/relay/review"
)

// listLimit is how many holds one page of the list shows.
const listLimit = 25

// ruleCount is one rule and how many messages it holds.
type ruleCount struct {
	Rule   string
	Count  int
	Active bool // the list is filtered by this rule
}

type listPage struct {
	Query      filterForm
	Error      string
	Items      []review.Summary
	Total      int
	First      int // 1-based index of the first item shown
	Last       int
	Prev, Next string // page links, "" when there is none
	Rules      []ruleCount
	HeldTotal  int
	Oldest     time.Time
	Filtered   bool   // anything but the state is set
	BulkURL    string // the bulk page with this filter
	ClearURL   string
}

func (listPage) title() string { return "Quarantine" }
func (listPage) nav() string   { return "list" }

// filterForm is the filter as the form shows it.
type filterForm struct {
	State     string
	Rule      string
	Sender    string
	ClientIP  string
	User      string
	OlderThan string
}

// ageChoices are the list filter's age options.
var ageChoices = []struct{ Value, Label string }{
	{"", "any age"}, {"1h", "older than 1 hour"}, {"24h", "older than 1 day"},
	{"7d", "older than 7 days"}, {"14d", "older than 14 days"}, {"28d", "older than 28 days"},
}

// option is one <option> of a select.
type option struct {
	Value, Label string
	Selected     bool
}

// AgeOptions are the age filter's choices, with one for an age typed into
// the URL that is not among them.
func (f filterForm) AgeOptions() []option {
	var out []option
	found := false
	for _, c := range ageChoices {
		sel := c.Value == f.OlderThan
		found = found || sel
		out = append(out, option{c.Value, c.Label, sel})
	}
	if !found {
		out = append(out, option{f.OlderThan, "older than " + f.OlderThan, true})
	}
	return out
}

// StateOptions are the state filter's choices.
func (f filterForm) StateOptions() []option {
	var out []option
	for _, s := range []string{"held", "released", "deleted", "expired", "all"} {
		label := s
		if s == "all" {
			label = "any state"
		}
		out = append(out, option{s, label, s == f.State})
	}
	return out
}

func formFrom(q url.Values) filterForm {
	f := filterForm{State: q.Get("state"), Rule: q.Get("rule"), Sender: q.Get("sender"),
		ClientIP: q.Get("client_ip"), User: q.Get("user"), OlderThan: q.Get("older_than")}
	if f.State == "" {
		f.State = "held"
	}
	return f
}

// values is the filter as query parameters (without paging).
func (f filterForm) values() url.Values {
	v := url.Values{}
	set := func(k, x string) {
		if x != "" {
			v.Set(k, x)
		}
	}
	if f.State != "held" {
		set("state", f.State)
	}
	set("rule", f.Rule)
	set("sender", f.Sender)
	set("client_ip", f.ClientIP)
	set("user", f.User)
	set("older_than", f.OlderThan)
	return v
}

func withQuery(path string, v url.Values) string {
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

func (p *Pages) list(w http.ResponseWriter, r *http.Request, c *call) {
	q := r.URL.Query()
	pg := listPage{Query: formFrom(q), ClearURL: Base}
	f, err := review.ParseFilter(q)
	status := http.StatusOK
	if err != nil {
		pg.Error = sentence(errMessage(err))
		status = http.StatusBadRequest
	} else {
		f.Limit = listLimit
		page, err := p.svc.List(r.Context(), c.actor, f)
		if err != nil {
			p.serviceError(w, r, c, err)
			return
		}
		pg.Items, pg.Total = page.Items, page.Total
		if len(page.Items) > 0 {
			pg.First, pg.Last = page.Offset+1, page.Offset+len(page.Items)
		}
		base := pg.Query.values()
		if page.Offset > 0 {
			v := cloneValues(base)
			if o := max(0, page.Offset-listLimit); o > 0 {
				v.Set("offset", strconv.Itoa(o))
			}
			pg.Prev = withQuery(Base, v)
		}
		if page.Offset+len(page.Items) < page.Total {
			v := cloneValues(base)
			v.Set("offset", strconv.Itoa(page.Offset+len(page.Items)))
			pg.Next = withQuery(Base, v)
		}
	}
	pg.Filtered = pg.Query.Rule != "" || pg.Query.Sender != "" || pg.Query.ClientIP != "" || pg.Query.User != "" || pg.Query.OlderThan != ""
	if pg.Filtered && c.actor.CanReview() {
		v := pg.Query.values()
		v.Del("state")
		pg.BulkURL = withQuery(Base+"/bulk", v)
	}
	if p.stats != nil {
		byRule, oldest, err := p.stats(r.Context())
		if err != nil {
			p.log.Warn("review page: hold counts failed", "err", err)
		}
		for rule, n := range byRule {
			pg.Rules = append(pg.Rules, ruleCount{Rule: rule, Count: n, Active: rule == pg.Query.Rule})
			pg.HeldTotal += n
		}
		slices.SortFunc(pg.Rules, func(a, b ruleCount) int {
			return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Rule, b.Rule))
		})
		pg.Oldest = oldest
	}
	p.render(w, r, status, "list", c, pg)
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, x := range v {
		out[k] = slices.Clone(x)
	}
	return out
}

func errMessage(err error) string {
	var e *review.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}
