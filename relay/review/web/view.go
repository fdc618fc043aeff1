package web

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/store"
)

// pageNames are the templates in templates/, each rendered inside
// layout.html.
var pageNames = []string{"signin", "list", "detail", "confirm", "bulk", "audit", "error"}

func parseTemplates() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// view is what layout.html sees; Page is the page's own data.
type view struct {
	Title string
	Nav   string // which navigation entry is current: list, bulk, audit
	Actor *review.Actor
	CSRF  string
	Flash *flash
	Now   time.Time
	Page  any
}

type errorPage struct {
	Title   string
	Message string
	Back    string // a link back, if any
}

// render executes a page into a buffer first, so a template error becomes
// a clean 500 and never half a page.
func (p *Pages) render(w http.ResponseWriter, r *http.Request, status int, name string, c *call, page any) {
	v := view{Page: page, Now: p.now()}
	switch pg := page.(type) {
	case errorPage:
		v.Title = pg.Title
	case interface{ title() string }:
		v.Title = pg.title()
	}
	if c != nil {
		a := c.actor
		v.Actor, v.CSRF = &a, c.sess.csrf
		v.Flash = p.sessions.takeFlash(c.id)
	}
	if nav, ok := page.(interface{ nav() string }); ok {
		v.Nav = nav.nav()
	}
	var b bytes.Buffer
	if err := p.tmpl[name].Execute(&b, v); err != nil {
		p.log.Error("review page: template failed", "page", name, "err", err)
		http.Error(w, "internal error: the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b.Bytes())
	}
}

// fail answers with an error page.
func (p *Pages) fail(w http.ResponseWriter, r *http.Request, c *call, status int, msg string) {
	title := http.StatusText(status)
	switch status {
	case http.StatusForbidden:
		title = "Not allowed"
	case http.StatusNotFound:
		title = "Not found"
	case http.StatusConflict:
		title = "Not possible any more"
	case http.StatusGone:
		title = "No longer stored"
	}
	p.render(w, r, status, "error", c, errorPage{Title: title, Message: msg, Back: Base})
}

var funcs = template.FuncMap{
	"when":        when,
	"ago":         ago,
	"until":       until,
	"bytes":       humanBytes,
	"detailURL":   detailURL,
	"rawURL":      func(id string) string { return detailURL(id) + "/raw" },
	"actionURL":   func(id, action string) string { return detailURL(id) + "/" + action },
	"rewriteText": rewriteText,
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return fmt.Sprintf("%d %s", n, one)
		}
		return fmt.Sprintf("%d %s", n, many)
	},
	"sender": func(s string) string {
		if s == "" {
			return "<> (null sender)"
		}
		return s
	},
	"orDash": func(s string) string {
		if strings.TrimSpace(s) == "" {
			return "—"
		}
		return s
	},
	"add": func(a, b int) int { return a + b },
	"ruleURL": func(rule string) string {
		return Base + "?" + url.Values{"rule": {rule}}.Encode()
	},
	"auditActorURL": func(actor string) string {
		return Base + "/audit?" + url.Values{"actor": {actor}}.Encode()
	},
	"isMessageID": isMessageID,
}

// when formats a time for people: UTC, to the minute.
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// ago says how long before now t was, roughly ("3 h ago").
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t)
	if d < 0 {
		return "just now"
	}
	return roughly(d) + " ago"
}

// until says how long after now t is ("in 29 days"), or that it passed.
func until(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := t.Sub(now)
	if d <= 0 {
		return "now"
	}
	return "in " + roughly(d)
}

func roughly(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "less than a minute"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour")
	default:
		return plural(int(d/(24*time.Hour)), "day")
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

func humanBytes(n int64) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/1024)
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}

// rewriteText explains a rewrite in a few words.
func rewriteText(rw string) string {
	r, _ := store.RewriteNamed(rw)
	switch r {
	case store.RewriteExplode:
		return "one copy per recipient, each showing only its own address"
	case store.RewriteBcc:
		return "one copy, To: undisclosed-recipients:;"
	case store.RewritePass:
		return "unchanged: every recipient sees the whole list"
	}
	return rw
}

// isMessageID reports whether an audit target looks like a message ID
// (and not a bulk filter or "audit"), to link it to its page.
func isMessageID(s string) bool {
	if len(s) < 8 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
