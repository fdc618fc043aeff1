package policy

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/bccguard/bccguard/config/yamlnode"
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
// paths of test messages. The error is a *yamlnode.Error, or several joined
// with errors.Join, each with file and line.
func Load(node *yaml.Node, file string) (*Policy, error) {
	if yamlnode.IsNull(node) {
		p, err := loadBuiltin()
		if err != nil {
			return nil, err
		}
		p.file = file
		return p, nil
	}
	l := &loader{Decoder: yamlnode.Decoder{File: file}}
	p := l.policy(yamlnode.Deref(node))
	if l.Failed() {
		return nil, l.Err()
	}
	return p, nil
}

// loader decodes a yaml.Node by walking it, rather than with
// Node.Decode: the policy's settings are checked as they are read (a
// condition compiles, an action exists), and walking keeps the line of
// every key and value for the error messages. yamlnode.Decoder does the
// strict part: unknown keys, keys given twice, values of the wrong kind.
type loader struct {
	yamlnode.Decoder
}

func (l *loader) action(n *yaml.Node, what string) Action {
	s, ok := l.Str(n, what)
	if !ok {
		return ""
	}
	a := Action(strings.ToLower(strings.TrimSpace(s)))
	if !a.Valid() {
		l.Errorf(n, "%s: unknown action %q: expected pass, explode, bcc, quarantine or reject", what, s)
		return ""
	}
	return a
}

// mode decodes enforce|monitor; true means monitor.
func (l *loader) mode(n *yaml.Node, what string) bool {
	s, _ := l.Str(n, what)
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "enforce":
		return false
	case "monitor":
		return true
	}
	l.Errorf(n, "%s: expected enforce or monitor, not %q", what, s)
	return false
}

func (l *loader) policy(n *yaml.Node) *Policy {
	f := l.Fields(n, "policy", "mode", "internal_domains", "consumer_domains", "rules", "default_action",
		"on_parse_error", "on_unsafe_copy", "content", "tests")
	p := &Policy{file: l.File, defaultAction: Pass, onParseError: Quarantine, onUnsafeCopy: UnsafeQuarantine,
		consumer: newDomainMatcher(consumerDomains), notPhones: content.NewNotPhones(content.DefaultNotPhones)}
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
		p.onUnsafeCopy = l.unsafeCopySetting(a)
	}
	if c := f["content"]; c != nil {
		p.content = l.contentSection(c)
	}
	if rs := f["rules"]; rs != nil {
		p.rules = l.rules(rs, p)
	} else if b, err := loadBuiltin(); err != nil {
		l.Add(err)
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
	for i, s := range l.Strs(n, what) {
		s = strings.ToLower(strings.TrimSpace(s))
		if !validDomainName(strings.TrimPrefix(s, "*.")) {
			l.Errorf(yamlnode.Item(n, i), "%s: %q is not a domain name (write example.com, or *.example.com for its subdomains)", what, s)
			continue
		}
		out = append(out, s)
	}
	return out
}

// unsafeCopySetting decodes on_unsafe_copy.
func (l *loader) unsafeCopySetting(n *yaml.Node) UnsafeCopy {
	s, _ := l.Str(n, "on_unsafe_copy")
	u, err := ParseUnsafeCopy(s)
	if err != nil {
		l.Errorf(n, "on_unsafe_copy: %v", err)
		return UnsafeQuarantine
	}
	return u
}

var ruleName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (l *loader) rules(n *yaml.Node, p *Policy) []*rule {
	n = yamlnode.Deref(n)
	if n.Kind != yaml.SequenceNode {
		l.Errorf(n, "rules: expected a list of rules (rules: [] for none; leave rules out for the built-in ones)")
		return nil
	}
	var out []*rule
	names := map[string]bool{}
	for i, item := range n.Content {
		what := fmt.Sprintf("rule %d", i+1)
		if name := yamlnode.MapValue(item, "name"); name != "" && ruleName.MatchString(name) {
			what = fmt.Sprintf("rule %q", name)
		}
		f := l.Fields(item, what, "name", "when", "action", "mode", "message", "notify_sender", "sender_notice")
		if f == nil {
			continue
		}
		r := &rule{}
		if f["name"] == nil {
			l.Errorf(item, "%s: needs a name", what)
		} else if name, ok := l.Str(f["name"], what+" name"); ok {
			if !ruleName.MatchString(name) {
				l.Errorf(f["name"], "%s: name %q: use letters, digits, '.', '_' and '-' (up to 64)", what, name)
			} else if names[name] {
				l.Errorf(f["name"], "rule %d: name %q is used by an earlier rule", i+1, name)
			}
			names[name] = true
			r.name = name
		}
		if f["action"] == nil {
			l.Errorf(item, "%s: needs an action", what)
		} else {
			r.action = l.action(f["action"], what+" action")
		}
		if m := f["mode"]; m != nil {
			monitor := l.mode(m, what+" mode")
			r.mode = &monitor
		}
		if m := f["message"]; m != nil {
			if s, ok := l.Str(m, what+" message"); ok {
				switch {
				case r.action != "" && r.action != Reject:
					l.Errorf(m, "%s: message is only used with action reject", what)
				case !printableASCII(s) || len(s) > 200:
					l.Errorf(m, "%s: message must be one line of printable ASCII, at most 200 characters (it goes into the SMTP reply)", what)
				default:
					r.message = s
				}
			}
		}
		l.senderNotice(r, f, what)
		if f["when"] == nil {
			l.Errorf(item, "%s: needs a condition (when:)", what)
		} else if s, ok := l.Str(f["when"], what+" when"); ok {
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
		if s, ok := l.Str(n, what+" notify_sender"); ok {
			switch strings.ToLower(s) {
			case "true", "yes":
				r.notifySender = true
			case "false", "no":
			default:
				l.Errorf(n, "%s: notify_sender must be true or false, not %q", what, s)
			}
		}
		if r.notifySender && r.action != "" && r.action != Quarantine {
			l.Errorf(n, "%s: notify_sender is for rules that quarantine (the sender is told of the hold and of its end)", what)
		}
	}
	n := f["sender_notice"]
	if n == nil {
		return
	}
	s, ok := l.Str(n, what+" sender_notice")
	switch {
	case !ok:
	case !r.notifySender:
		l.Errorf(n, "%s: sender_notice is used only with notify_sender: true", what)
	default:
		if err := checkSenderNotice(s); err != nil {
			l.Errorf(n, "%s: sender_notice: %v", what, err)
			return
		}
		r.senderNotice = s
	}
}

func (l *loader) tests(n *yaml.Node) []TestCase {
	n = yamlnode.Deref(n)
	if n.Kind != yaml.SequenceNode {
		l.Errorf(n, "tests: expected a list of test cases")
		return nil
	}
	dir := filepath.Dir(l.File)
	var out []TestCase
	for i, item := range n.Content {
		what := fmt.Sprintf("test %d", i+1)
		if name := yamlnode.MapValue(item, "name"); name != "" {
			what = fmt.Sprintf("test %q", name)
		}
		f := l.Fields(item, what, "name", "message", "from", "rcpt", "user", "client_ip", "listener", "expect", "rule")
		if f == nil {
			continue
		}
		tc := TestCase{Line: yamlnode.Deref(item).Line, File: l.File}
		if f["name"] != nil {
			tc.Name, _ = l.Str(f["name"], what+" name")
		} else {
			tc.Name = what
		}
		what = fmt.Sprintf("test %q", tc.Name)
		if f["message"] == nil {
			l.Errorf(item, "%s: needs a message file", what)
		} else if m, ok := l.Str(f["message"], what+" message"); ok {
			tc.Message = m
			tc.Path = m
			if !filepath.IsAbs(m) && l.File != "" {
				tc.Path = filepath.Join(dir, m)
			}
		}
		if f["expect"] == nil {
			l.Errorf(item, "%s: needs an expected action (expect:)", what)
		} else {
			tc.Expect = l.action(f["expect"], what+" expect")
		}
		if r := f["rule"]; r != nil {
			tc.Rule, _ = l.Str(r, what+" rule")
			tc.CheckRule = true
		}
		if v := f["from"]; v != nil {
			tc.From, _ = l.Str(v, what+" from")
		}
		if v := f["rcpt"]; v != nil {
			tc.Rcpt = l.Strs(v, what+" rcpt")
		}
		if v := f["user"]; v != nil {
			tc.User, _ = l.Str(v, what+" user")
		}
		if v := f["listener"]; v != nil {
			tc.Listener, _ = l.Str(v, what+" listener")
		}
		if v := f["client_ip"]; v != nil {
			if s, ok := l.Str(v, what+" client_ip"); ok {
				ip, err := netip.ParseAddr(s)
				if err != nil {
					l.Errorf(v, "%s: client_ip %q is not an IP address", what, s)
				}
				tc.ClientIP = ip
			}
		}
		out = append(out, tc)
	}
	return out
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
