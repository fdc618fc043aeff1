// Package policy decides what bccguard does with a message: pass it, explode
// it into per-recipient copies, send it as undisclosed recipients, hold it
// for review or reject it. It knows nothing of SMTP: the relay hands it what
// it saw (Input) and acts on the Decision.
package policy

import "slices"

// Action is what happens to a message.
type Action string

// Actions, as named in the configuration.
const (
	Pass       Action = "pass"
	Explode    Action = "explode"
	Bcc        Action = "bcc"
	Quarantine Action = "quarantine"
	Reject     Action = "reject"
)

// Valid reports whether a is a known action.
func (a Action) Valid() bool {
	switch a {
	case Pass, Explode, Bcc, Quarantine, Reject:
		return true
	}
	return false
}

// RewritingActions are the actions that send rewritten copies (explode,
// bcc): the copies the unsafe-copy guard checks, and whose hidden addresses
// the relay counts. The relay's plan builder makes their copies.
func RewritingActions() []Action { return []Action{Explode, Bcc} }

// Rewrites reports whether a is one of RewritingActions.
func (a Action) Rewrites() bool { return slices.Contains(RewritingActions(), a) }

// Decision is the outcome of evaluating a message.
type Decision struct {
	Action Action `json:"action"`
	// Rule is the name of the rule that matched ("" for the default action).
	Rule string `json:"rule,omitempty"`
	// Reason explains the decision; safe to show to the sender.
	Reason string `json:"reason,omitempty"`
	// Monitor is set when the policy is in monitor mode: Action is what
	// would have happened, but the relay passes the message.
	Monitor bool `json:"monitor,omitempty"`
	// Message is the text for the sender of a rejected message: the
	// rule's message, or a generic one. One line of printable ASCII, no
	// addresses; the relay puts it in the 550 reply.
	Message string `json:"message,omitempty"`
	// Error is set when a rule could not be evaluated (or the policy
	// failed closed for another reason); the caller logs it. Action is
	// then the policy's on_parse_error action.
	Error string `json:"error,omitempty"`
	// Monitored lists the rules in monitor mode that matched before this
	// decision was reached, each with Monitor set: what they would have
	// done. They never change what happens, only what is recorded.
	Monitored []Decision `json:"monitored,omitempty"`
}

// Effective is the action the relay carries out: Pass in monitor mode.
func (d Decision) Effective() Action {
	if d.Monitor {
		return Pass
	}
	return d.Action
}
