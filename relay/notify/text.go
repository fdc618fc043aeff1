package notify

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// summary is an event in one line, for people: the webhook's "text", a
// chat message, an email's first line.
func summary(ev *Event) string { return oneLineOf(ev, true) }

// headline is summary without the figures, short enough for a Subject:
// (the email's body has the figures).
func headline(ev *Event) string { return oneLineOf(ev, false) }

func oneLineOf(ev *Event, withFigures bool) string {
	var b strings.Builder
	m := ev.Message
	r := ev.Review
	if r == nil {
		r = &Review{Actor: "a reviewer"}
	}
	switch ev.Event {
	case EventHeld:
		if ev.Monitor {
			b.WriteString("Would have been held (monitor mode, relayed)")
		} else {
			b.WriteString("Held for review")
		}
	case EventNeedsSecondReviewer:
		fmt.Fprintf(&b, "Approved by %s, waiting for a second reviewer", r.Actor)
	case EventReleased:
		fmt.Fprintf(&b, "Released by %s (%s)", r.Actor, r.Action)
	case EventDeleted:
		fmt.Fprintf(&b, "Deleted by %s", r.Actor)
	case EventExpired:
		what := "deleted"
		if r.Action == "expire-release" {
			what = "released"
		}
		fmt.Fprintf(&b, "Expired unreviewed and %s", what)
	case EventDigest:
		d := ev.Digest
		fmt.Fprintf(&b, "Still held for review: %d message%s", d.Held, plural(d.Held))
		if len(d.ByRule) > 0 {
			b.WriteString(" (" + byRule(d.ByRule) + ")")
		}
		if !d.Oldest.IsZero() {
			fmt.Fprintf(&b, ", the oldest for %s", age(ev.At.Sub(d.Oldest)))
		}
		return b.String()
	case EventTest:
		return fmt.Sprintf("Test notification from bccguard on %s: this channel works.", ev.Host)
	}
	if m != nil {
		fmt.Fprintf(&b, ": %q from %s", m.Subject, orNull(m.Sender))
		if m.AuthUser != "" {
			fmt.Fprintf(&b, " (AUTH %s)", m.AuthUser)
		}
		fmt.Fprintf(&b, " to %d recipient%s", m.Recipients, plural(m.Recipients))
		if m.Rule != "" {
			fmt.Fprintf(&b, ", rule %s", m.Rule)
		}
		if f := figures(m.Figures); f != "" && withFigures {
			b.WriteString(" (" + f + ")")
		}
	}
	return b.String()
}

// details is an event as the lines of an email or chat message: the
// summary, then each fact on its own line.
func details(ev *Event) string {
	var b strings.Builder
	b.WriteString(summary(ev))
	b.WriteString("\n\n")
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-11s %s\n", k+":", v)
		}
	}
	if m := ev.Message; m != nil {
		line("Subject", fmt.Sprintf("%q", m.Subject))
		line("Sender", orNull(m.Sender))
		line("AUTH user", m.AuthUser)
		line("Recipients", fmt.Sprint(m.Recipients))
		line("Rule", m.Rule)
		line("Reason", m.Reason)
		line("Figures", figures(m.Figures))
		line("Received", m.ReceivedAt.UTC().Format(time.RFC3339))
		if !m.ExpiresAt.IsZero() && (ev.Event == EventHeld || ev.Event == EventNeedsSecondReviewer) {
			line("Expires", m.ExpiresAt.UTC().Format(time.RFC3339))
		}
		line("Queue ID", m.QueueID)
	}
	if r := ev.Review; r != nil {
		line("Reviewer", r.Actor)
		line("Action", r.Action)
	}
	if d := ev.Digest; d != nil {
		for _, it := range d.Items {
			fmt.Fprintf(&b, "- %s %q from %s, rule %s, %d recipient%s, held %s",
				it.QueueID, it.Subject, orNull(it.Sender), it.Rule, it.Recipients, plural(it.Recipients), age(ev.At.Sub(it.ReceivedAt)))
			if it.Link != "" {
				b.WriteString(" " + it.Link)
			}
			b.WriteByte('\n')
		}
		if n := d.Held - len(d.Items); n > 0 {
			fmt.Fprintf(&b, "- and %d more\n", n)
		}
	}
	if ev.Link != "" {
		b.WriteString("\nReview: " + ev.Link + "\n")
	}
	if ev.Monitor {
		b.WriteString("\nThe policy is in monitor mode: the message was relayed, nothing waits for review.\n")
	}
	return b.String()
}

// figures lists the figures in a stable order.
func figures(f map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(f)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, f[k]))
	}
	return strings.Join(parts, ", ")
}

func byRule(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func orNull(sender string) string {
	if sender == "" {
		return "<>"
	}
	return sender
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// age is a duration as people say it.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d.Round(time.Hour).Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Round(24*time.Hour).Hours()/24))
}
