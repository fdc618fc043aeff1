package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bccguard/bccguard/tests/harness"
)

// The policy of the issue that introduced body scanning (and of DESIGN.md).
const designPolicy = `
policy:
  mode: enforce
  internal_domains: [example.com]
  rules:
    - name: customer-list-in-body
      when: body.addresses >= 50
      action: quarantine
    - name: many-visible
      when: visible.external >= 2
      action: explode
  default_action: pass
`

// customerExport is a one-to-one message carrying an exported customer list:
// a CSV attachment, base64, of n distinct addresses.
func customerExport(n int) []byte {
	var csv strings.Builder
	csv.WriteString("name,email,phone,city\r\n")
	for i := range n {
		fmt.Fprintf(&csv, "Customer %03d,customer%03d@%s,+1-555-01%02d,Springfield\r\n", i, i, customerDomains[i%len(customerDomains)], i%100)
	}
	enc := base64.StdEncoding.EncodeToString([]byte(csv.String()))
	var b64 strings.Builder
	for len(enc) > 76 {
		b64.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b64.WriteString(enc + "\r\n")
	return []byte("From: Sales Team <sales@brand.example>\r\n" +
		"To: Partner Agency <agency@example.net>\r\n" +
		"Subject: the customer list you asked for\r\n" +
		"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"=_export\"\r\n" +
		"\r\n" +
		"--=_export\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" +
		"Hi, the export is attached.\r\n" +
		"\r\n" +
		"--=_export\r\n" +
		"Content-Type: text/csv; name=\"customers.csv\"\r\n" +
		"Content-Disposition: attachment; filename=\"customers.csv\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"\r\n" +
		b64.String() +
		"--=_export--\r\n")
}

var heldFor = regexp.MustCompile(`^Ok: held for review as (\S+)$`)

// TestCustomerListInBodyIsQuarantined: a one-to-one message whose CSV
// attachment lists 200 customers is held for review, both by the built-in
// policy and by the rule of the issue, and nothing of it is delivered; and
// `bccguard policy test` explains why.
func TestCustomerListInBodyIsQuarantined(t *testing.T) {
	t.Parallel()
	msg := customerExport(200)
	for _, tc := range []struct{ name, cfg, rule string }{
		{"built-in policy", "", "address-list-in-body"},
		{"customer-list-in-body rule", designPolicy, "customer-list-in-body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sink := harness.NewSink(t)
			r := harness.Start(t, tc.cfg, harness.WithUpstream(sink.Addr()))
			rep, _ := submit(t, r.Addr(), "sales@brand.example", []string{"agency@example.net"}, msg)
			m := heldFor.FindStringSubmatch(rep.Text())
			if !rep.Is(250, "2.0.0") || m == nil {
				t.Fatalf("end of DATA: want \"250 2.0.0 Ok: held for review as ID\", got %s", rep)
			}
			id := m[1]
			sentinel(t, r, sink)
			for _, got := range sink.Messages() {
				if got.From == "sales@brand.example" {
					t.Errorf("the held message reached the upstream: RCPT TO:%v", got.RcptAddrs())
				}
			}
			for _, e := range r.Queue() {
				if e.MessageID == id {
					t.Errorf("the held message %s has a delivery in the queue: %+v", id, e)
				}
			}
			if !logShows(t, r, "message accepted", `"action":"quarantine"`, `"rule":"`+tc.rule+`"`) {
				t.Errorf("the relay's log has no line recording the quarantine by %s", tc.rule)
			}
		})
	}

	t.Run("policy test explains it", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		cfg := filepath.Join(dir, "bccguard.yaml")
		eml := filepath.Join(dir, "export.eml")
		writeFile(t, cfg, designPolicy)
		writeFile(t, eml, string(msg))

		res := harness.RunCLI(t, "policy", "test", "--config", cfg, eml, "--json")
		if !res.OK() {
			t.Fatalf("policy test --json failed:\n%s", res)
		}
		var dec struct {
			Action string `json:"action"`
			Rule   string `json:"rule"`
		}
		if err := json.Unmarshal([]byte(res.Stdout), &dec); err != nil {
			t.Fatalf("policy test --json printed no JSON object: %v\n%s", err, res)
		}
		if dec.Action != "quarantine" || dec.Rule != "customer-list-in-body" {
			t.Errorf("policy test --json: action %q rule %q, want quarantine by customer-list-in-body\n%s", dec.Action, dec.Rule, res)
		}

		res = harness.RunCLI(t, "policy", "test", "--config", cfg, eml, "--from", "sales@brand.example", "--rcpt", "agency@example.net")
		if !res.OK() {
			t.Fatalf("policy test failed:\n%s", res)
		}
		for _, want := range []string{"quarantine", "customer-list-in-body", "body.addresses=200"} {
			if !strings.Contains(res.Stdout, want) {
				t.Errorf("policy test does not say %q:\n%s", want, res)
			}
		}
	})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
