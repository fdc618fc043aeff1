package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bccguard/bccguard/relay/control"
	"github.com/bccguard/bccguard/relay/review"
)

const quarantineUsage = `usage: bccguard quarantine COMMAND [--data-dir DIR | --config FILE] ...
  list [--state held|released|deleted|expired|all] [--rule R] [--sender S]
       [--client-ip IP] [--user U] [--older-than AGE] [--limit N] [--offset N] [--json]
  show ID [--json]
  raw ID                      writes the stored message (.eml) to standard output
  release ID [--as explode|bcc|as-is] [--force] [--rcpt ADDR]... [--json]
  delete ID [--notify-sender] [--json]
  bulk-release|bulk-delete [--rule R] [--sender S] [--client-ip IP] [--user U]
       [--older-than AGE] [--dry-run] [--as MODE] [--force] [--notify-sender] [--json]
  audit [--actor A] [--target T] [--since TIME|AGE] [--limit N] [--json]
AGE is e.g. 90m, 36h or 7d. Actions are audited as "cli:" and your Unix user.`

// quarantineFlags are the flags every quarantine subcommand may take; each
// subcommand uses the ones that make sense for it and refuses the rest.
type quarantineFlags struct {
	fs                    *flag.FlagSet
	cfgPath, dataDir      string
	asJSON                bool
	state, rule, sender   string
	clientIP, user, older string
	limit, offset         int
	as                    string
	force, notify, dryRun bool
	rcpts                 []string
	actor, target, since  string
}

func newQuarantineFlags(name string) *quarantineFlags {
	q := &quarantineFlags{fs: newFlags("quarantine " + name)}
	fs := q.fs
	fs.StringVar(&q.cfgPath, "config", "", "configuration file of the running relay")
	fs.StringVar(&q.dataDir, "data-dir", "", "data folder of the running relay")
	fs.BoolVar(&q.asJSON, "json", false, "print JSON")
	fs.StringVar(&q.state, "state", "", "states to list (comma-separated, or all; default held)")
	fs.StringVar(&q.rule, "rule", "", "only holds of this policy rule")
	fs.StringVar(&q.sender, "sender", "", "only holds from this envelope sender")
	fs.StringVar(&q.clientIP, "client-ip", "", "only holds from this client IP")
	fs.StringVar(&q.user, "user", "", "only holds from this AUTH user")
	fs.StringVar(&q.older, "older-than", "", "only holds received at least this long ago (e.g. 7d)")
	fs.IntVar(&q.limit, "limit", 0, "at most this many results")
	fs.IntVar(&q.offset, "offset", 0, "skip this many results")
	fs.StringVar(&q.as, "as", "", "release as explode (default), bcc or as-is (needs --force)")
	fs.BoolVar(&q.force, "force", false, "allow releasing as-is, or copies that would still show other recipients")
	fs.BoolVar(&q.notify, "notify-sender", false, "tell the sender the message was deleted")
	fs.BoolVar(&q.dryRun, "dry-run", false, "only count what a bulk action would change")
	fs.Func("rcpt", "release to this envelope recipient only (repeatable)", func(s string) error {
		q.rcpts = append(q.rcpts, s)
		return nil
	})
	fs.StringVar(&q.actor, "actor", "", "audit entries of this actor")
	fs.StringVar(&q.target, "target", "", "audit entries about this message ID")
	fs.StringVar(&q.since, "since", "", "audit entries since this RFC 3339 time or age (e.g. 24h)")
	return q
}

// parse reads flags and positional arguments in any order (ID first or
// last), and refuses flags the subcommand does not use.
func (q *quarantineFlags) parse(args []string, allowed ...string) ([]string, error) {
	return parseMixed(q.fs, args, quarantineUsage, allowed...)
}

func (q *quarantineFlags) filter() (review.Filter, error) {
	f := review.Filter{Rule: q.rule, Sender: q.sender, ClientIP: q.clientIP, User: q.user, Offset: q.offset, Limit: q.limit}
	if q.state != "" {
		v := url.Values{"state": {q.state}}
		pf, err := review.ParseFilter(v)
		if err != nil {
			return f, usagef("--state: %v", err)
		}
		f.States, f.AllStates = pf.States, pf.AllStates
	}
	if q.older != "" {
		d, err := review.ParseAge(q.older)
		if err != nil {
			return f, usagef("--older-than: %v", err)
		}
		f.OlderThan = d
	}
	return f, nil
}

func cmdQuarantine(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("quarantine needs a subcommand\n%s", quarantineUsage)
	}
	sub := args[0]
	if sub == "help" || sub == "-h" || sub == "--help" {
		fmt.Fprintln(stdout, quarantineUsage)
		return nil
	}
	q := newQuarantineFlags(sub)
	var allowed []string
	wantIDs := 0
	switch sub {
	case "list":
		allowed = []string{"json", "state", "rule", "sender", "client-ip", "user", "older-than", "limit", "offset"}
	case "show":
		allowed, wantIDs = []string{"json"}, 1
	case "raw":
		wantIDs = 1
	case "release":
		allowed, wantIDs = []string{"json", "as", "force", "rcpt"}, 1
	case "delete":
		allowed, wantIDs = []string{"json", "notify-sender"}, 1
	case "bulk-release":
		allowed = []string{"json", "rule", "sender", "client-ip", "user", "older-than", "dry-run", "as", "force"}
	case "bulk-delete":
		allowed = []string{"json", "rule", "sender", "client-ip", "user", "older-than", "dry-run", "notify-sender"}
	case "audit":
		allowed = []string{"json", "actor", "target", "since", "limit", "offset"}
	default:
		return usagef("unknown quarantine subcommand %q\n%s", sub, quarantineUsage)
	}
	pos, err := q.parse(args[1:], allowed...)
	if err != nil {
		return err
	}
	if len(pos) != wantIDs {
		if wantIDs == 1 {
			return usagef("quarantine %s needs one message ID\n%s", sub, quarantineUsage)
		}
		return usagef("quarantine %s takes no argument (got %q)\n%s", sub, pos[0], quarantineUsage)
	}
	dir, err := resolveDataDir(q.cfgPath, q.dataDir)
	if err != nil {
		return err
	}
	c := control.NewClient(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	switch sub {
	case "list":
		f, err := q.filter()
		if err != nil {
			return err
		}
		p, err := c.QuarantineList(ctx, f)
		if err != nil || q.asJSON {
			return printJSON(stdout, p, err)
		}
		return printHoldList(stdout, p)
	case "show":
		d, err := c.QuarantineShow(ctx, pos[0])
		if err != nil || q.asJSON {
			return printJSON(stdout, d, err)
		}
		printHold(stdout, d)
		return nil
	case "raw":
		return c.QuarantineRaw(ctx, pos[0], stdout)
	case "release":
		r, err := c.QuarantineRelease(ctx, pos[0], review.ReleaseOptions{Rewrite: q.as, Recipients: q.rcpts, Force: q.force})
		if err != nil || q.asJSON {
			return printJSON(stdout, r, err)
		}
		if r.Status == review.StatusNeedsSecondReviewer {
			fmt.Fprintf(stdout, "%s: your approval is recorded; under the four-eyes rule a different reviewer must release it\n", r.ID)
			return nil
		}
		forced := ""
		if r.Forced {
			forced = " (forced)"
		}
		fmt.Fprintf(stdout, "%s: released as %s%s: %d deliveries to %d recipients queued\n", r.ID, r.Rewrite, forced, r.Deliveries, r.Recipients)
		return nil
	case "delete":
		r, err := c.QuarantineDelete(ctx, pos[0], review.DeleteOptions{NotifySender: q.notify})
		if err != nil || q.asJSON {
			return printJSON(stdout, r, err)
		}
		fmt.Fprintf(stdout, "%s: deleted", r.ID)
		if r.NoticeQueued {
			fmt.Fprint(stdout, "; the sender will be notified")
		}
		if r.Note != "" {
			fmt.Fprint(stdout, "; ", r.Note)
		}
		fmt.Fprintln(stdout)
		return nil
	case "bulk-release", "bulk-delete":
		req := review.BulkRequest{
			Filter: review.BulkFilter{Rule: q.rule, Sender: q.sender, ClientIP: q.clientIP, User: q.user, OlderThan: q.older},
			Action: strings.TrimPrefix(sub, "bulk-"), DryRun: q.dryRun,
			Rewrite: q.as, Force: q.force, NotifySender: q.notify,
		}
		r, err := c.QuarantineBulk(ctx, req)
		if err != nil || q.asJSON {
			return printJSON(stdout, r, err)
		}
		return printBulk(stdout, r)
	case "audit":
		v := url.Values{}
		for k, x := range map[string]string{"actor": q.actor, "target": q.target, "since": q.since} {
			if x != "" {
				v.Set(k, x)
			}
		}
		if q.limit > 0 {
			v.Set("limit", fmt.Sprint(q.limit))
		}
		if q.offset > 0 {
			v.Set("offset", fmt.Sprint(q.offset))
		}
		es, err := c.Audit(ctx, v)
		if err != nil || q.asJSON {
			return printJSON(stdout, es, err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tTARGET\tOUTCOME\tDETAIL")
		for _, e := range es {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.At.Local().Format(time.DateTime), e.Actor, e.Action, e.Target, e.Outcome, e.Detail)
		}
		return tw.Flush()
	}
	return nil
}

func printJSON(w io.Writer, v any, err error) error {
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printHoldList(w io.Writer, p review.Page) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tRECEIVED\tRULE\tSENDER\tRCPTS\tVISIBLE\tSUBJECT")
	for _, h := range p.Items {
		sender := h.Sender
		if sender == "" {
			sender = "<>"
		}
		subj, _ := cut(h.Subject, 60)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", h.ID, h.State, h.ReceivedAt.Local().Format(time.DateTime),
			h.Rule, sender, h.Recipients, h.Visible, subj)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d of %d shown\n", len(p.Items), p.Total)
	return nil
}

// maxShownVisible caps the visible recipients listed in text output;
// --json has them all.
const maxShownVisible = 50

func printHold(w io.Writer, d review.Detail) {
	row := func(k, format string, a ...any) { fmt.Fprintf(w, "%-12s %s\n", k+":", fmt.Sprintf(format, a...)) }
	row("ID", "%s", d.ID)
	state := string(d.State)
	if d.State == "held" {
		state += ", expires " + d.ExpiresAt.Local().Format(time.DateTime)
	}
	row("State", "%s", state)
	row("Held by", "%s: %s", d.Rule, d.Reason)
	client := d.Client.IP
	if d.Client.User != "" {
		client += ", user " + d.Client.User
	}
	row("Received", "%s from %s on %s", d.ReceivedAt.Local().Format(time.DateTime), client, d.Client.Listener)
	sender := d.Sender
	if sender == "" {
		sender = "<>"
	}
	row("Sender", "%s", sender)
	for _, f := range [][2]string{{"From", d.From}, {"Subject", d.Subject}, {"Date", d.Date}} {
		if f[1] != "" {
			row(f[0], "%s", f[1])
		}
	}
	vc := d.VisibleCounts
	row("Recipients", "%d in the envelope; %d visible (To %d, Cc %d) at %d domains", d.Recipients, vc.Total, vc.To, vc.Cc, vc.Domains)
	if len(d.Figures) > 0 {
		keys := make([]string, 0, len(d.Figures))
		for k := range d.Figures {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%d", k, d.Figures[k]))
		}
		row("Figures", "%s", strings.Join(parts, " "))
	}
	if lines := d.Contains.Summary(); len(lines) > 0 {
		fmt.Fprintln(w, "\nWhat it contains (samples masked; the .eml download has everything):")
		for _, l := range lines {
			fmt.Fprintln(w, "  "+l)
		}
		fmt.Fprintln(w)
	}
	if d.FourEyes {
		var by []string
		for _, a := range d.Approvals {
			by = append(by, fmt.Sprintf("%s (%s)", a.Actor, a.Rewrite))
		}
		row("Four-eyes", "two reviewers needed; approved by: %s", orNone(strings.Join(by, ", ")))
	}
	if r := d.Resolution; r != nil {
		row("Resolution", "%s by %s at %s %s", r.Action, r.Actor, r.At.Local().Format(time.DateTime), r.Note)
	}
	if len(d.VisibleRecipients) > 0 {
		fmt.Fprintln(w, "\nVisible recipients (whom every copy would have shown):")
		for i, v := range d.VisibleRecipients {
			if i == maxShownVisible {
				fmt.Fprintf(w, "  ... and %d more (--json lists them all)\n", len(d.VisibleRecipients)-i)
				break
			}
			name := ""
			if v.Name != "" {
				name = fmt.Sprintf("%q ", v.Name)
			}
			fmt.Fprintf(w, "  %-3s %s<%s>\n", v.Field, name, v.Address)
		}
	}
	fmt.Fprintf(w, "\nPreview (%s):\n", orNone(d.Preview.Source))
	if d.Preview.Text == "" {
		fmt.Fprintf(w, "  (%s)\n", orNone(d.Preview.Note))
	}
	for line := range strings.Lines(d.Preview.Text) {
		fmt.Fprintf(w, "  %s", strings.TrimRight(line, "\n")+"\n")
	}
	if d.Preview.Truncated {
		fmt.Fprintln(w, "  [...]")
	}
}

func printBulk(w io.Writer, r review.BulkResult) error {
	if r.DryRun {
		fmt.Fprintf(w, "dry run: %s would apply to %d held messages (filter: %s)\n", r.Action, r.Matched, r.Filter)
		for _, id := range r.IDs {
			fmt.Fprintln(w, "  "+id)
		}
		return nil
	}
	for _, o := range r.Outcomes {
		if o.Error != nil {
			fmt.Fprintf(w, "  %s: failed: %s\n", o.ID, o.Error.Message)
		} else {
			fmt.Fprintf(w, "  %s: %s\n", o.ID, o.Status)
		}
	}
	fmt.Fprintf(w, "bulk %s (filter: %s): %d matched, %d done, %d failed\n", r.Action, r.Filter, r.Matched, r.Succeeded, r.Failed)
	if r.Failed > 0 {
		return fmt.Errorf("%d of %d failed", r.Failed, r.Matched)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// cut shortens s to n runes for a table column.
func cut(s string, n int) (string, bool) {
	r := []rune(s)
	if len(r) <= n {
		return s, false
	}
	return string(r[:n-1]) + "…", true
}
