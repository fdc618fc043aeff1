package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bccguard/bccguard/relay/control"
	"github.com/bccguard/bccguard/relay/queueadmin"
	"github.com/bccguard/bccguard/relay/review"
	"github.com/bccguard/bccguard/relay/store"
)

const queueUsage = `usage: bccguard queue COMMAND [--data-dir DIR | --config FILE] ...
  list [--state queued,deferred,held,...] [--json]
  flush                       retries every deferred delivery now (postqueue -f)
  show ID [--json]            envelope, each recipient's state, attempts, last reply, next try
  cat ID                      writes the stored original (.eml) to standard output
  hold ID... [--json]         not attempted, and not aging towards the queue lifetime, until released
  release ID... [--json]      held deliveries are due now
  requeue ID... [--json]      every unfinished delivery due now, retry backoff started over
  delete ID... [--dry-run] [--notify-sender] [--json]
  delete --all [--state S,...] [--sender ADDR|'<>'] [--yes] [--notify-sender] [--json]
                              without --yes only lists what it would delete
IDs are message IDs ("queued as ID"). Actions are audited as "cli:" and your Unix user.`

// queueFlags are the flags of the queue subcommands.
type queueFlags struct {
	fs                          *flag.FlagSet
	cfgPath, dataDir            string
	asJSON, dryRun, notify, yes bool
	all                         bool
	state, sender               string
}

func newQueueFlags(name string) *queueFlags {
	q := &queueFlags{fs: newFlags("queue " + name)}
	fs := q.fs
	fs.StringVar(&q.cfgPath, "config", "", "configuration file of the running relay")
	fs.StringVar(&q.dataDir, "data-dir", "", "data folder of the running relay")
	fs.BoolVar(&q.asJSON, "json", false, "print JSON")
	fs.StringVar(&q.state, "state", "", "only these states (comma-separated)")
	fs.BoolVar(&q.dryRun, "dry-run", false, "only show what would be deleted")
	fs.BoolVar(&q.notify, "notify-sender", false, "send the sender a DSN for the recipients who will not get it")
	fs.BoolVar(&q.all, "all", false, "every queued message (narrowed by --state and --sender)")
	fs.StringVar(&q.sender, "sender", "", "with --all: only messages from this envelope sender ('<>' for the null sender)")
	fs.BoolVar(&q.yes, "yes", false, "with --all: delete (without it, a dry run)")
	return q
}

func (q *queueFlags) states() []store.State {
	var out []store.State
	if q.state != "" {
		for _, s := range strings.Split(q.state, ",") {
			out = append(out, store.State(strings.TrimSpace(s)))
		}
	}
	return out
}

func cmdQueue(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("queue needs a subcommand\n%s", queueUsage)
	}
	sub := args[0]
	if sub == "help" || sub == "-h" || sub == "--help" {
		fmt.Fprintln(stdout, queueUsage)
		return nil
	}
	q := newQueueFlags(sub)
	var allowed []string
	ids := "none" // none, one or many
	switch sub {
	case "list":
		allowed = []string{"json", "state"}
	case "flush":
		allowed = []string{"json", "state"}
	case "show":
		allowed, ids = []string{"json"}, "one"
	case "cat":
		ids = "one"
	case "hold", "release", "requeue":
		allowed, ids = []string{"json"}, "many"
	case "delete":
		allowed, ids = []string{"json", "dry-run", "notify-sender", "all", "state", "sender", "yes"}, "any"
	default:
		return usagef("unknown queue subcommand %q\n%s", sub, queueUsage)
	}
	pos, err := parseMixed(q.fs, args[1:], queueUsage, allowed...)
	if err != nil {
		return err
	}
	switch {
	case ids == "none" && len(pos) > 0:
		return usagef("queue %s takes no argument (got %q)\n%s", sub, pos[0], queueUsage)
	case ids == "one" && len(pos) != 1:
		return usagef("queue %s needs one message ID\n%s", sub, queueUsage)
	case ids == "many" && len(pos) == 0:
		return usagef("queue %s needs one or more message IDs\n%s", sub, queueUsage)
	case sub == "delete" && q.all == (len(pos) > 0):
		return usagef("queue delete needs message IDs, or --all (with --state and --sender to narrow it), not both\n%s", queueUsage)
	case sub == "delete" && !q.all && (q.state != "" || q.sender != "" || q.yes):
		return usagef("queue delete: --state, --sender and --yes go with --all\n%s", queueUsage)
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
		ds, err := c.List(ctx, store.Filter{States: q.states()})
		if err != nil || q.asJSON {
			return printJSON(stdout, ds, err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DELIVERY\tSTATE\tATTEMPTS\tNEXT ATTEMPT\tRECIPIENTS\tLAST ERROR")
		for _, d := range ds {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\n", d.ID, d.State, d.Attempts,
				nextText(d), len(d.Recipients), d.LastError)
		}
		return tw.Flush()
	case "flush":
		n, err := c.Flush(ctx, store.Filter{States: q.states()})
		if err != nil || q.asJSON {
			return printJSON(stdout, queueadmin.FlushResult{Flushed: n}, err)
		}
		fmt.Fprintf(stdout, "%d deferred deliveries scheduled for now\n", n)
		return nil
	case "show":
		m, err := c.QueueShow(ctx, pos[0])
		if err != nil || q.asJSON {
			return printJSON(stdout, m, err)
		}
		printQueued(stdout, m)
		return nil
	case "cat":
		return c.QueueCat(ctx, pos[0], stdout)
	case "hold", "release", "requeue":
		return queueChange(ctx, c, stdout, sub, pos, q.asJSON)
	case "delete":
		req := queueadmin.DeleteRequest{IDs: pos, All: q.all, States: q.states(), Sender: q.sender,
			DeleteOptions: queueadmin.DeleteOptions{DryRun: q.dryRun || q.all && !q.yes, NotifySender: q.notify}}
		r, err := c.QueueDelete(ctx, req)
		if err != nil {
			return err
		}
		if q.asJSON {
			err = printJSON(stdout, r, nil)
		} else {
			printDeleted(stdout, r, q.all && !q.yes && !q.dryRun)
		}
		if err == nil && r.Failed > 0 {
			err = fmt.Errorf("%d of %d not deleted", r.Failed, r.Matched)
		}
		return err
	}
	return nil
}

// queueChange holds, releases or requeues each message, going on past one
// that fails; it fails if any did.
func queueChange(ctx context.Context, c *control.Client, stdout io.Writer, action string, ids []string, asJSON bool) error {
	var results []queueadmin.Result
	failed := 0
	for _, id := range ids {
		r, err := c.QueueChange(ctx, action, id)
		if err != nil {
			var e *review.Error
			if !errors.As(err, &e) { // not an answer of the relay (no socket, …)
				return err
			}
			r = queueadmin.Result{ID: id, Action: action, Error: e}
			failed++
		}
		results = append(results, r)
	}
	if asJSON {
		if err := printJSON(stdout, results, nil); err != nil {
			return err
		}
	} else {
		past := pastTense[action]
		for _, r := range results {
			switch {
			case r.Error != nil:
				fmt.Fprintf(stdout, "%s: not %s: %s\n", r.ID, past, r.Error.Message)
			case r.Note != "":
				fmt.Fprintf(stdout, "%s: %s\n", r.ID, r.Note)
			default:
				fmt.Fprintf(stdout, "%s: %s (%d deliveries)\n", r.ID, past, r.Changed)
			}
		}
	}
	if failed > 0 {
		if len(ids) == 1 {
			return results[0].Error
		}
		return fmt.Errorf("%d of %d messages not %s", failed, len(ids), pastTense[action])
	}
	return nil
}

var pastTense = map[string]string{"hold": "held", "release": "released", "requeue": "requeued"}

func nextText(d store.Delivery) string {
	switch d.State {
	case store.StateQueued, store.StateDeferred:
		return d.NextAttempt.Local().Format(time.DateTime)
	case store.StateHeld:
		return "held since " + d.HeldSince.Local().Format(time.DateTime)
	}
	return "-"
}

func printQueued(w io.Writer, m queueadmin.Message) {
	row := func(k, format string, a ...any) { fmt.Fprintf(w, "%-10s %s\n", k+":", fmt.Sprintf(format, a...)) }
	row("ID", "%s", m.ID)
	sender := m.Envelope.Sender
	if sender == "" {
		sender = "<>"
	}
	row("Sender", "%s", sender)
	client := m.Client.IP
	if m.Client.User != "" {
		client += ", user " + m.Client.User
	}
	row("Received", "%s from %s on %s, %d bytes", m.ReceivedAt.Local().Format(time.DateTime), client, m.Client.Listener, m.Size)
	if m.Released {
		row("Released", "from the quarantine (held by %s)", m.Rule)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECIPIENT\tSTATE\tATTEMPTS\tNEXT TRY\tLAST REPLY")
	for _, r := range m.Recipients {
		next := "-"
		switch {
		case r.NextAttempt != nil:
			next = r.NextAttempt.Local().Format(time.DateTime)
		case r.HeldSince != nil:
			next = "held since " + r.HeldSince.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", r.Addr, r.State, r.Attempts, next, r.LastReply)
	}
	_ = tw.Flush()
}

func printDeleted(w io.Writer, r queueadmin.BulkResult, askYes bool) {
	for _, d := range r.Results {
		switch {
		case d.Error != nil:
			fmt.Fprintf(w, "%s: not deleted: %s\n", d.ID, d.Error.Message)
		case d.Status == queueadmin.StatusWouldDelete:
			fmt.Fprintf(w, "%s: would delete (from %s; %d recipients not delivered)\n", d.ID, orNull(d.Sender), len(d.Undelivered))
		default:
			fmt.Fprintf(w, "%s: deleted (%d recipients not delivered)", d.ID, len(d.Undelivered))
			switch {
			case d.NoticeID != "":
				fmt.Fprintf(w, "; DSN to the sender queued as %s", d.NoticeID)
			case d.Note != "":
				fmt.Fprintf(w, "; %s", d.Note)
			}
			fmt.Fprintln(w)
		}
	}
	if r.DryRun {
		fmt.Fprintf(w, "dry run (%s): %d messages would be deleted", r.Filter, r.Matched)
		if askYes {
			fmt.Fprint(w, "; add --yes to delete them")
		}
		fmt.Fprintln(w)
		return
	}
	fmt.Fprintf(w, "%d deleted, %d failed\n", r.Succeeded, r.Failed)
}

func orNull(sender string) string {
	if sender == "" {
		return "<>"
	}
	return sender
}

// resolveDataDir finds the running relay's data folder from --data-dir or
// the configuration file (default: the built-in ./data).
func resolveDataDir(cfgPath, dataDir string) (string, error) {
	if dataDir != "" {
		return dataDir, nil
	}
	c, err := loadConfig(cfgPath)
	if err != nil {
		return "", err
	}
	return c.DataDir, nil
}
