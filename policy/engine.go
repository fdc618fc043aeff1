package policy

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/ext"

	"github.com/bccguard/bccguard/policy/content"
)

// Limits on evaluating conditions. A condition is written by an admin, but
// it runs on every message, so a mistake must cost one message a fail-closed
// decision, not the relay its throughput.
const (
	// CostLimit is CEL's runtime cost budget per condition (roughly, the
	// number of operations; one pass over 100,000 visible domains fits).
	CostLimit = 1_000_000
	// EvalTimeout bounds the evaluation of all rules for one message.
	EvalTimeout = 250 * time.Millisecond
)

// Policy is a loaded, compiled policy. It is immutable and safe for
// concurrent use; a reload builds a new one.
type Policy struct {
	file          string
	builtin       bool
	monitor       bool
	internal      []string
	matcher       domainMatcher // internal domains
	consumer      domainMatcher // consumer mailbox domains, built in and configured
	consumerExtra []string
	rules         []*rule
	defaultAction Action
	onParseError  Action
	onUnsafeCopy  UnsafeCopy
	content       contentSettings
	notPhones     *content.NotPhones // shared by this policy's scans
	tests         []TestCase
	timeout       time.Duration // EvalTimeout; tests under -race need more
}

// rule is one compiled rule.
type rule struct {
	name    string
	when    string // as written, for explanations
	action  Action
	message string // for reject
	mode    *bool  // true: monitor, false: enforce, nil: the policy's mode
	prg     cel.Program
	refs    []string // variables the condition uses, in table order

	// notifySender: tell the envelope sender of a hold and its end, with
	// senderNotice ("" for DefaultSenderNotice); see notice.go.
	notifySender bool
	senderNotice string
}

// Builtin reports whether p is the built-in policy (no policy section).
func (p *Policy) Builtin() bool { return p.builtin }

// InternalDomains returns the configured internal domains.
func (p *Policy) InternalDomains() []string { return append([]string(nil), p.internal...) }

// celEnv declares every variable once for all policies.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.CrossTypeNumericComparisons(true), // visible.count > 2.5 is fine
		cel.OptionalTypes(),                   // header[?"precedence"]
		ext.Strings(),
		ext.Sets(),
	}
	for _, v := range variables {
		opts = append(opts, cel.Variable(v.name, v.typ))
	}
	return cel.NewEnv(opts...)
})

// Evaluate decides what happens to a message: the first matching rule in
// enforce mode, else the default action. It never fails: a header that
// cannot be parsed, a condition that errors or runs out of time or cost
// all give the on_parse_error action (fail closed), with Error set for the
// caller to log. The Figures are the counts it used, for the caller to
// record without counting again.
func (p *Policy) Evaluate(ctx context.Context, in *Input) (Decision, Figures) {
	f := p.facts(in)
	d, _ := p.run(ctx, f, false)
	return d, Figures{f}
}

// facts derives the variables' values for in.
func (p *Policy) facts(in *Input) *facts {
	return newFacts(in, p.visible(in), p.matcher, p.consumer)
}

// outcome is how one rule's condition fared.
type outcome struct {
	matched bool
	err     error
	values  []Value
}

// run evaluates the checks in order. Monitor-mode matches are collected and
// evaluation goes on, so trying out a rule in monitor mode can never weaken
// the rules below it. With all set it evaluates every rule (for Explain)
// but decides exactly as without.
func (p *Policy) run(ctx context.Context, f *facts, all bool) (Decision, []RuleExplanation) {
	timeout := p.timeout
	if timeout == 0 {
		timeout = EvalTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	vis := f.vis

	var (
		final     *Decision
		monitored []Decision
		expl      []RuleExplanation
	)
	take := func(d Decision, monitor bool) {
		if final != nil {
			return
		}
		if monitor {
			d.Monitor = true
			monitored = append(monitored, d)
			return
		}
		final = &d
	}

	// An unreadable header: decided before any rule, because a rule
	// such as visible.count < 2 would pass what it cannot see.
	pe := RuleExplanation{Name: ParseErrorRule, When: "visible.parse_error", Action: p.onParseError,
		Monitor: p.monitor, Values: []Value{{Name: "visible.parse_error", Value: fmt.Sprint(vis.ParseError != "")}}}
	if vis.ParseError != "" {
		pe.Matched = true
		pe.Error = vis.ParseError
		take(Decision{Action: p.onParseError, Rule: ParseErrorRule,
			Reason:  oneLine("nothing could be made of the header block (" + vis.ParseError + "); failing closed"),
			Message: "Message refused: its header could not be read",
			Error:   vis.ParseError}, p.monitor)
	}
	expl = append(expl, pe)

	for _, r := range p.rules {
		if final != nil && !all {
			break
		}
		o := r.eval(ctx, f)
		expl = append(expl, r.explain(o, p.monitorOf(r)))
		switch {
		case o.err != nil:
			take(Decision{Action: p.onParseError, Rule: r.name,
				Reason: oneLine(fmt.Sprintf("rule %s: condition could not be evaluated; failing closed", r.name)),
				Error:  o.err.Error()}, p.monitorOf(r))
		case o.matched:
			d := Decision{Action: r.action, Rule: r.name, Reason: r.reason(o)}
			if r.action == Reject {
				d.Message = r.message
			}
			take(d, p.monitorOf(r))
		}
	}

	if final == nil {
		def := Decision{Action: p.defaultAction, Reason: "no rule matched", Monitor: p.monitor}
		if len(monitored) > 0 && def.Effective() == Pass {
			// Nothing is enforced either way: report what the first
			// monitored rule would have done.
			def, monitored = monitored[0], monitored[1:]
		}
		final = &def
	}
	switch {
	case final.Action != Reject:
		final.Message = ""
	case final.Message == "":
		final.Message = fmt.Sprintf("Message refused by the mail policy (%s); contact your mail administrator", orDefault(final.Rule))
	}
	if len(monitored) > 0 {
		final.Monitored = monitored
	}
	if final.Action.Rewrites() {
		// A copy that cannot be made safe is not made: held instead.
		d, x := p.guard(f, *final)
		final = &d
		expl = append(expl, x)
	}
	return *final, expl
}

func orDefault(rule string) string {
	if rule == "" {
		return "default action"
	}
	return "rule " + rule
}

// monitorOf tells whether r runs in monitor mode.
func (p *Policy) monitorOf(r *rule) bool {
	if r.mode != nil {
		return *r.mode
	}
	return p.monitor
}

// visible returns in.Visible when it was worked out for this policy and
// envelope, else reads the header (once: a Visible keeps its reading) and
// counts for them. It records the result in in.Visible, so that the caller
// (which stores it with a held message) reads the header only once.
func (p *Policy) visible(in *Input) *Visible {
	key := finishKey(p.matcher, p.consumer, in.Sender, in.Recipients)
	if in.Visible != nil && in.Visible.key == key {
		return in.Visible
	}
	var v Visible
	if in.Visible != nil && (in.Visible.reading != nil || in.Visible.ParseError != "") {
		v = Visible{reading: in.Visible.reading, Header: in.Visible.Header, ParseError: in.Visible.ParseError}
	} else {
		v = readVisible(in.Header)
	}
	v.finish(p.matcher, p.consumer, in.Sender, in.Recipients)
	in.Visible = &v
	return &v
}

// eval runs the rule's condition.
func (r *rule) eval(ctx context.Context, f *facts) outcome {
	out, _, err := r.prg.ContextEval(ctx, activation{f})
	o := outcome{values: r.values(f)}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("evaluation timed out: %w", err)
		}
		o.err = err
		return o
	}
	b, ok := out.Value().(bool)
	if !ok { // cannot happen: conditions are checked to be bool at load
		o.err = fmt.Errorf("condition gave %v, not a bool", out.Type())
		return o
	}
	o.matched = b
	return o
}

// values are the variables the rule's condition uses, formatted.
func (r *rule) values(f *facts) []Value {
	vs := make([]Value, 0, len(r.refs))
	for _, name := range r.refs {
		v, ok := variableByName[name]
		if !ok { // a header field: header["name"]
			key, _ := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(name, "header["), "]"))
			val := "absent"
			if vals, ok := f.vis.Header[key]; ok {
				val = formatValue(vals)
			}
			vs = append(vs, Value{Name: name, Value: val})
			continue
		}
		vs = append(vs, Value{Name: name, Value: formatValue(v.get(f)), scalar: isScalar(v)})
	}
	return vs
}

// reason says which rule matched and why. It is shown to operators and may
// reach the sender, so it carries only the condition (written by the
// admin) and the numbers and flags it used, never strings from the message.
func (r *rule) reason(o outcome) string {
	var vals []string
	for _, v := range o.values {
		if v.scalar {
			vals = append(vals, v.Name+"="+v.Value)
		}
	}
	s := "rule " + r.name + ": " + r.when
	if len(vals) > 0 {
		s += " (" + strings.Join(vals, ", ") + ")"
	}
	return oneLine(s)
}

func isScalar(v *variable) bool {
	return v.typ == cel.IntType || v.typ == cel.BoolType
}

// oneLine collapses white space (a condition may span lines in YAML) and
// bounds the length, so the text fits in one SMTP reply or log line.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = strings.ToValidUTF8(s[:397], "") + "..."
	}
	return s
}
