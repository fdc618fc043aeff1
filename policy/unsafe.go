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
		return fmt.Sprintf("the body or an attachment shows %d of the message's recipients (body.recipients=%d); "+
			"no rewritten copy can hide them without changing the body", n, len(f.in.Body.RecipientsShown))
	}
	return ""
}

// otherShown is how many recipients some copy would show besides its
// own: all of those shown, except when the one shown is the single
// envelope recipient.
func (f *facts) otherShown() int {
	shown := f.in.Body.RecipientsShown
	switch {
	case len(shown) == 0:
		return 0
	case len(shown) == 1 && len(f.envAddrs) == 1 && shown[0] < len(f.in.Watch.Recipients) &&
		f.in.Watch.Recipients[shown[0]].Key == f.envAddrs[0]:
		return 0
	}
	return len(shown)
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
