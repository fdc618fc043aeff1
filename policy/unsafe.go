package policy

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// UnsafeCopyRule is the Decision.Rule of a message whose rules chose
// explode or bcc but whose copies cannot be made safe.
const UnsafeCopyRule = "unsafe-copy"

// unsafeCopyAction decodes on_unsafe_copy: quarantine (the default),
// reject, or allow (make the copies anyway).
func (l *loader) unsafeCopyAction(n *yaml.Node) Action {
	s, ok := l.str(n, "on_unsafe_copy")
	if !ok {
		return Quarantine
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "quarantine":
		return Quarantine
	case "reject":
		return Reject
	case "allow":
		return Pass
	}
	l.errorf(n, "on_unsafe_copy: expected quarantine, reject or allow, not %q", s)
	return Quarantine
}

// unsafeCopy says why the copies of an explode or bcc could not be made
// safe, or "" when they can: a rewrite changes only the header, so a body
// or attachment that shows another recipient shows them in every copy.
func unsafeCopy(f *facts) string {
	if n := f.otherShown(); n > 0 {
		return fmt.Sprintf("the body or an attachment shows %d of the message's recipients; "+
			"no rewritten copy can hide them without changing the body", n)
	}
	return ""
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

// guardCopies holds (or rejects) a decision to explode or bcc whose copies
// cannot be made safe. In monitor mode the guard's decision is recorded as
// monitored, like any other.
func (p *Policy) guardCopies(d Decision, f *facts) Decision {
	if d.Action != Explode && d.Action != Bcc || p.onUnsafeCopy == Pass {
		return d
	}
	reason := unsafeCopy(f)
	if reason == "" {
		return d
	}
	g := Decision{Action: p.onUnsafeCopy, Rule: UnsafeCopyRule, Monitor: d.Monitor, Monitored: d.Monitored,
		Reason: oneLine(fmt.Sprintf("%s would %s: %s", orDefault(d.Rule), d.Action, reason))}
	if g.Action == Reject {
		g.Message = "Message refused: its body shows other recipients, so no private copy can be made"
	}
	return g
}
