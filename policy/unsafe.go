package policy

import (
	"fmt"
	"strings"

	"github.com/bccguard/bccguard/relay/rewrite/edits"
	"github.com/bccguard/bccguard/relay/store"
)

// UnsafeCopyRule is the Decision.Rule of a message whose explode or bcc
// copies cannot be made safe, held (or refused) instead (on_unsafe_copy).
const UnsafeCopyRule = "unsafe-copy"

// UnsafeCopy is the on_unsafe_copy setting: what happens to a message
// whose explode or bcc copies cannot be made safe.
type UnsafeCopy string

// on_unsafe_copy settings.
const (
	UnsafeQuarantine UnsafeCopy = "quarantine" // hold it for review (the default)
	UnsafeReject     UnsafeCopy = "reject"     // refuse it (550)
	UnsafeAllow      UnsafeCopy = "allow"      // make the copies anyway; only record the guard
)

// ParseUnsafeCopy reads on_unsafe_copy, in any case.
func ParseUnsafeCopy(s string) (UnsafeCopy, error) {
	switch u := UnsafeCopy(strings.ToLower(strings.TrimSpace(s))); u {
	case UnsafeQuarantine, UnsafeReject, UnsafeAllow:
		return u, nil
	}
	return "", fmt.Errorf("expected quarantine, reject or allow, not %q", s)
}

// action is the decision the guard makes where it applies: with allow it
// is only recorded, as the quarantine it would have been.
func (u UnsafeCopy) action() Action {
	if u == UnsafeReject {
		return Reject
	}
	return Quarantine
}

// unsafeCopy says why the copies that action (explode or bcc) would make of
// the message would still show another recipient, "" when every copy can
// be made clean. A rewrite changes only the header, so a body or
// attachment that shows another recipient shows them in every copy. The
// header check is the rewrite's own table (package edits): a field the
// copies keep as it is, or an address list they cannot clean, that shows a
// recipient other than the copy's own.
func unsafeCopy(f *facts, action Action) string {
	if n := f.otherShown(); n > 0 {
		return fmt.Sprintf("the body or an attachment shows %d of the message's recipients; "+
			"no rewritten copy can hide them without changing the body", n)
	}
	rw := store.RewriteExplode
	if action == Bcc {
		rw = store.RewriteBcc
	}
	if v := f.vis; v.reading != nil && v.people != nil {
		if reason := edits.Unsafe(v.reading, v.people, rw, f.in.Recipients); reason != "" {
			return reason
		}
	}
	return ""
}

// guard applies on_unsafe_copy to the decision d (explode or bcc) when its
// copies cannot be made safe: the message is held (or refused) instead; in
// monitor mode that is what is recorded, with the rule's decision among the
// monitored ones; with allow the copies are made and the guard is only
// recorded (in Monitored). It also returns how the check fared, for
// explanations.
func (p *Policy) guard(f *facts, d Decision) (Decision, RuleExplanation) {
	x := RuleExplanation{Name: UnsafeCopyRule, When: "the copies of " + string(d.Action) + " would show other recipients",
		Action: p.onUnsafeCopy.action(), Monitor: d.Monitor || p.onUnsafeCopy == UnsafeAllow}
	reason := unsafeCopy(f, d.Action)
	if reason == "" {
		return d, x
	}
	x.Matched = true
	x.Error = reason
	g := Decision{Action: x.Action, Rule: UnsafeCopyRule, Monitor: x.Monitor,
		Reason: oneLine("rule " + orName(d.Rule) + " decided " + string(d.Action) + ", but " + reason)}
	if g.Action == Reject {
		g.Message = "Message refused: its copies would still show other recipients; remove them from the header and body"
	}
	if p.onUnsafeCopy == UnsafeAllow { // the copies are made, the guard recorded
		d.Monitored = append(append([]Decision(nil), d.Monitored...), g)
		return d, x
	}
	g.Monitored = d.Monitored
	if d.Monitor {
		rule := d
		rule.Monitored = nil
		g.Monitored = append(append([]Decision(nil), d.Monitored...), rule)
	}
	return g, x
}

func orName(rule string) string {
	if rule == "" {
		return "default_action"
	}
	return rule
}

// otherShown is how many recipients of the copies some copy would show
// besides its own: the envelope recipients the body shows, except when
// the one shown is the single envelope recipient.
func (f *facts) otherShown() int {
	n := len(f.in.BodyShowsRecipients())
	if n == 1 && len(f.in.Recipients) == 1 {
		return 0
	}
	return n
}

// BodyShowsRecipients are the envelope recipients (as address keys) whom
// the body or an attachment shows: those a rewritten copy cannot hide. A
// visible address that receives no copy (a list's own address in its
// footer, the author of a quoted message) is left to the header side
// (visible.not_in_envelope): counting it here held ordinary list mail.
func (in *Input) BodyShowsRecipients() []string {
	if len(in.Body.RecipientsShown) == 0 {
		return nil
	}
	env := map[string]bool{}
	for _, a := range in.Recipients {
		env[addrKey(a)] = true
	}
	var out []string
	for _, i := range in.Body.RecipientsShown {
		if i < len(in.Watch.Recipients) && env[in.Watch.Recipients[i].Key] {
			out = append(out, in.Watch.Recipients[i].Key)
		}
	}
	return out
}
