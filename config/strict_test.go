package config

import (
	"strings"
	"testing"
)

// The file is checked against its types before it is decoded: unknown
// keys (with the key meant), keys given twice and values of the wrong kind
// are errors in the file's words, with the line, at any depth, including
// inside the elements of lists, which are named by their name: key.
func TestStrictErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"typo in a listener",
			"listeners:\n  - name: smtp\n    address: 127.0.0.1:25\n    adress: 127.0.0.1:26\n",
			[]string{`t.yaml:4: listener "smtp": unknown key "adress" (did you mean "address"?)`}},
		{"typo at the top", "hostnme: relay.example.com\n",
			[]string{`t.yaml:1: configuration: unknown key "hostnme" (did you mean "hostname"?)`}},
		{"typo in a section", "upstream:\n  adress: 127.0.0.1:25\n",
			[]string{`t.yaml:2: upstream: unknown key "adress" (did you mean "address"?)`}},
		{"typo in a listener's limits",
			"listeners:\n  - name: smtp\n    address: 127.0.0.1:25\n    limits:\n      max_recipient: 10\n",
			[]string{`t.yaml:5: listener "smtp" limits: unknown key "max_recipient" (did you mean "max_recipients"?)`}},
		{"typo in a rate limit",
			"rate_limits:\n  - name: crm\n    key: user\n    per: hour\n    mesages: 10\n",
			[]string{`t.yaml:5: rate limit "crm": unknown key "mesages" (did you mean "messages"?)`}},
		{"typo in a notify channel",
			"notify:\n  channels:\n    - name: sec\n      type: email\n      too: s@example.com\n",
			[]string{`t.yaml:5: notify channel "sec": unknown key "too" (did you mean "to"?)`}},
		{"unnamed element by position",
			"admin:\n  tokens:\n    - {name: a, sha256: x, role: viewer}\n    - {sha256: x, rol: viewer}\n",
			[]string{`t.yaml:4: admin token 2: unknown key "rol" (did you mean "role"?)`}},
		{"typo in a dkim key",
			"dkim:\n  keys:\n    - domain: brand.example\n      selecter: s1\n",
			[]string{`t.yaml:4: dkim key 1: unknown key "selecter" (did you mean "selector"?)`}},
		{"typo in an auth user",
			"auth:\n  users:\n    - name: crm\n      password: x\n",
			[]string{`t.yaml:4: auth user "crm": unknown key "password"; known keys: name, password_hash`}},
		{"several at once",
			"hostnme: a\nupstream:\n  conections: 3\n",
			[]string{`t.yaml:1: configuration: unknown key "hostnme"`, `t.yaml:3: upstream: unknown key "conections" (did you mean "connections"?)`}},

		{"key given twice", "upstream:\n  address: 127.0.0.1:25\n  address: 127.0.0.1:26\n",
			[]string{`t.yaml:3: upstream: key "address" given twice (first on line 2)`}},
		{"key given twice in a list element",
			"listeners:\n  - name: smtp\n    address: 127.0.0.1:25\n    tls: none\n    tls: starttls\n",
			[]string{`t.yaml:5: listener "smtp": key "tls" given twice (first on line 4)`}},
		{"section given twice", "log:\n  level: info\nlog:\n  level: debug\n",
			[]string{`t.yaml:3: configuration: key "log" given twice (first on line 1)`}},

		{"text for a number", "upstream:\n  connections: eight\n",
			[]string{`t.yaml:2: upstream.connections: expected a whole number, got "eight"`}},
		{"text for a number in a list element",
			"listeners:\n  - name: smtp\n    address: 127.0.0.1:25\n    limits: {max_recipients: many}\n",
			[]string{`t.yaml:4: listener "smtp" limits.max_recipients: expected a whole number, got "many"`}},
		{"fraction for a number", "rate_limits:\n  - {name: a, key: user, per: hour, messages: 1.5}\n",
			[]string{`t.yaml:2: rate limit "a" messages: expected a whole number, got "1.5"`}},
		{"text for a bool", "dkim:\n  verify: sometimes\n",
			[]string{`t.yaml:2: dkim.verify: expected true or false, got "sometimes"`}},
		{"list for a value", "hostname: [a, b]\n",
			[]string{`t.yaml:1: hostname: expected a value, got a list`}},
		{"value for a list", "listeners: smtp\n",
			[]string{`t.yaml:1: listeners: expected a list, got "smtp"`}},
		{"value for a mapping", "upstream: 127.0.0.1:25\n",
			[]string{`t.yaml:1: upstream: expected a mapping with keys address, `, `got "127.0.0.1:25"`}},
		{"not a mapping at all", "just text\n",
			[]string{`t.yaml:1: configuration: expected a mapping with keys `}},
		{"mapping in a list of values", "quarantine:\n  four_eyes_rules:\n    - a\n    - {b: c}\n",
			[]string{`t.yaml:4: quarantine.four_eyes_rules item 2: expected a value, got a mapping`}},
		{"bad duration among other errors", "queue:\n  retry_first: soon\nhostnme: a\n",
			[]string{`t.yaml:2: invalid duration "soon"`, `t.yaml:3: configuration: unknown key "hostnme"`}},

		{"typo in a merged mapping",
			"listeners:\n  - &base\n    name: a\n    address: 127.0.0.1:25\n  - <<: *base\n    name: b\n    adress: 127.0.0.1:26\n",
			[]string{`t.yaml:7: listener "b": unknown key "adress" (did you mean "address"?)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain:\n%s", err, w)
				}
			}
			if strings.Contains(err.Error(), "config.") || strings.Contains(err.Error(), "!!") {
				t.Errorf("error %q speaks of Go types or YAML tags, not of the file", err)
			}
		})
	}
}

// What Strict accepts decodes as before: merge keys, anchors, nulls.
func TestStrictAccepts(t *testing.T) {
	_, err := Parse("t.yaml", []byte(`
defaults: &limits
  max_recipients: 10
listeners:
  - name: a
    address: 127.0.0.1:2525
    limits: *limits
  - <<: {name: x, address: 127.0.0.1:2526}
    name: b
auth:
log: ~
`))
	if err == nil {
		t.Fatal("the unknown top-level key defaults: was accepted")
	}
	c, err := Parse("t.yaml", []byte(`
listeners:
  - &a
    name: a
    address: 127.0.0.1:2525
    limits: {max_recipients: 10}
  - <<: *a
    name: b
    address: 127.0.0.1:2526
auth:
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Listeners) != 2 || c.Listeners[1].Name != "b" || c.Listeners[1].Limits.MaxRecipients != 10 || c.Listeners[1].Address != "127.0.0.1:2526" {
		t.Errorf("listeners = %+v", c.Listeners)
	}
}
