package web

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/bccguard/bccguard/policy"
	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/store"
)

// maxVisibleShown bounds the visible recipient table; the .eml download
// has them all.
const maxVisibleShown = 500

type figure struct {
	Key     string
	Label   string
	Value   int
	Trigger bool // the rule's reason names it
}

type detailPage struct {
	D           review.Detail
	Figures     []figure
	Visible     []store.VisibleRecipient
	VisibleMore int
	TopCount    int // the largest domain count, the meters' maximum
	Held        bool
	CanAct      bool // a reviewer, and the message is held
	// Four-eyes state: Approvals by others and whether this actor approved.
	Approved       bool
	OtherApprovals []store.Approval
	DefaultRewrite string
}

func (d detailPage) title() string {
	if d.D.Subject != "" {
		return d.D.Subject
	}
	return "Message " + d.D.ID
}
func (detailPage) nav() string { return "list" }

// Rewrites are the release form's choices.
func (detailPage) Rewrites() []string {
	var out []string
	for _, rw := range store.Rewrites() {
		out = append(out, rw.Name())
	}
	return out
}

func (p *Pages) detail(w http.ResponseWriter, r *http.Request, c *call) {
	d, err := p.svc.Show(r.Context(), c.actor, r.PathValue("id"))
	if err != nil {
		p.serviceError(w, r, c, err)
		return
	}
	pg := detailPage{D: d, Held: d.State == store.HoldHeld, DefaultRewrite: store.RewriteExplode.Name()}
	pg.CanAct = pg.Held && c.actor.CanReview()
	// The policy's figures first, as its table orders and labels them;
	// then any others (a rate limit's), by name.
	known := map[string]bool{}
	for _, f := range policy.FigureTable {
		known[f.Name] = true
		if v, ok := d.Figures[f.Name]; ok {
			pg.Figures = append(pg.Figures, figure{Key: f.Name, Label: f.Label, Value: v, Trigger: strings.Contains(d.Reason, f.Name)})
		}
	}
	var extra []string
	for k := range d.Figures {
		if !known[k] {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	for _, k := range extra {
		pg.Figures = append(pg.Figures, figure{Key: k, Label: k, Value: d.Figures[k], Trigger: strings.Contains(d.Reason, k)})
	}
	pg.Visible = d.VisibleRecipients
	if len(pg.Visible) > maxVisibleShown {
		pg.VisibleMore = len(pg.Visible) - maxVisibleShown
		pg.Visible = pg.Visible[:maxVisibleShown]
	}
	for _, dc := range d.VisibleCounts.TopDomains {
		pg.TopCount = max(pg.TopCount, dc.Count)
	}
	for _, a := range d.Approvals {
		if a.Actor == c.actor.Name {
			pg.Approved = true
		} else {
			pg.OtherApprovals = append(pg.OtherApprovals, a)
			// A second reviewer completes the release only with the
			// rewrite the first approved, so it is preselected.
			pg.DefaultRewrite = a.Rewrite.Name()
		}
	}
	p.render(w, r, http.StatusOK, "detail", c, pg)
}

func (p *Pages) raw(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	rc, err := p.svc.Raw(r.Context(), c.actor, id)
	if err != nil {
		p.serviceError(w, r, c, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "message/rfc822")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": id + ".eml"}))
	_, _ = io.Copy(w, rc)
}

// confirmPage asks before an action is done: it repeats what will happen
// and posts the same fields again with confirm=yes.
type confirmPage struct {
	Heading  string
	Subject  string
	Lines    []string
	Warning  string
	List     []string // recipients, or message IDs for bulk (linked)
	ListIDs  bool
	ListMore int
	Action   string
	Hidden   []hiddenField
	Button   string
	Danger   bool
	Cancel   string
	NavTo    string
}

type hiddenField struct{ Name, Value string }

func (c confirmPage) title() string { return c.Heading }
func (c confirmPage) nav() string   { return c.NavTo }

func (p *Pages) release(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	f := r.PostForm
	o := review.ReleaseOptions{
		Rewrite:    f.Get("rewrite"),
		Force:      f.Get("force") != "",
		Recipients: nonEmpty(f["rcpt"]),
	}
	if o.Rewrite == "" {
		o.Rewrite = store.RewriteExplode.Name()
	}
	if f.Get("confirm") != "yes" {
		p.confirmRelease(w, r, c, id, o)
		return
	}
	res, err := p.svc.Release(r.Context(), c.actor, id, o)
	if err != nil {
		p.actionError(w, r, c, id, err)
		return
	}
	if res.Status == review.StatusNeedsSecondReviewer {
		p.flashAndRedirect(w, r, c, "warn", fmt.Sprintf("Your approval to release as %s is recorded. "+
			"Under the four-eyes rule a second reviewer must release it too.", res.Rewrite), detailURL(id))
		return
	}
	msg := fmt.Sprintf("Released as %s to %s: %s queued.", res.Rewrite, plural(res.Recipients, "recipient"), copiesOf(res.Deliveries))
	p.flashAndRedirect(w, r, c, "ok", msg, detailURL(id))
}

func (p *Pages) confirmRelease(w http.ResponseWriter, r *http.Request, c *call, id string, o review.ReleaseOptions) {
	if !p.requireReviewer(w, r, c) {
		return
	}
	d, err := p.svc.Show(r.Context(), c.actor, id)
	if err != nil {
		p.serviceError(w, r, c, err)
		return
	}
	back := detailURL(id)
	rw, known := store.RewriteNamed(o.Rewrite)
	switch {
	case d.State != store.HoldHeld:
		p.flashAndRedirect(w, r, c, "error", fmt.Sprintf("This message is %s: there is nothing to release.", d.State), back)
		return
	case !known:
		p.flashAndRedirect(w, r, c, "error", "Choose how to release: explode, bcc or as-is.", back)
		return
	case rw == store.RewritePass && !o.Force:
		p.flashAndRedirect(w, r, c, "error", "Releasing as-is shows every recipient to every other: tick “force” to do it anyway.", back)
		return
	}
	n := len(d.EnvelopeRecipients)
	if len(o.Recipients) > 0 {
		n = len(o.Recipients)
	}
	pg := confirmPage{
		Heading: "Release this message?", Subject: d.Subject, NavTo: "list",
		Action: detailURL(id) + "/release", Cancel: back,
		Button: "Release as " + o.Rewrite,
		Hidden: []hiddenField{{"rewrite", o.Rewrite}, {"confirm", "yes"}},
	}
	switch rw {
	case store.RewriteExplode:
		pg.Lines = append(pg.Lines, fmt.Sprintf("%s will be sent: one per recipient, each with only its own recipient in To: (Cc: removed).", copiesOf(n)))
	case store.RewriteBcc:
		pg.Lines = append(pg.Lines, fmt.Sprintf("One copy will be sent to %s with To: undisclosed-recipients:; and no Cc:.", plural(n, "recipient")))
	case store.RewritePass:
		pg.Danger = true
		pg.Hidden = append(pg.Hidden, hiddenField{"force", "1"})
		pg.Warning = fmt.Sprintf("Forced release as-is: the message goes out unchanged, and every one of its %s sees all %s shown in To:/Cc:. This is recorded as forced in the audit log.",
			plural(n, "recipient"), plural(d.VisibleCounts.Total, "visible address"))
	}
	if o.Force && rw != store.RewritePass {
		pg.Danger = true
		pg.Hidden = append(pg.Hidden, hiddenField{"force", "1"})
		pg.Warning = "Forced: the copies go out even if a header field they cannot clean still shows other recipients. This is recorded as forced in the audit log."
	}
	if len(o.Recipients) > 0 {
		pg.Lines = append(pg.Lines, fmt.Sprintf("Only the %d chosen of the %s get it:", len(o.Recipients), plural(len(d.EnvelopeRecipients), "envelope recipient")))
		for _, x := range o.Recipients {
			pg.Hidden = append(pg.Hidden, hiddenField{"rcpt", x})
		}
		pg.List = o.Recipients
	} else {
		pg.Lines = append(pg.Lines, fmt.Sprintf("All %s get it.", plural(n, "envelope recipient")))
	}
	if d.FourEyes {
		other := slices.IndexFunc(d.Approvals, func(a store.Approval) bool {
			return a.Actor != c.actor.Name && a.Rewrite == rw
		})
		if other >= 0 {
			pg.Lines = append(pg.Lines, fmt.Sprintf("Four-eyes rule: %s approved this release; yours completes it.", d.Approvals[other].Actor))
		} else {
			pg.Lines = append(pg.Lines, "Four-eyes rule: your release is recorded as the first approval; nothing is sent until a second reviewer releases it the same way.")
			pg.Button = "Approve release as " + o.Rewrite
		}
	}
	p.render(w, r, http.StatusOK, "confirm", c, pg)
}

func copiesOf(n int) string {
	if n == 1 {
		return "1 copy"
	}
	return fmt.Sprintf("%d copies", n)
}

func (p *Pages) delete(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	o := review.DeleteOptions{NotifySender: r.PostForm.Get("notify") != ""}
	if r.PostForm.Get("confirm") != "yes" {
		if !p.requireReviewer(w, r, c) {
			return
		}
		d, err := p.svc.Show(r.Context(), c.actor, id)
		if err != nil {
			p.serviceError(w, r, c, err)
			return
		}
		if d.State != store.HoldHeld {
			p.flashAndRedirect(w, r, c, "error", fmt.Sprintf("This message is %s: there is nothing to delete.", d.State), detailURL(id))
			return
		}
		pg := confirmPage{
			Heading: "Delete this message?", Subject: d.Subject, NavTo: "list", Danger: true,
			Action: detailURL(id) + "/delete", Cancel: detailURL(id), Button: "Delete",
			Hidden: []hiddenField{{"confirm", "yes"}},
			Lines:  []string{"Its body is removed for good and nothing is sent to its recipients. Its record stays, as deleted, for the audit log."},
		}
		switch {
		case o.NotifySender && d.Sender == "":
			pg.Lines = append(pg.Lines, "The message has the null sender: no one can be told.")
		case o.NotifySender:
			pg.Hidden = append(pg.Hidden, hiddenField{"notify", "1"})
			pg.Lines = append(pg.Lines, "The sender, "+d.Sender+", is told that a reviewer deleted it (the notice names its subject and date, not its recipients).")
		default:
			pg.Lines = append(pg.Lines, "The sender is not told.")
		}
		p.render(w, r, http.StatusOK, "confirm", c, pg)
		return
	}
	res, err := p.svc.Delete(r.Context(), c.actor, id, o)
	if err != nil {
		p.actionError(w, r, c, id, err)
		return
	}
	msg := "Deleted."
	switch {
	case res.NoticeQueued:
		msg = "Deleted. A notice to the sender is queued."
	case res.Note != "":
		msg = "Deleted; " + res.Note + "."
	}
	p.flashAndRedirect(w, r, c, "ok", msg, detailURL(id))
}

// actionError answers a failed release or delete: refusals of the actor
// and unknown messages as error pages, anything else (already released,
// the four-eyes rule, bad input) as a message on the detail page.
func (p *Pages) actionError(w http.ResponseWriter, r *http.Request, c *call, id string, err error) {
	switch review.CodeOf(err) {
	case review.CodeUnauthorized, review.CodeForbidden, review.CodeNotFound, review.CodeInternal:
		p.serviceError(w, r, c, err)
	default:
		p.flashAndRedirect(w, r, c, "error", sentence(errMessage(err)), detailURL(id))
	}
}

func nonEmpty(xs []string) []string {
	var out []string
	for _, x := range xs {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
