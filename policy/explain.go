package policy

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/bccguard/bccguard/policy/content"
)

// Explanation is a decision with the reasoning behind it, for
// `bccguard policy test`. Its JSON form has the Decision's fields (action,
// rule, reason, ...) at the top level.
type Explanation struct {
	Decision
	// Rules are every check in order: the on_parse_error check, then each
	// rule, all evaluated (Evaluate stops at the first match).
	Rules []RuleExplanation `json:"rules"`
	// Variables are the values of all variables for this message.
	Variables []Value `json:"variables"`
	// Visible is what the header fields show.
	Visible *Visible `json:"visible"`
	// Contains is what the body and attachments hold (masked samples).
	Contains *content.Report `json:"contains,omitempty"`
}

// RuleExplanation is how one rule fared.
type RuleExplanation struct {
	Name    string `json:"name"`
	When    string `json:"when"`
	Action  Action `json:"action"`
	Monitor bool   `json:"monitor,omitempty"`
	Matched bool   `json:"matched"`
	// Error is why the condition could not be evaluated (then the rule
	// counts as matched with the on_parse_error action: fail closed).
	Error string `json:"error,omitempty"`
	// Values are the variables the condition uses.
	Values []Value `json:"values,omitempty"`
}

// Value is a variable's value, formatted as CEL would write it.
type Value struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	scalar bool   // int or bool: safe to quote in a Reason
}

// Explain evaluates every rule for the message and reports each one, with
// the Decision that Evaluate would return.
func (p *Policy) Explain(ctx context.Context, in *Input) Explanation {
	f := p.facts(in)
	d, rules := p.run(ctx, f, true)
	vars := make([]Value, 0, len(variables))
	for _, v := range variables {
		vars = append(vars, Value{Name: v.name, Value: formatValue(v.get(f))})
	}
	return Explanation{Decision: d, Rules: rules, Variables: vars, Visible: f.vis, Contains: in.Body.Content}
}

func (r *rule) explain(o outcome, monitor bool) RuleExplanation {
	e := RuleExplanation{Name: r.name, When: r.when, Action: r.action, Monitor: monitor,
		Matched: o.matched, Values: o.values}
	if o.err != nil {
		e.Error = o.err.Error()
	}
	return e
}

// maxShown bounds how many list elements or map entries are printed.
const maxShown = 20

func formatValue(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case []string:
		var b strings.Builder
		b.WriteByte('[')
		for i, s := range x {
			if i == maxShown {
				fmt.Fprintf(&b, ", ... %d more", len(x)-maxShown)
				break
			}
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Quote(s))
		}
		b.WriteByte(']')
		return b.String()
	case map[string][]string:
		return fmt.Sprintf("{%d header fields}", len(x))
	}
	return fmt.Sprint(v)
}
