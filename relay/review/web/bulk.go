package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/store"
)

// bulkListShown is how many matching message IDs the dry run lists.
const bulkListShown = 20

type bulkPage struct {
	Query   filterForm
	Action  string
	Rewrite string
	Force   bool
	Notify  bool
	Error   string
	Rules   []string // known rules, offered in the rule field
	MaxBulk int
}

func (bulkPage) title() string { return "Bulk action" }
func (bulkPage) nav() string   { return "bulk" }

func (p *Pages) bulkForm(w http.ResponseWriter, r *http.Request, c *call) {
	if !p.requireReviewer(w, r, c) {
		return
	}
	pg := bulkPage{Query: formFrom(r.URL.Query()), Action: review.BulkRelease, Rewrite: store.RewriteExplode.Name()}
	p.renderBulk(w, r, c, http.StatusOK, pg)
}

func (p *Pages) renderBulk(w http.ResponseWriter, r *http.Request, c *call, status int, pg bulkPage) {
	pg.MaxBulk = review.MaxBulk
	if p.stats != nil {
		if byRule, _, err := p.stats(r.Context()); err == nil {
			for rule := range byRule {
				if rule != "" {
					pg.Rules = append(pg.Rules, rule)
				}
			}
			slices.Sort(pg.Rules)
		}
	}
	p.render(w, r, status, "bulk", c, pg)
}

func (p *Pages) bulk(w http.ResponseWriter, r *http.Request, c *call) {
	if !p.requireReviewer(w, r, c) {
		return
	}
	form := r.PostForm
	pg := bulkPage{Query: formFrom(form), Action: form.Get("action"), Rewrite: form.Get("rewrite"),
		Force: form.Get("force") != "", Notify: form.Get("notify") != ""}
	if pg.Rewrite == "" {
		pg.Rewrite = store.RewriteExplode.Name()
	}
	fq := url.Values{}
	for _, k := range []string{"rule", "sender", "client_ip", "user", "older_than"} {
		if v := form.Get(k); v != "" {
			fq.Set(k, v)
		}
	}
	f, err := review.ParseFilter(fq)
	if err != nil {
		pg.Error = sentence(errMessage(err))
		p.renderBulk(w, r, c, http.StatusBadRequest, pg)
		return
	}
	act := review.BulkAction{
		Kind:    pg.Action,
		Release: review.ReleaseOptions{Rewrite: pg.Rewrite, Force: pg.Force},
		Delete:  review.DeleteOptions{NotifySender: pg.Notify},
	}
	dry, err := p.svc.Bulk(r.Context(), c.actor, f, act, true)
	if err != nil {
		if review.CodeOf(err) == review.CodeForbidden || review.CodeOf(err) == review.CodeInternal {
			p.serviceError(w, r, c, err)
			return
		}
		pg.Error = sentence(errMessage(err))
		p.renderBulk(w, r, c, review.CodeOf(err).HTTPStatus(), pg)
		return
	}

	if form.Get("confirm") == "yes" {
		expect, _ := strconv.Atoi(form.Get("expect"))
		if expect == dry.Matched && dry.Matched > 0 {
			p.applyBulk(w, r, c, f, act, fq)
			return
		}
		// Something changed since the dry run: say so, and ask again.
		cp := p.bulkConfirm(c, f, act, pg, dry)
		cp.Warning = fmt.Sprintf("The number of matching held messages changed from %d to %d since the dry run. Check again before confirming.", expect, dry.Matched)
		if dry.Matched == 0 {
			cp.Warning = fmt.Sprintf("None of the %d messages the dry run counted is held any more: nothing was done.", expect)
		}
		p.render(w, r, http.StatusConflict, "confirm", c, cp)
		return
	}
	p.render(w, r, http.StatusOK, "confirm", c, p.bulkConfirm(c, f, act, pg, dry))
}

// bulkConfirm is the dry run's answer: how many held messages match, which,
// and what confirming will do to them.
func (p *Pages) bulkConfirm(c *call, f review.Filter, act review.BulkAction, pg bulkPage, dry review.BulkResult) confirmPage {
	back := withQuery(Base+"/bulk", pg.Query.values())
	cp := confirmPage{NavTo: "bulk", Cancel: back, Action: Base + "/bulk", ListIDs: true}
	what := "Delete"
	if act.Kind == review.BulkRelease {
		what = "Release"
	}
	cp.Heading = fmt.Sprintf("%s %s?", what, plural(dry.Matched, "held message"))
	cp.Lines = append(cp.Lines, fmt.Sprintf("Dry run: %s match%s the filter %s.", plural(dry.Matched, "held message"), verbS(dry.Matched), f.String()))
	if dry.Matched == 0 {
		cp.Heading = "Nothing matches"
		cp.Lines = append(cp.Lines, "Change the filter and count again.")
		return cp
	}
	if dry.Matched > review.MaxBulk {
		cp.Warning = fmt.Sprintf("A bulk action applies to at most %d messages: narrow the filter.", review.MaxBulk)
		return cp
	}
	switch act.Kind {
	case review.BulkRelease:
		rw := act.Release.Rewrite
		if rw == "" {
			rw = store.RewriteExplode.Name()
		}
		cp.Lines = append(cp.Lines, fmt.Sprintf("Each is released as %s: %s.", rw, rewriteText(rw)))
		cp.Button = fmt.Sprintf("Release %s as %s", plural(dry.Matched, "message"), rw)
		if rw == store.RewritePass.Name() {
			cp.Danger = true
			cp.Warning = "Forced release as-is: every recipient of every one of these messages sees its whole recipient list."
		}
		if f.Rule != "" && p.svc.FourEyes(f.Rule) {
			cp.Lines = append(cp.Lines, fmt.Sprintf("Rule %s is under the four-eyes rule: each release by you records an approval, and a second reviewer must release them too.", f.Rule))
		}
	case review.BulkDelete:
		cp.Danger = true
		cp.Lines = append(cp.Lines, "Their bodies are removed for good; their records stay, as deleted, for the audit log.")
		if act.Delete.NotifySender {
			cp.Lines = append(cp.Lines, "Each sender is told that a reviewer deleted the message.")
		}
		cp.Button = fmt.Sprintf("Delete %s", plural(dry.Matched, "message"))
	}
	cp.Lines = append(cp.Lines, "Each message is acted on and audited one by one, and the bulk action gets its own audit entry.")
	cp.List = dry.IDs
	if len(cp.List) > bulkListShown {
		cp.ListMore = len(cp.List) - bulkListShown
		cp.List = cp.List[:bulkListShown]
	}
	cp.Hidden = []hiddenField{{"action", act.Kind}, {"confirm", "yes"}, {"expect", strconv.Itoa(dry.Matched)}}
	for _, k := range []string{"rule", "sender", "client_ip", "user", "older_than"} {
		if v := filterField(pg.Query, k); v != "" {
			cp.Hidden = append(cp.Hidden, hiddenField{k, v})
		}
	}
	if act.Kind == review.BulkRelease {
		cp.Hidden = append(cp.Hidden, hiddenField{"rewrite", act.Release.Rewrite})
		if act.Release.Force {
			cp.Hidden = append(cp.Hidden, hiddenField{"force", "1"})
		}
	} else if act.Delete.NotifySender {
		cp.Hidden = append(cp.Hidden, hiddenField{"notify", "1"})
	}
	return cp
}

func (p *Pages) applyBulk(w http.ResponseWriter, r *http.Request, c *call, f review.Filter, act review.BulkAction, fq url.Values) {
	res, err := p.svc.Bulk(r.Context(), c.actor, f, act, false)
	if err != nil {
		p.serviceError(w, r, c, err)
		return
	}
	kind := "ok"
	msg := fmt.Sprintf("Bulk %s (%s): %d matched, %d done, %d failed.", act.Kind, res.Filter, res.Matched, res.Succeeded, res.Failed)
	approvals := 0
	for _, o := range res.Outcomes {
		if o.Status == review.StatusNeedsSecondReviewer {
			approvals++
		}
	}
	if approvals > 0 {
		kind = "warn"
		msg += fmt.Sprintf(" %s only recorded your approval: a second reviewer must release them too.", plural(approvals, "release"))
	}
	if res.Failed > 0 {
		kind = "warn"
		for _, o := range res.Outcomes {
			if o.Error != nil {
				msg += " First failure: " + o.ID + ": " + sentence(o.Error.Message)
				break
			}
		}
	}
	p.flashAndRedirect(w, r, c, kind, msg, withQuery(Base, fq))
}

func filterField(f filterForm, k string) string {
	switch k {
	case "rule":
		return f.Rule
	case "sender":
		return f.Sender
	case "client_ip":
		return f.ClientIP
	case "user":
		return f.User
	case "older_than":
		return f.OlderThan
	}
	return ""
}

func verbS(n int) string {
	if n == 1 {
		return "es"
	}
	return ""
}
