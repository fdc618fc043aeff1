package web

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/store"
)

// auditLimit is how many audit entries one page shows.
const auditLimit = 50

type auditPage struct {
	Actor, Target string
	Entries       []store.AuditEntry
	Newer, Older  string
	ExportURL     string
	ClearURL      string
}

func (auditPage) title() string { return "Audit log" }
func (auditPage) nav() string   { return "audit" }

func auditFilter(q url.Values) (store.AuditFilter, url.Values) {
	f := store.AuditFilter{Actor: q.Get("actor"), Target: q.Get("target")}
	v := url.Values{}
	if f.Actor != "" {
		v.Set("actor", f.Actor)
	}
	if f.Target != "" {
		v.Set("target", f.Target)
	}
	return f, v
}

func (p *Pages) audit(w http.ResponseWriter, r *http.Request, c *call) {
	q := r.URL.Query()
	f, v := auditFilter(q)
	offset, _ := strconv.Atoi(q.Get("offset"))
	f.Offset, f.Limit = max(0, offset), auditLimit
	es, err := p.svc.Audit(r.Context(), c.actor, f)
	if err != nil {
		p.serviceError(w, r, c, err)
		return
	}
	pg := auditPage{Actor: f.Actor, Target: f.Target, Entries: es,
		ExportURL: withQuery(Base+"/audit.jsonl", v), ClearURL: Base + "/audit"}
	if f.Offset > 0 {
		nv := cloneValues(v)
		if o := max(0, f.Offset-auditLimit); o > 0 {
			nv.Set("offset", strconv.Itoa(o))
		}
		pg.Newer = withQuery(Base+"/audit", nv)
	}
	if len(es) == auditLimit {
		nv := cloneValues(v)
		nv.Set("offset", strconv.Itoa(f.Offset+auditLimit))
		pg.Older = withQuery(Base+"/audit", nv)
	}
	p.render(w, r, http.StatusOK, "audit", c, pg)
}

// auditExport downloads every entry matching the filter as JSON lines, as
// the API's format=jsonl does.
func (p *Pages) auditExport(w http.ResponseWriter, r *http.Request, c *call) {
	f, _ := auditFilter(r.URL.Query())
	if !c.actor.CanView() {
		p.serviceError(w, r, c, &review.Error{Code: review.CodeForbidden, Message: "no role that may read the audit log"})
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", `attachment; filename="bccguard-audit.jsonl"`)
	// Once streaming has begun the status is sent; a failure ends the
	// stream early and is in the log and the audit entry.
	_ = p.svc.ExportAudit(r.Context(), c.actor, w, f)
}
