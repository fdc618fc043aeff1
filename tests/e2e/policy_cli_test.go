package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bccguard/bccguard/tests/harness"
)

// policyWithTests is a policy with its own test cases, as `bccguard policy
// test --config FILE` runs them like `promtool test rules`. %s is the
// expected action of the survey case.
const policyWithTests = `# a policy with its own tests
policy:
  internal_domains: [brand.example]
  rules:
    - name: customer-list-in-body
      when: body.addresses >= 50
      action: quarantine
    - name: many-visible
      when: visible.external >= 2
      action: explode
  default_action: pass
  tests:
    - name: survey mailing is exploded
      message: messages/survey.eml
      expect: %s
      rule: many-visible
    - name: customer export is held
      message: messages/export.eml
      from: sales@brand.example
      rcpt: [agency@example.net]
      expect: quarantine
      rule: customer-list-in-body
    - name: one-to-one passes
      message: messages/one.eml
      from: support@brand.example
      rcpt: [anna@example.net]
      expect: pass
`

func writePolicyTests(t *testing.T, expectSurvey string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bccguard.yaml")
	writeFile(t, cfg, fmt.Sprintf(policyWithTests, expectSurvey))
	msgs := filepath.Join(dir, "messages")
	if err := os.MkdirAll(msgs, 0o755); err != nil {
		t.Fatal(err)
	}
	cs := customers(6)
	writeFile(t, filepath.Join(msgs, "survey.eml"), "From: Brand Phones <crm@brand.example>\r\n"+
		addressField("To", cs[:4])+addressField("Cc", cs[4:])+"Subject: survey\r\n\r\nHow did we do?\r\n")
	writeFile(t, filepath.Join(msgs, "export.eml"), string(customerExport(200)))
	writeFile(t, filepath.Join(msgs, "one.eml"), "From: Support <support@brand.example>\r\n"+
		"To: Anna Example <anna@example.net>\r\nSubject: your ticket\r\n\r\nHello Anna\r\n")
	return cfg
}

// TestPolicyTestRunsConfigTests: `bccguard policy test --config FILE` runs
// the config's tests: list and exits 0 when all pass, 1 when one fails.
func TestPolicyTestRunsConfigTests(t *testing.T) {
	t.Parallel()
	t.Run("all pass", func(t *testing.T) {
		t.Parallel()
		cfg := writePolicyTests(t, "explode")
		res := harness.RunCLI(t, "policy", "test", "--config", cfg)
		if res.ExitCode != 0 {
			t.Fatalf("want exit 0 when every test case passes:\n%s", res)
		}
		for _, want := range []string{"survey mailing is exploded", "customer export is held", "one-to-one passes", "3 passed, 0 failed"} {
			if !strings.Contains(res.Stdout, want) {
				t.Errorf("output does not mention %q:\n%s", want, res)
			}
		}
	})
	t.Run("one fails", func(t *testing.T) {
		t.Parallel()
		cfg := writePolicyTests(t, "bcc") // the survey is exploded, not sent as bcc
		res := harness.RunCLI(t, "policy", "test", "--config", cfg)
		if res.ExitCode != 1 {
			t.Fatalf("want exit 1 when a test case fails:\n%s", res)
		}
		out := res.Stdout + res.Stderr
		failLine := ""
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "survey mailing is exploded") {
				failLine = l
			}
		}
		if !strings.Contains(failLine, "FAIL") || !strings.Contains(failLine, "explode") {
			t.Errorf("output does not report the survey case as failed with what it got (explode):\n%s", res)
		}
		if !strings.Contains(out, "2 passed, 1 failed") {
			t.Errorf("output does not count 2 passed, 1 failed:\n%s", res)
		}
	})
}

// TestCheckConfigNamesCELTypo: a misspelt variable in a condition is a
// configuration error (exit 2) that names the file and the line.
func TestCheckConfigNamesCELTypo(t *testing.T) {
	t.Parallel()
	text := `hostname: relay.brand.example
policy:
  rules:
    - name: customer-list-in-body
      when: body.addresses >= 50
      action: quarantine
    - name: many-visible
      when: visible.extrenal >= 2
      action: explode
`
	line := 0
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, "visible.extrenal") {
			line = i + 1
		}
	}
	cfg := filepath.Join(t.TempDir(), "typo.yaml")
	writeFile(t, cfg, text)
	res := harness.RunCLI(t, "check-config", "--config", cfg)
	if res.ExitCode != 2 {
		t.Fatalf("check-config of a policy with a CEL typo: want exit 2:\n%s", res)
	}
	out := res.Stdout + res.Stderr
	if want := fmt.Sprintf("%s:%d", cfg, line); !strings.Contains(out, want) {
		t.Errorf("check-config does not name the line of the typo (%s):\n%s", want, res)
	}
	if !strings.Contains(out, "extrenal") {
		t.Errorf("check-config does not name the misspelt variable:\n%s", res)
	}

	// The same file is fine once the typo is fixed.
	writeFile(t, cfg, strings.Replace(text, "extrenal", "external", 1))
	if res := harness.RunCLI(t, "check-config", "--config", cfg); res.ExitCode != 0 {
		t.Errorf("check-config of the corrected policy: want exit 0:\n%s", res)
	}
}
