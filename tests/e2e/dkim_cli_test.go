package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bccguard/bccguard/tests/harness"
)

// `bccguard dkim keygen` writes a key only bccguard's user can read and
// never overwrites one; `bccguard dkim check` finds the published record
// at a DNS server and says whether it is the configured key: exit 0 when
// it is, 1 when it is missing or another key.
func TestDKIMKeygenAndCheck(t *testing.T) {
	t.Parallel()
	s := newDKIMSetup(t) // keygen for rsa2026 and ed2026, both published
	for _, f := range []string{s.rsaFile, s.edFile} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	before, _ := os.ReadFile(s.rsaFile)
	res := harness.RunCLI(t, "dkim", "keygen", "--domain", "brand.example", "--selector", "rsa2026", "--out", s.rsaFile)
	if res.ExitCode != 1 || !strings.Contains(res.Stderr, "not overwriting") {
		t.Errorf("keygen over an existing key:\n%s", res)
	}
	if after, _ := os.ReadFile(s.rsaFile); string(after) != string(before) {
		t.Error("keygen changed an existing key file")
	}
	if res := harness.RunCLI(t, "dkim", "keygen", "--domain", "brand.example", "--selector", "x", "--bits", "1024", "--out", filepath.Join(s.dir, "x.pem")); res.ExitCode != 2 {
		t.Errorf("keygen of a 1024-bit key:\n%s", res)
	}

	cfg := filepath.Join(s.dir, "bccguard.yaml")
	if err := os.WriteFile(cfg, []byte(s.config("")), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func() harness.CLIResult {
		return harness.RunCLI(t, "dkim", "check", "--config", cfg, "--domain", "brand.example", "--resolver", s.dns.Addr())
	}
	if res := check(); !res.OK() || strings.Count(res.Stdout, ": ok") != 2 {
		t.Errorf("check of two published keys:\n%s", res)
	}

	// Another key published at the RSA selector: a mismatch.
	res = harness.RunCLI(t, "dkim", "keygen", "--domain", "brand.example", "--selector", "rsa2026", "--out", filepath.Join(s.dir, "another.pem"))
	if !res.OK() {
		t.Fatal(res)
	}
	name, value := keygenRecord(t, res.Stdout)
	s.dns.SetTXT(name, value)
	if res := check(); res.ExitCode != 1 || !strings.Contains(res.Stdout, "rsa2026._domainkey.brand.example: MISMATCH") || !strings.Contains(res.Stdout, "ed2026._domainkey.brand.example: ok") {
		t.Errorf("check with another key published:\n%s", res)
	}
	// No record at all.
	s.dns.Delete(name)
	if res := check(); res.ExitCode != 1 || !strings.Contains(res.Stdout, "rsa2026._domainkey.brand.example: MISSING") {
		t.Errorf("check with the record missing:\n%s", res)
	}
	// A domain without a configured key is a configuration mistake.
	if res := harness.RunCLI(t, "dkim", "check", "--config", cfg, "--domain", "other.example", "--resolver", s.dns.Addr()); res.ExitCode != 2 {
		t.Errorf("check of a domain without a key:\n%s", res)
	}
}

// A key file that cannot sign is a configuration error with its line.
func TestDKIMConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bccguard.yaml")
	if err := os.WriteFile(cfg, []byte("hostname: relay.example\ndkim:\n  keys:\n    - domain: brand.example\n      selector: s1\n      key_file: missing.pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := harness.RunCLI(t, "check-config", "--config", cfg)
	if res.ExitCode != 2 || !strings.Contains(res.Stderr, "bccguard.yaml:6: dkim key 1:") {
		t.Errorf("check-config with a missing key file:\n%s", res)
	}
}
