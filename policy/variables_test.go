package policy

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"strings"
	"testing"

	"cel.dev/cel-go/cel"
)

var update = flag.Bool("update", false, "rewrite VARIABLES.md from the variable table")

// Every variable, with its value for one message that exercises them all.
func TestVariables(t *testing.T) {
	raw := "From: crm@brand.example\r\n" +
		"To: Anna <anna@example.net>, colleague@brand.example, \"zoe@gmail.com\" <survey@brand.example>\r\n" +
		"Cc: shown-only@example.org\r\n" +
		"Reply-To: hidden@example.com\r\n" +
		"X-Customers: one@example.edu, two@example.edu\r\n" +
		"Precedence: bulk\r\n" +
		"Subject: hi\r\n\r\n" +
		"write to a@example.com or b@example.com, call +44 20 7946 0001\r\n" +
		"Anna's address: anna@example.net\r\n"
	in := BuildInput([]byte(raw),
		Envelope{Sender: "CRM@Brand.Example", Recipients: []string{"anna@example.net", "colleague@brand.example", "hidden@example.com", "bcc@qq.com"}},
		Client{Listener: "submission", IP: netip.MustParseAddr("::ffff:192.0.2.10"), User: "crm"})
	in.DKIM = DKIM{Valid: true, Domains: []string{"brand.example", "esp.example"}, CanSign: true}
	in.Counts = ClientCounts{MessagesLastMinute: 1, MessagesLastHour: 2, MessagesLastDay: 3, RecipientsLastMinute: 4, RecipientsLastHour: 5, RecipientsLastDay: 6}
	p := mustLoad(t, "policy:\n  internal_domains: [brand.example]\n  rules: []\n")
	want := map[string]string{
		"visible.count":                 "8",
		"visible.external":              "6",
		"visible.internal":              "2",
		"visible.domains":               "6", // gmail.com's zoe is an organisation of her own
		"visible.external_domains":      "5",
		"visible.consumer":              "1",
		"visible.elsewhere":             "3", // hidden@ in Reply-To:, the two in X-Customers:
		"visible.in_names":              "1",
		"visible.listed":                "2",
		"visible.fields":                `["cc", "reply-to", "to", "x-customers"]`,
		"visible.domain_list":           `["brand.example", "example.com", "example.edu", "example.net", "example.org", "gmail.com"]`,
		"visible.addresses":             `["anna@example.net", "colleague@brand.example", "survey@brand.example", "zoe@gmail.com", "shown-only@example.org", "hidden@example.com", "one@example.edu", "two@example.edu"]`,
		"visible.not_in_envelope":       "5",
		"visible.parse_error":           "false",
		"visible.truncated":             "false",
		"envelope.count":                "4",
		"envelope.not_visible":          "1",
		"envelope.external":             "3",
		"envelope.domains":              "4",
		"envelope.consumer":             "1",
		"envelope.domain_list":          `["brand.example", "example.com", "example.net", "qq.com"]`,
		"envelope.recipients":           `["anna@example.net", "colleague@brand.example", "hidden@example.com", "bcc@qq.com"]`,
		"sender":                        `"CRM@Brand.Example"`,
		"sender_domain":                 `"brand.example"`,
		"client.user":                   `"crm"`,
		"client.ip":                     `"192.0.2.10"`,
		"client.listener":               `"submission"`,
		"client.messages_last_minute":   "1",
		"client.messages_last_hour":     "2",
		"client.messages_last_day":      "3",
		"client.recipients_last_minute": "4",
		"client.recipients_last_hour":   "5",
		"client.recipients_last_day":    "6",
		"body.addresses":                "3",
		"body.phones":                   "1",
		"body.cards":                    "0",
		"body.ibans":                    "0",
		"body.records":                  "0",
		"body.unscannable":              "[]",
		"attachments":                   "[]",
		"body.recipients":               "1",
		"body.recipients_by_address":    "1",
		"body.recipients_by_name":       "0",
		"body.shows_other_recipient":    "true",
		"body.truncated":                "false",
		"dkim.valid":                    "true",
		"dkim.domains":                  `["brand.example", "esp.example"]`,
		"dkim.can_sign":                 "true",
		"size":                          fmt.Sprint(len(raw)),
		"header":                        "{7 header fields}",
	}
	e := p.Explain(context.Background(), in)
	for _, v := range e.Variables {
		w, ok := want[v.Name]
		if !ok {
			t.Errorf("%s has no expected value in this test", v.Name)
			continue
		}
		if v.Value != w {
			t.Errorf("%s = %s, want %s", v.Name, v.Value, w)
		}
		delete(want, v.Name)
	}
	for name := range want {
		t.Errorf("%s is not a variable", name)
	}
	// Each is usable in a condition, with the type documented.
	for _, v := range variables {
		cond := v.name + " == " + v.name
		if _, err := loadYAML(t, fmt.Sprintf("policy:\n  rules:\n    - {name: x, when: '%s', action: pass}\n", cond)); err != nil {
			t.Errorf("%s: %v", cond, err)
		}
	}
}

// VARIABLES.md is generated from the variable table; go test -update
// rewrites it.
func TestVariablesDoc(t *testing.T) {
	got := variablesMarkdown()
	if *update {
		if err := os.WriteFile("VARIABLES.md", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile("VARIABLES.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(have) != got {
		t.Error("VARIABLES.md is out of date: go test ./policy -run TestVariablesDoc -update")
	}
}

// figuresMarkdown lists FigureTable: what a hold records of its message.
func figuresMarkdown() string {
	var b strings.Builder
	b.WriteString("## Figures recorded with a hold\n\n" +
		"A held message keeps the values these variables had when it was decided, and\n" +
		"the review page shows them under these labels, in this order (the last ones\n" +
		"only when not zero). A figure the rule's reason names is highlighted.\n\n" +
		"| variable | shown as |\n|---|---|\n")
	for _, f := range FigureTable {
		opt := ""
		if !f.Always {
			opt = " (when not zero)"
		}
		fmt.Fprintf(&b, "| `%s` | %s%s |\n", f.Name, f.Label, opt)
	}
	b.WriteString("\n")
	return b.String()
}

func variablesMarkdown() string {
	var b strings.Builder
	b.WriteString(`# Policy variables

Rule conditions (` + "`when:`" + `) are [CEL](https://cel.dev) expressions over the
variables below. They are type-checked when the configuration is loaded: a
misspelt variable (` + "`visible.cuont`" + `), a type mismatch or a condition that is not
a bool is a configuration error with the line of its ` + "`when:`" + `.

<!-- Generated from policy/variables.go by: go test ./policy -run TestVariablesDoc -update -->

| variable | type | meaning |
|---|---|---|
`)
	for _, v := range variables {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.name, v.typ, v.doc)
	}
	b.WriteString(`
Addresses are compared case-insensitively (local part too: no real mailbox
distinguishes case, and a CRM that writes "Jane.Doe@" in To: but "jane.doe@"
in RCPT TO must not make her look like a Bcc recipient). Domains are
lowercased, internationalized domains in Unicode form. An internal domain
matches exactly; write ` + "`*.example.com`" + ` for its subdomains.

## What counts as visible

bccguard reads the header as mail clients show it (one reader for the
policy, the copies it makes and the review pages):

- **Every field.** Addressee fields (` + "`To:`, `Cc:`, `Apparently-To:`" + `)
  show recipients; so does any other field that shows an envelope recipient or
  an addressee by address or by the name given for it (` + "`Reply-To:`, `Sender:`,\n  `Mail-Followup-To:`, `Disposition-Notification-To:`, `Delivered-To:`, `X-Original-To:`,\n  `List-*:`, `Keywords:`, `Comments:`, `Subject:`, any `X-` field" + `, a line that is not a field),
  and a field that lists two or more other addresses shows them all.
- **Display names, group names and comments** holding addresses show them.
- **Obsolete and broken syntax** is read as clients read it: comments and white
  space anywhere, source routes, ` + "`Subject :`" + `, encoded words split or malformed,
  unqualified addresses (` + "`To: baz`" + `), a missing comma. A field that still does not
  parse counts every address-like token and every name in it. An mbox ` + "`From `" + `
  line or a stray line does not hide the fields around it; a bare CR ends a line.
- **Not people:** the sender's own addresses (` + "`From:`" + `, the envelope sender, other
  addresses at their domains in non-addressee fields), a mailing list's own
  addresses (` + "`List-*:`" + ` mailto targets, ` + "`X-BeenThere:`" + `, ...), one address of someone's own
  in a field such as ` + "`Reply-To:`" + `, and trace fields (` + "`Received:`, `Message-ID:`,\n  `References:`, `DKIM-Signature:`" + `, ...).

## Consumer mailbox domains

An address at one of these domains belongs to a private person: it counts as
an organisation of its own in ` + "`visible.domains`, `visible.external_domains`" + ` and
` + "`envelope.domains`" + `, and in ` + "`visible.consumer`" + ` / ` + "`envelope.consumer`" + `. Two customers at
gmail.com shown to each other are a customer list, not a thread with a partner
company. Add domains with ` + "`policy.consumer_domains: [isp.example]`" + ` (` + "`*.example`" + `
for subdomains).

` + consumerMarkdown() + `

## How rules are evaluated

- A message of whose header nothing can be made out (a header block larger
  than 8 MiB) gets the ` + "`on_parse_error`" + ` action (default ` + "`quarantine`" + `) before any rule
  runs.
- Rules are tried in order; the first matching rule in enforce mode decides.
  Matching rules in monitor mode are recorded and evaluation goes on, so a
  rule on trial never weakens the rules below it.
- No match: ` + "`default_action`" + ` (default ` + "`pass`" + `).
- A condition that fails at run time (a missing map key, an index out of
  range, the cost limit of ` + fmt.Sprint(CostLimit) + `, the time limit of ` + EvalTimeout.String() + ` for all
  rules of one message) fails closed: the message gets the ` + "`on_parse_error`" + `
  action and the error is logged. A condition that fails even on a minimal
  one-to-one message is refused at load.
- **Unsafe copies.** When the decision is ` + "`explode`" + ` or ` + "`bcc`" + ` (enforced), but a copy
  would still show another recipient where the rewrite cannot remove it (a
  ` + "`Subject:`" + `, a ` + "`List-Unsubscribe:`" + ` mailto, an ` + "`X-`" + ` field, an address list that
  does not parse), the copy is not made: ` + "`on_unsafe_copy`" + ` decides instead
  (` + "`quarantine`" + `, the default; ` + "`reject`" + `; or ` + "`allow`" + `, which makes the copies and only
  records the finding), as rule ` + "`unsafe-copy`" + `. In monitor mode it is recorded like
  any monitored decision.

` + unsafeCopyDoc + figuresMarkdown() + `## Functions

The CEL standard library (` + "`size`, `in`, `exists`, `all`, `filter`, `map`, `startsWith`, `endsWith`, `contains`, `matches`" + `),
the strings extension (` + "`lowerAscii`, `split`, `join`, `trim`, ..." + `), sets
(` + "`sets.contains`, `sets.intersects`" + `) and optional values (` + "`header[?\"x\"]`" + `).
Numbers compare across int and double.

## Examples

` + "```" + `yaml
when: visible.external >= 2 && visible.external_domains >= 2
when: body.addresses >= 50
when: envelope.not_visible > 0 && visible.count > 20
when: '"list-unsubscribe" in header && visible.count > 1'
when: header[?"precedence"].orValue([]).exists(v, v.lowerAscii() == "bulk")
when: client.user == "crm" && !sender_domain.endsWith("brand.example")
when: visible.domain_list.exists(d, d == "competitor.example")
when: visible.consumer >= 2
when: visible.fields.exists(f, f == "reply-to") && visible.elsewhere > 1
` + "```" + `
`)
	return b.String()
}

// unsafeCopyDoc documents on_unsafe_copy and the content settings.
const unsafeCopyDoc = "## The body, and the content scan's settings\n\nThe unsafe-copy guard also holds an `explode` or `bcc` whose body or an\nattachment shows another of the message's envelope recipients\n(`body.shows_other_recipient`): a rewrite changes only the header, so no\ncopy can hide them.\n\n```yaml\npolicy:\n  on_unsafe_copy: quarantine\n  content:\n    phone_region: GB        # numbers without +CC are read as this region's (default US)\n    max_inflated: 512MiB    # bytes decompressed per message\n    max_entries: 10000      # archive entries per message\n    max_depth: 8            # archives and attached messages nested\n    max_ratio: 200          # compression ratio of an entry over 1 MiB\n    time_limit: 30s         # the whole scan of one message\n    max_spill: 256MiB       # a ZIP-based attachment is copied to the data folder to be read\n```\n\nPast a bound the part is listed in `body.unscannable` with its reason.\n\n"

// consumerMarkdown lists the built-in consumer mailbox domains.
func consumerMarkdown() string {
	var b strings.Builder
	b.WriteString("Built in:")
	for i, d := range consumerDomains {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(" `" + d + "`")
	}
	b.WriteByte('.')
	return b.String()
}

// Every figure is an int variable, named once, and Evaluate returns it as
// conditions see it: the held message's record cannot drift from the rules.
func TestFigureTable(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range FigureTable {
		v, ok := variableByName[f.Name]
		switch {
		case !ok:
			t.Errorf("figure %s is not a variable", f.Name)
		case v.typ != cel.IntType:
			t.Errorf("figure %s is a %s variable, want int", f.Name, v.typ)
		case seen[f.Name]:
			t.Errorf("figure %s listed twice", f.Name)
		case f.Label == "":
			t.Errorf("figure %s has no label", f.Name)
		}
		seen[f.Name] = true
	}

	p := mustLoad(t, "policy:\n  internal_domains: [brand.example]\n  default_action: pass\n")
	in := msgInput("To: a@example.net, b@example.org, c@brand.example", "a@example.net", "b@example.org", "e@example.net")
	in.Body.Phones = 2
	_, fig := p.Evaluate(context.Background(), in)
	want := map[string]int{"visible.count": 3, "visible.external": 2, "visible.domains": 3, "visible.elsewhere": 0,
		"envelope.count": 3, "body.addresses": 0, "body.phones": 2}
	if got := fig.Counts(); !maps.Equal(got, want) {
		t.Errorf("Counts() = %v, want %v", got, want)
	}
	if v := fig.Visible(); v == nil || v.Count != 3 || len(v.Recipients) != 3 {
		t.Errorf("Visible() = %+v, want the 3 visible recipients", v)
	}
	if got := (Figures{}).Counts(); len(got) != 0 || (Figures{}).Visible() != nil {
		t.Errorf("zero Figures: Counts() = %v, Visible() = %v; want none", got, (Figures{}).Visible())
	}
}
