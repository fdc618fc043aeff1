package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/config/yamlnode"
)

// loadYAML loads the policy section of a configuration text, named
// bccguard.yaml in errors. Texts start with "policy:" on line 1.
func loadYAML(t testing.TB, text string) (*Policy, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("test YAML: %v", err)
	}
	root := yamlnode.Deref(&doc)
	for i := 0; root != nil && i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "policy" {
			return Load(root.Content[i+1], "bccguard.yaml")
		}
	}
	return Load(nil, "bccguard.yaml")
}

func mustLoad(t testing.TB, text string) *Policy {
	t.Helper()
	p, err := loadYAML(t, text)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return p
}

// msgInput builds an Input from header lines; recipients default to the
// visible ones.
func msgInput(header string, rcpt ...string) *Input {
	raw := strings.ReplaceAll(header, "\n", "\r\n") + "\r\n\r\nbody\r\n"
	return BuildInput([]byte(raw), Envelope{Sender: "crm@brand.example", Recipients: rcpt}, Client{})
}

func loadMessage(t testing.TB, name string) *Input {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata/messages", name))
	if err != nil {
		t.Fatal(err)
	}
	return BuildInput(raw, Envelope{}, Client{})
}

// The built-in policy's promises (issue 3): explode a mailing that shows
// customers of several domains to each other, pass an ordinary one-to-one
// message untouched, hold what cannot be parsed; and, as a sane default,
// hold an address list in the body.
func TestBuiltinPolicy(t *testing.T) {
	p, err := Load(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Builtin() {
		t.Error("Builtin() = false")
	}
	tests := []struct {
		message string
		action  Action
		rule    string
	}{
		{"survey.eml", Explode, "recipients-of-several-domains"},
		{"two-customers.eml", Explode, "recipients-of-several-domains"},
		{"one-to-one.eml", Pass, ""},
		{"no-angle-brackets.eml", Explode, "recipients-of-several-domains"}, // read as clients read it
		{"customer-export.eml", Quarantine, "address-list-in-body"},
		{"same-provider.eml", Explode, "many-visible-recipients"},
		{"partner-team.eml", Pass, ""}, // two people at one company: correspondence
		{"bulk.eml", Pass, ""},
	}
	for _, tt := range tests {
		t.Run(tt.message, func(t *testing.T) {
			d, _ := p.Evaluate(context.Background(), loadMessage(t, tt.message))
			if d.Action != tt.action || d.Rule != tt.rule || d.Monitor {
				t.Errorf("got %+v, want %s by %q", d, tt.action, tt.rule)
			}
		})
	}
	// The zero node from config.Config.Policy and an explicit null mean
	// the same.
	for _, n := range []*yaml.Node{{}, {Kind: yaml.ScalarNode, Tag: "!!null"}} {
		if p, err := Load(n, "x.yaml"); err != nil || !p.Builtin() {
			t.Errorf("Load(%v) = %v, %v; want the built-in policy", n, p, err)
		}
	}
}

// BUILTIN.md shows the built-in policy as it is.
func TestBuiltinDoc(t *testing.T) {
	doc, err := os.ReadFile("BUILTIN.md")
	if err != nil {
		t.Fatal(err)
	}
	var yamlBlock strings.Builder
	for line := range strings.Lines(builtinPolicy) {
		yamlBlock.WriteString("  " + line)
	}
	if !strings.Contains(string(doc), "policy:\n"+yamlBlock.String()) {
		t.Errorf("BUILTIN.md does not contain the built-in policy as:\npolicy:\n%s", yamlBlock.String())
	}
}

// A policy section without rules keeps the built-in rules under its own
// settings, so `mode: monitor` alone tries them out.
func TestSectionWithoutRules(t *testing.T) {
	p := mustLoad(t, `policy:
  mode: monitor
  internal_domains: [example.net]
`)
	d, _ := p.Evaluate(context.Background(), loadMessage(t, "survey.eml"))
	if d.Action != Explode || !d.Monitor || d.Effective() != Pass {
		t.Errorf("got %+v, want a monitored explode", d)
	}
	// example.net is internal now: two customers, one external domain.
	d, _ = p.Evaluate(context.Background(), msgInput("To: a@example.net, b@example.org"))
	if d.Action != Pass || d.Rule != "" {
		t.Errorf("got %+v, want pass", d)
	}
}

func TestActions(t *testing.T) {
	p := mustLoad(t, `policy:
  rules:
    - name: to-reject
      when: sender_domain == "reject.example"
      action: reject
      message: "Send mailings through the campaign tool, not To:/Cc:"
    - name: to-reject-plain
      when: sender_domain == "reject2.example"
      action: reject
    - name: to-quarantine
      when: body.addresses >= 50
      action: quarantine
    - name: to-explode
      when: visible.external >= 2
      action: explode
    - name: to-bcc
      when: visible.count == 1 && envelope.not_visible >= 1
      action: bcc
    - name: to-pass
      when: envelope.count == 1
      action: pass
  default_action: quarantine
`)
	in := func(sender string, header string, rcpt ...string) *Input {
		i := msgInput(header, rcpt...)
		i.Sender = sender
		return i
	}
	tests := []struct {
		name  string
		in    *Input
		want  Action
		rule  string
		msg   string
		input func(*Input)
	}{
		{name: "reject with message", in: in("a@reject.example", "To: x@example.com"), want: Reject, rule: "to-reject",
			msg: "Send mailings through the campaign tool, not To:/Cc:"},
		{name: "reject without message", in: in("a@reject2.example", "To: x@example.com"), want: Reject, rule: "to-reject-plain",
			msg: "Message refused by the mail policy (rule to-reject-plain); contact your mail administrator"},
		{name: "quarantine", in: in("a@brand.example", "To: x@example.com"), want: Quarantine, rule: "to-quarantine",
			input: func(i *Input) { i.Body.Addresses = 50 }},
		{name: "explode", in: in("a@brand.example", "To: x@example.com, y@example.org"), want: Explode, rule: "to-explode"},
		{name: "bcc", in: in("a@brand.example", "To: list@brand.example", "a@example.com", "b@example.org"), want: Bcc, rule: "to-bcc"},
		{name: "pass", in: in("a@brand.example", "To: x@example.com"), want: Pass, rule: "to-pass"},
		{name: "default", in: in("a@brand.example", "To: x@example.com, x@example.com", "x@example.com", "x@example.com"), want: Quarantine, rule: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.input != nil {
				tt.input(tt.in)
			}
			d, _ := p.Evaluate(context.Background(), tt.in)
			if d.Action != tt.want || d.Rule != tt.rule || d.Message != tt.msg || d.Error != "" {
				t.Errorf("got %+v\nwant %s by %q with message %q", d, tt.want, tt.rule, tt.msg)
			}
		})
	}
}

func TestFirstMatchWinsAndReason(t *testing.T) {
	p := mustLoad(t, `policy:
  rules:
    - name: many-visible
      when: visible.external >= 2
      action: explode
    - name: also-matches
      when: visible.count >= 1
      action: quarantine
`)
	d, _ := p.Evaluate(context.Background(), loadMessage(t, "survey.eml"))
	want := "rule many-visible: visible.external >= 2 (visible.external=300)"
	if d.Rule != "many-visible" || d.Reason != want {
		t.Errorf("got %+v, want reason %q", d, want)
	}
}

// The Reason may reach the sender: it names numbers and flags, never a
// string taken from the message (addresses, header values).
func TestReasonCarriesNoAddresses(t *testing.T) {
	p := mustLoad(t, `policy:
  rules:
    - name: r
      when: |
        visible.addresses.exists(a, a.startsWith("secret"))
        && sender != "" && visible.count > 0 && header["subject"][0] != ""
      action: quarantine
`)
	d, _ := p.Evaluate(context.Background(), msgInput("To: secret.person@example.com\nSubject: private"))
	if d.Rule != "r" {
		t.Fatalf("got %+v", d)
	}
	for _, s := range []string{"secret.person", "crm@brand", "private"} {
		if strings.Contains(d.Reason, s) {
			t.Errorf("Reason %q contains %q", d.Reason, s)
		}
	}
	if strings.ContainsAny(d.Reason, "\r\n") || !strings.Contains(d.Reason, "visible.count=1") {
		t.Errorf("Reason %q: want one line with visible.count=1", d.Reason)
	}
}

func TestMonitor(t *testing.T) {
	survey := loadMessage(t, "survey.eml")
	ctx := context.Background()

	t.Run("policy in monitor mode", func(t *testing.T) {
		p := mustLoad(t, `policy:
  mode: monitor
  rules:
    - {name: many-visible, when: visible.external >= 2, action: explode}
`)
		d, _ := p.Evaluate(ctx, survey)
		if d.Action != Explode || !d.Monitor || d.Effective() != Pass {
			t.Errorf("got %+v: want explode recorded, pass carried out", d)
		}
	})
	t.Run("monitored rule first, enforced rule below still applies", func(t *testing.T) {
		p := mustLoad(t, `policy:
  rules:
    - {name: trial, when: visible.count >= 100, action: reject, mode: monitor}
    - {name: many-visible, when: visible.external >= 2, action: explode}
`)
		d, _ := p.Evaluate(ctx, survey)
		if d.Rule != "many-visible" || d.Monitor || d.Effective() != Explode {
			t.Errorf("got %+v: a monitored rule must not weaken the rules below it", d)
		}
		if len(d.Monitored) != 1 || d.Monitored[0].Rule != "trial" || d.Monitored[0].Action != Reject || !d.Monitored[0].Monitor {
			t.Errorf("Monitored = %+v, want the trial rule's reject", d.Monitored)
		}
	})
	t.Run("monitored rule only, default pass", func(t *testing.T) {
		p := mustLoad(t, `policy:
  rules:
    - {name: trial, when: visible.count >= 100, action: quarantine, mode: monitor}
`)
		d, _ := p.Evaluate(ctx, survey)
		if d.Rule != "trial" || d.Action != Quarantine || !d.Monitor || d.Effective() != Pass || len(d.Monitored) != 0 {
			t.Errorf("got %+v, want the trial rule's decision in monitor mode", d)
		}
	})
	t.Run("monitored rule does not override a strict default", func(t *testing.T) {
		p := mustLoad(t, `policy:
  default_action: quarantine
  rules:
    - {name: trial, when: visible.count >= 100, action: explode, mode: monitor}
`)
		d, _ := p.Evaluate(ctx, survey)
		if d.Effective() != Quarantine || d.Rule != "" || len(d.Monitored) != 1 {
			t.Errorf("got %+v, want the default quarantine with the trial recorded", d)
		}
	})
	t.Run("enforced rule in a monitor policy", func(t *testing.T) {
		p := mustLoad(t, `policy:
  mode: monitor
  rules:
    - {name: new, when: visible.external >= 2, action: explode}
    - {name: proven, when: visible.count >= 100, action: quarantine, mode: enforce}
`)
		d, _ := p.Evaluate(ctx, survey)
		if d.Rule != "proven" || d.Monitor || d.Effective() != Quarantine || len(d.Monitored) != 1 || d.Monitored[0].Rule != "new" {
			t.Errorf("got %+v", d)
		}
	})
	t.Run("parse error in a monitor policy", func(t *testing.T) {
		p := mustLoad(t, "policy:\n  mode: monitor\n")
		d, _ := p.Evaluate(ctx, msgInput(hugeHeader(), "jane@example.com"))
		if d.Rule != ParseErrorRule || d.Action != Quarantine || !d.Monitor {
			t.Errorf("got %+v", d)
		}
	})
}

// Unparsable recipients are decided before any rule: a rule written as
// "fewer than two visible means harmless" must not pass them.
func TestParseErrorFailsClosed(t *testing.T) {
	p := mustLoad(t, `policy:
  on_parse_error: reject
  rules:
    - {name: harmless, when: visible.count < 2, action: pass}
`)
	for _, h := range []string{hugeHeader()} {
		d, _ := p.Evaluate(context.Background(), msgInput(h, "jane@example.com"))
		if d.Action != Reject || d.Rule != ParseErrorRule || d.Error == "" || !strings.Contains(d.Reason, "failing closed") ||
			d.Message != "Message refused: its header could not be read" {
			t.Errorf("%q: got %+v", h, d)
		}
	}
}

// hugeHeader is a header block of which nothing is read: larger than
// MaxHeaderBytes.
func hugeHeader() string {
	return "To: ok@example.com\nX-Big: " + strings.Repeat("x", MaxHeaderBytes) + "\nCc: hidden@example.org"
}

func TestRuntimeErrorsFailClosed(t *testing.T) {
	p := mustLoad(t, `policy:
  on_parse_error: quarantine
  rules:
    - name: quadratic
      when: visible.domain_list.exists(a, visible.domain_list.exists(b, a + b == "never"))
      action: pass
`)
	var h strings.Builder
	h.WriteString("To: ")
	for i := range 2000 {
		fmt.Fprintf(&h, "u@d%d.example.com, ", i)
	}
	h.WriteString("last@example.org")
	in := msgInput(h.String(), "u@example.com")
	p.timeout = time.Minute // the cost limit, not the clock, is under test (-race is slow)

	d, _ := p.Evaluate(context.Background(), in)
	if d.Action != Quarantine || d.Rule != "quadratic" || !strings.Contains(d.Error, "cost") || !strings.Contains(d.Reason, "failing closed") {
		t.Errorf("cost limit: got %+v", d)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, _ = p.Evaluate(ctx, in)
	if d.Action != Quarantine || d.Error == "" {
		t.Errorf("cancelled: got %+v", d)
	}
}

// Load errors name the file and the line of the offending key, and say
// what is wrong in words a config author understands.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // each must appear in the error
	}{
		{"typo in a variable",
			"policy:\n  rules:\n    - name: a\n      when: visible.cuont > 2\n      action: pass\n",
			[]string{"bccguard.yaml:4: rule \"a\": when: undeclared reference to 'visible.cuont' (did you mean 'visible.count'?)"}},
		{"typo on the third line of a block condition",
			"policy:\n  rules:\n    - name: a\n      when: |\n        visible.count > 2 &&\n        visible.external > 1 &&\n        envelope.cuont > 1\n      action: pass\n",
			[]string{"bccguard.yaml:7: rule \"a\": when: undeclared reference to 'envelope.cuont'"}},
		{"not a bool",
			"policy:\n  rules:\n    - name: a\n      when: visible.count + 1\n      action: pass\n",
			[]string{"bccguard.yaml:4: rule \"a\": when: must be a condition (bool), but gives int"}},
		{"type error",
			"policy:\n  rules:\n    - name: a\n      when: sender > 3\n      action: pass\n",
			[]string{"bccguard.yaml:4:", "no matching overload"}},
		{"syntax error",
			"policy:\n  rules:\n    - name: a\n      when: visible.count >\n      action: pass\n",
			[]string{"bccguard.yaml:4: rule \"a\": when:"}},
		{"unknown key in a rule",
			"policy:\n  rules:\n    - name: a\n      when: true\n      actoin: pass\n",
			[]string{`bccguard.yaml:5: rule "a": unknown key "actoin" (did you mean "action"?)`, `bccguard.yaml:3: rule "a": needs an action`}},
		{"unknown key in the policy",
			"policy:\n  mode: enforce\n  internal_domain: [example.com]\n",
			[]string{`bccguard.yaml:3: policy: unknown key "internal_domain" (did you mean "internal_domains"?)`}},
		{"unknown action",
			"policy:\n  default_action: drop\n",
			[]string{`bccguard.yaml:2: default_action: unknown action "drop"`}},
		{"bad mode",
			"policy:\n  mode: audit\n",
			[]string{`bccguard.yaml:2: policy mode: expected enforce or monitor, not "audit"`}},
		{"message on a non-reject rule",
			"policy:\n  rules:\n    - name: a\n      when: true\n      action: explode\n      message: hi\n",
			[]string{`bccguard.yaml:6: rule "a": message is only used with action reject`}},
		{"message with a line break",
			"policy:\n  rules:\n    - name: a\n      when: true\n      action: reject\n      message: \"one\\r\\n250 two\"\n",
			[]string{`bccguard.yaml:6: rule "a": message must be one line of printable ASCII`}},
		{"duplicate rule names",
			"policy:\n  rules:\n    - {name: a, when: 'true', action: pass}\n    - {name: a, when: 'true', action: pass}\n",
			[]string{`bccguard.yaml:4: rule 2: name "a" is used by an earlier rule`}},
		{"missing condition",
			"policy:\n  rules:\n    - name: a\n      action: pass\n",
			[]string{`bccguard.yaml:3: rule "a": needs a condition (when:)`}},
		{"bad internal domain",
			"policy:\n  internal_domains:\n    - example.com\n    - jane@example.com\n",
			[]string{`bccguard.yaml:4: internal_domains: "jane@example.com" is not a domain name`}},
		{"header lookup without a guard",
			"policy:\n  rules:\n    - name: bulk\n      when: header[\"precedence\"][0] == \"bulk\"\n      action: reject\n",
			[]string{`bccguard.yaml:4: rule "bulk": when: fails on a minimal message`, "no such key: precedence"}},
		{"always over the cost limit",
			"policy:\n  rules:\n    - name: slow\n      when: '" + slowConstant + "'\n      action: pass\n",
			[]string{`bccguard.yaml:4: rule "slow": when: fails on a minimal message`, "exceeded"}}, // cost limit, or under -race the time limit
		{"rules not a list",
			"policy:\n  rules:\n",
			[]string{`bccguard.yaml:2: rules: expected a list of rules`}},
		{"policy not a mapping",
			"policy: [a, b]\n",
			[]string{`bccguard.yaml:1: policy: expected a mapping`}},
		{"bad test case",
			"policy:\n  tests:\n    - name: t\n      message: m.eml\n      expect: maybe\n      client_ip: 999.1.1.1\n      form: x@example.com\n",
			[]string{`bccguard.yaml:5: test "t" expect: unknown action "maybe"`, `bccguard.yaml:6: test "t": client_ip "999.1.1.1" is not an IP address`,
				`bccguard.yaml:7: test "t": unknown key "form" (did you mean "from"?)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadYAML(t, tt.yaml)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain:\n%s", err, w)
				}
			}
			// Every error is a *yamlnode.Error with the file and a line.
			var errs []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			} else {
				errs = []error{err}
			}
			for _, e := range errs {
				var ce *yamlnode.Error
				if !errors.As(e, &ce) || ce.File != "bccguard.yaml" || ce.Line == 0 {
					t.Errorf("%v (%T): want a *yamlnode.Error with file and line", e, e)
				}
			}
		})
	}
}

// slowConstant costs far more than CostLimit on any message.
var slowConstant = func() string {
	l := "[" + strings.TrimSuffix(strings.Repeat("1,", 40), ",") + "]"
	return fmt.Sprintf("%s.all(a, %s.all(b, %s.all(c, %s.all(d, a + b + c + d > 0))))", l, l, l, l)
}()

func TestExplain(t *testing.T) {
	p := mustLoad(t, `policy:
  internal_domains: [brand.example]
  rules:
    - name: list-in-body
      when: body.addresses >= 50
      action: quarantine
    - name: many-visible
      when: visible.external >= 2 && visible.domains >= 2
      action: explode
    - name: broken-at-runtime
      when: visible.count > 1 && visible.domain_list[5] == "x"
      action: pass
`)
	e := p.Explain(context.Background(), loadMessage(t, "two-customers.eml"))
	if e.Action != Explode || e.Rule != "many-visible" {
		t.Errorf("decision %+v", e.Decision)
	}
	var got []string
	for _, r := range e.Rules {
		var vals []string
		for _, v := range r.Values {
			vals = append(vals, v.Name+"="+v.Value)
		}
		got = append(got, fmt.Sprintf("%s matched=%v error=%v %s", r.Name, r.Matched, r.Error != "", strings.Join(vals, " ")))
	}
	want := []string{
		"on_parse_error matched=false error=false visible.parse_error=false",
		"list-in-body matched=false error=false body.addresses=0",
		"many-visible matched=true error=false visible.external=2 visible.domains=2",
		"broken-at-runtime matched=false error=true visible.count=2 visible.domain_list=[\"example.net\", \"example.org\"]",
		"unsafe-copy matched=false error=false ", // the explode's copies can be made clean
	}
	if !slices.Equal(got, want) {
		t.Errorf("rules:\n got  %q\n want %q", got, want)
	}
	// A header lookup shows the field's values, not the whole header.
	c, err := config.Load("testdata/bccguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bulk, err := Load(&c.Policy, c.File)
	if err != nil {
		t.Fatal(err)
	}
	in := loadMessage(t, "bulk.eml")
	in.User = "crm"
	eb := bulk.Explain(context.Background(), in)
	r := eb.Rules[2]
	if r.Name != "newsletters-through-the-list-tool" || !r.Matched ||
		fmt.Sprint(r.Values) != `[{client.user "crm" false} {header["precedence"] ["bulk"] false}]` {
		t.Errorf("bulk rule: %+v", r)
	}
	if eb.Action != Reject || eb.Message != "Send newsletters through the newsletter tool, not the CRM" {
		t.Errorf("bulk decision: %+v", eb.Decision)
	}

	// --json: the decision's fields at the top level.
	b, _ := json.Marshal(e)
	var top map[string]any
	json.Unmarshal(b, &top)
	if top["action"] != "explode" || top["rule"] != "many-visible" || top["rules"] == nil {
		t.Errorf("JSON: %s", b)
	}
}

// The test cases of testdata/bccguard.yaml, loaded through the config
// package as the binary does.
func TestRunTests(t *testing.T) {
	c, err := config.Load("testdata/bccguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Load(&c.Policy, c.File)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Tests()) != 6 {
		t.Fatalf("%d test cases", len(p.Tests()))
	}
	for _, r := range p.RunTests(context.Background(), nil) {
		if !r.Passed {
			t.Errorf("%s (line %d): %s", r.Case.Name, r.Case.Line, r.Failure)
		}
	}
}

func TestRunTestsReportsFailures(t *testing.T) {
	p := mustLoad(t, `policy:
  rules:
    - {name: many-visible, when: visible.external >= 2, action: explode}
  tests:
    - name: wrong expectation
      message: messages/one-to-one.eml
      expect: explode
    - name: wrong rule
      message: messages/survey.eml
      expect: explode
      rule: other
    - name: missing file
      message: messages/nope.eml
      expect: pass
    - name: envelope from the test
      message: messages/one-to-one.eml
      rcpt: [anna@example.net, bob@example.org]
      from: support@brand.example
      expect: pass
`)
	load := func(path string) ([]byte, error) { return os.ReadFile(filepath.Join("testdata", path)) }
	res := p.RunTests(context.Background(), load)
	want := []string{"expected explode, got pass", `expected rule "other", got rule many-visible`, "cannot read message", ""}
	for i, r := range res {
		if r.Passed != (want[i] == "") || !strings.Contains(r.Failure, want[i]) {
			t.Errorf("%s: passed=%v failure=%q, want %q", r.Case.Name, r.Passed, r.Failure, want[i])
		}
	}
}

// A Visible computed with other internal domains (as across a reload) is
// recomputed, not trusted.
func TestInputVisibleReuse(t *testing.T) {
	p := mustLoad(t, "policy:\n  internal_domains: [example.org]\n  rules:\n    - {name: x, when: visible.external >= 2, action: explode}\n")
	in := msgInput("To: a@example.com, b@example.org")
	v := ParseVisible(in.Header, nil)
	in.Visible = &v
	if d, _ := p.Evaluate(context.Background(), in); d.Action != Pass {
		t.Errorf("got %+v: b@example.org is internal under this policy", d)
	}
	if v.Recipients[1].Internal {
		t.Error("caller's Visible was modified")
	}
}
