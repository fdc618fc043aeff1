package policy

import (
	"strings"
	"testing"

	"github.com/bccguard/bccguard/config"
)

// The policy section is read through the same strict layer as the rest of
// the file (config/yamlnode): the same words for a key given twice, a
// value of the wrong kind, or an unknown key in a nested list.
func TestLoadStrictErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"key given twice in a rule",
			"policy:\n  rules:\n    - name: a\n      when: 'true'\n      action: pass\n      action: reject\n",
			[]string{`bccguard.yaml:6: rule "a": key "action" given twice (first on line 5)`}},
		{"key given twice in the policy",
			"policy:\n  mode: enforce\n  mode: monitor\n",
			[]string{`bccguard.yaml:3: policy: key "mode" given twice (first on line 2)`}},
		{"list for a value",
			"policy:\n  rules:\n    - name: a\n      when: [x]\n      action: pass\n",
			[]string{`bccguard.yaml:4: rule "a" when: expected a value, got a list`}},
		{"mapping for a list",
			"policy:\n  internal_domains: {a: b}\n",
			[]string{`bccguard.yaml:2: internal_domains: expected a list, got a mapping`}},
		{"rule not a mapping",
			"policy:\n  rules:\n    - just text\n",
			[]string{`bccguard.yaml:3: rule 1: expected a mapping with keys name, when, action`}},
		{"unknown key in content",
			"policy:\n  content:\n    max_entires: 10\n",
			[]string{`bccguard.yaml:3: policy content: unknown key "max_entires" (did you mean "max_entries"?)`}},
		{"unknown key in the second test",
			"policy:\n  tests:\n    - {name: a, message: m.eml, expect: pass}\n    - {name: b, message: m.eml, expect: pass, rcpts: [x]}\n",
			[]string{`bccguard.yaml:4: test "b": unknown key "rcpts" (did you mean "rcpt"?)`}},
		{"bad on_unsafe_copy",
			"policy:\n  on_unsafe_copy: pass\n",
			[]string{`bccguard.yaml:2: on_unsafe_copy: expected quarantine, reject or allow, not "pass"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadYAML(t, tc.yaml)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain:\n%s", err, w)
				}
			}
		})
	}
}

// A file with errors in both its own sections and its policy reports them
// in the same form, through config.Parse and Load as check-config does.
func TestConfigAndPolicyErrorsAlike(t *testing.T) {
	_, err := config.Parse("bccguard.yaml", []byte("upstream:\n  adress: x\n"))
	if err == nil || err.Error() != `bccguard.yaml:2: upstream: unknown key "adress" (did you mean "address"?)` {
		t.Errorf("config error %v", err)
	}
	c, err := config.Parse("bccguard.yaml", []byte("policy:\n  rules:\n    - name: a\n      when: 'true'\n      actoin: pass\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Load(&c.Policy, c.File)
	if err == nil || !strings.Contains(err.Error(), `bccguard.yaml:5: rule "a": unknown key "actoin" (did you mean "action"?)`) {
		t.Errorf("policy error %v", err)
	}
}

func TestParseUnsafeCopy(t *testing.T) {
	for in, want := range map[string]UnsafeCopy{"quarantine": UnsafeQuarantine, "Reject": UnsafeReject, " allow ": UnsafeAllow} {
		if got, err := ParseUnsafeCopy(in); err != nil || got != want {
			t.Errorf("ParseUnsafeCopy(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseUnsafeCopy("pass"); err == nil {
		t.Error("pass is not an on_unsafe_copy setting")
	}
	if UnsafeAllow.action() != Quarantine || UnsafeReject.action() != Reject {
		t.Error("allow records the guard as the quarantine it would have been; reject refuses")
	}
}
