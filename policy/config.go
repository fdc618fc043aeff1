package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/policy/content"
)

// ParseErrorRule is the Decision.Rule of a message of whose header nothing
// could be read (the on_parse_error setting).
const ParseErrorRule = "on_parse_error"

// Load builds a Policy from the raw `policy:` section of the configuration
// (config.Config.Policy). A nil, zero or null node gives the built-in
// policy; a section without `rules:` gets the built-in rules with its own
// other settings (so `mode: monitor` alone tries out the built-in policy).
//
// Decoding is strict: an unknown key, a wrong type, a condition that does
// not compile or is not a bool, or one that fails on a minimal message is
// an error. file names the configuration file in errors and anchors the
// paths of test messages. The error is a *config.Error, or several joined
// with errors.Join, each with file and line.
func Load(node *yaml.Node, file string) (*Policy, error) {
	n := deref(node)
	if n == nil || n.Kind == 0 || n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		p, err := loadBuiltin()
		if err != nil {
			return nil, err
		}
		p.file = file
		return p, nil
	}
	l := &loader{file: file}
	p := l.policy(n)
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return p, nil
}

// loader decodes a yaml.Node by walking it, rather than with
// Node.Decode: Node.Decode cannot reject unknown keys, and walking keeps
// the line of every key and value for the error messages.
type loader struct {
	file string
	errs []error
}

func (l *loader) errorf(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	l.errs = append(l.errs, &config.Error{File: l.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil {
		switch {
		case n.Kind == yaml.AliasNode:
			n = n.Alias
		case n.Kind == yaml.DocumentNode && len(n.Content) > 0:
			n = n.Content[0]
		default:
			return n
		}
	}
	return nil
}

// fields checks that n is a mapping with only the known keys, each once,
// and returns the value nodes by key.
func (l *loader) fields(n *yaml.Node, what string, known ...string) map[string]*yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		l.errorf(n, "%s: expected a mapping with keys %s", what, strings.Join(known, ", "))
		return nil
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case !slices.Contains(known, k.Value):
			hint := ""
			if s := closest(k.Value, known); s != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", s)
			}
			l.errorf(k, "%s: unknown key %q%s; known keys: %s", what, k.Value, hint, strings.Join(known, ", "))
		case out[k.Value] != nil:
			l.errorf(k, "%s: key %q given twice", what, k.Value)
		default:
			out[k.Value] = v
		}
	}
	return out
}

// str decodes a scalar; null and collections are errors.
func (l *loader) str(n *yaml.Node, what string) (string, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		l.errorf(n, "%s: expected a value", what)
		return "", false
	}
	return n.Value, true
}

// strs decodes a list of scalars; a single scalar is a list of one.
func (l *loader) strs(n *yaml.Node, what string) []string {
	n = deref(n)
	if n != nil && n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return []string{n.Value}
	}
	if n == nil || n.Kind != yaml.SequenceNode {
		l.errorf(n, "%s: expected a list", what)
		return nil
	}
	var out []string
	for _, c := range n.Content {
		if s, ok := l.str(c, what); ok {
			out = append(out, s)
		}
	}
	return out
}

func (l *loader) action(n *yaml.Node, what string) Action {
	s, ok := l.str(n, what)
	if !ok {
		return ""
	}
	a := Action(strings.ToLower(strings.TrimSpace(s)))
	if !a.Valid() {
		l.errorf(n, "%s: unknown action %q: expected pass, explode, bcc, quarantine or reject", what, s)
		return ""
	}
	return a
}

// mode decodes enforce|monitor; true means monitor.
func (l *loader) mode(n *yaml.Node, what string) bool {
	s, _ := l.str(n, what)
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "enforce":
		return false
	case "monitor":
		return true
	}
	l.errorf(n, "%s: expected enforce or monitor, not %q", what, s)
	return false
}

func (l *loader) policy(n *yaml.Node) *Policy {
	f := l.fields(n, "policy", "mode", "internal_domains", "consumer_domains", "rules", "default_action",
		"on_parse_error", "on_unsafe_copy", "content", "tests")
	p := &Policy{file: l.file, defaultAction: Pass, onParseError: Quarantine, onUnsafeCopy: Quarantine,
		consumer: newDomainMatcher(consumerDomains)}
	if f == nil {
		return p
	}
	if m := f["mode"]; m != nil {
		p.monitor = l.mode(m, "policy mode")
	}
	p.internal = l.domains(f["internal_domains"], "internal_domains")
	p.matcher = newDomainMatcher(p.internal)
	if extra := l.domains(f["consumer_domains"], "consumer_domains"); len(extra) > 0 {
		p.consumerExtra = extra
		p.consumer = newDomainMatcher(consumerDomains, extra)
	}
	if a := f["default_action"]; a != nil {
		p.defaultAction = l.action(a, "default_action")
	}
	if a := f["on_parse_error"]; a != nil {
		p.onParseError = l.action(a, "on_parse_error")
	}
	if a := f["on_unsafe_copy"]; a != nil {
		p.onUnsafeCopy = l.unsafeAction(a)
	}
	if c := f["content"]; c != nil {
		p.content = l.contentSection(c)
	}
	if rs := f["rules"]; rs != nil {
		p.rules = l.rules(rs, p)
	} else if b, err := loadBuiltin(); err != nil {
		l.errs = append(l.errs, err)
	} else {
		p.rules = b.rules
	}
	if ts := f["tests"]; ts != nil {
		p.tests = l.tests(ts)
	}
	return p
}

// domains decodes a list of domain names (example.com, or *.example.com
// for its subdomains), lowercased; nil when n is nil.
func (l *loader) domains(n *yaml.Node, what string) []string {
	if n == nil {
		return nil
	}
	var out []string
	for i, s := range l.strs(n, what) {
		s = strings.ToLower(strings.TrimSpace(s))
		if !validDomainName(strings.TrimPrefix(s, "*.")) {
			l.errorf(itemNode(n, i), "%s: %q is not a domain name (write example.com, or *.example.com for its subdomains)", what, s)
			continue
		}
		out = append(out, s)
	}
	return out
}

// unsafeAction decodes on_unsafe_copy: what happens to a message whose
// explode or bcc copies cannot be made safe.
func (l *loader) unsafeAction(n *yaml.Node) Action {
	s, _ := l.str(n, "on_unsafe_copy")
	switch a := Action(strings.ToLower(strings.TrimSpace(s))); a {
	case Quarantine, Reject:
		return a
	case "allow":
		return "" // the copies are made anyway; the guard is only recorded
	}
	l.errorf(n, "on_unsafe_copy: expected quarantine, reject or allow, not %q", s)
	return Quarantine
}

var ruleName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (l *loader) rules(n *yaml.Node, p *Policy) []*rule {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		l.errorf(n, "rules: expected a list of rules (rules: [] for none; leave rules out for the built-in ones)")
		return nil
	}
	var out []*rule
	names := map[string]bool{}
	for i, item := range n.Content {
		what := fmt.Sprintf("rule %d", i+1)
		if name := mapValue(item, "name"); name != "" && ruleName.MatchString(name) {
			what = fmt.Sprintf("rule %q", name)
		}
		f := l.fields(item, what, "name", "when", "action", "mode", "message", "notify_sender", "sender_notice")
		if f == nil {
			continue
		}
		r := &rule{}
		if f["name"] == nil {
			l.errorf(item, "%s: needs a name", what)
		} else if name, ok := l.str(f["name"], what+" name"); ok {
			if !ruleName.MatchString(name) {
				l.errorf(f["name"], "%s: name %q: use letters, digits, '.', '_' and '-' (up to 64)", what, name)
			} else if names[name] {
				l.errorf(f["name"], "rule %d: name %q is used by an earlier rule", i+1, name)
			}
			names[name] = true
			r.name = name
		}
		if f["action"] == nil {
			l.errorf(item, "%s: needs an action", what)
		} else {
			r.action = l.action(f["action"], what+" action")
		}
		if m := f["mode"]; m != nil {
			monitor := l.mode(m, what+" mode")
			r.mode = &monitor
		}
		if m := f["message"]; m != nil {
			if s, ok := l.str(m, what+" message"); ok {
				switch {
				case r.action != "" && r.action != Reject:
					l.errorf(m, "%s: message is only used with action reject", what)
				case !printableASCII(s) || len(s) > 200:
					l.errorf(m, "%s: message must be one line of printable ASCII, at most 200 characters (it goes into the SMTP reply)", what)
				default:
					r.message = s
				}
			}
		}
		l.senderNotice(r, f, what)
		if f["when"] == nil {
			l.errorf(item, "%s: needs a condition (when:)", what)
		} else if s, ok := l.str(f["when"], what+" when"); ok {
			r.when = s
			l.compile(r, f["when"], what, p)
		}
		out = append(out, r)
	}
	return out
}

// senderNotice decodes notify_sender and sender_notice: only for rules
// that quarantine (no other action has a later event to tell of), and a
// template that renders.
func (l *loader) senderNotice(r *rule, f map[string]*yaml.Node, what string) {
	if n := f["notify_sender"]; n != nil {
		if s, ok := l.str(n, what+" notify_sender"); ok {
			switch strings.ToLower(s) {
			case "true", "yes":
				r.notifySender = true
			case "false", "no":
			default:
				l.errorf(n, "%s: notify_sender must be true or false, not %q", what, s)
			}
		}
		if r.notifySender && r.action != "" && r.action != Quarantine {
			l.errorf(n, "%s: notify_sender is for rules that quarantine (the sender is told of the hold and of its end)", what)
		}
	}
	n := f["sender_notice"]
	if n == nil {
		return
	}
	s, ok := l.str(n, what+" sender_notice")
	switch {
	case !ok:
	case !r.notifySender:
		l.errorf(n, "%s: sender_notice is used only with notify_sender: true", what)
	default:
		if err := checkSenderNotice(s); err != nil {
			l.errorf(n, "%s: sender_notice: %v", what, err)
			return
		}
		r.senderNotice = s
	}
}

func (l *loader) tests(n *yaml.Node) []TestCase {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		l.errorf(n, "tests: expected a list of test cases")
		return nil
	}
	dir := filepath.Dir(l.file)
	var out []TestCase
	for i, item := range n.Content {
		what := fmt.Sprintf("test %d", i+1)
		if name := mapValue(item, "name"); name != "" {
			what = fmt.Sprintf("test %q", name)
		}
		f := l.fields(item, what, "name", "message", "from", "rcpt", "user", "client_ip", "listener", "expect", "rule")
		if f == nil {
			continue
		}
		tc := TestCase{Line: deref(item).Line, File: l.file}
		if f["name"] != nil {
			tc.Name, _ = l.str(f["name"], what+" name")
		} else {
			tc.Name = what
		}
		what = fmt.Sprintf("test %q", tc.Name)
		if f["message"] == nil {
			l.errorf(item, "%s: needs a message file", what)
		} else if m, ok := l.str(f["message"], what+" message"); ok {
			tc.Message = m
			tc.Path = m
			if !filepath.IsAbs(m) && l.file != "" {
				tc.Path = filepath.Join(dir, m)
			}
		}
		if f["expect"] == nil {
			l.errorf(item, "%s: needs an expected action (expect:)", what)
		} else {
			tc.Expect = l.action(f["expect"], what+" expect")
		}
		if r := f["rule"]; r != nil {
			tc.Rule, _ = l.str(r, what+" rule")
			tc.CheckRule = true
		}
		if v := f["from"]; v != nil {
			tc.From, _ = l.str(v, what+" from")
		}
		if v := f["rcpt"]; v != nil {
			tc.Rcpt = l.strs(v, what+" rcpt")
		}
		if v := f["user"]; v != nil {
			tc.User, _ = l.str(v, what+" user")
		}
		if v := f["listener"]; v != nil {
			tc.Listener, _ = l.str(v, what+" listener")
		}
		if v := f["client_ip"]; v != nil {
			if s, ok := l.str(v, what+" client_ip"); ok {
				ip, err := netip.ParseAddr(s)
				if err != nil {
					l.errorf(v, "%s: client_ip %q is not an IP address", what, s)
				}
				tc.ClientIP = ip
			}
		}
		out = append(out, tc)
	}
	return out
}

// mapValue peeks at a scalar in a mapping, to name it in errors.
func mapValue(n *yaml.Node, key string) string {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if v := deref(n.Content[i+1]); n.Content[i].Value == key && v != nil && v.Kind == yaml.ScalarNode {
			return v.Value
		}
	}
	return ""
}

// itemNode is the i-th element of a sequence node (or n itself).
func itemNode(n *yaml.Node, i int) *yaml.Node {
	n = deref(n)
	if n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
		return n.Content[i]
	}
	return n
}

func validDomainName(d string) bool {
	if d == "" || strings.ContainsAny(d, "@ \t<>,;") {
		return false
	}
	return isASCII(d) && content.ValidDomain(d) || !isASCII(d) && strings.Contains(d, ".")
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// closest suggests the known key a typo was meant to be.
func closest(s string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(s, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
