package config

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Keys load in both PEM forms and both algorithms; relative paths are
// taken from the config file's folder; verify is on by default and the
// authserv-id defaults to the host name.
func TestDKIMKeys(t *testing.T) {
	dir := t.TempDir()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, dir, "rsa1.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk))
	_, ek, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ek)
	writePEM(t, dir, "ed.pem", "PRIVATE KEY", der)

	c, err := Parse(filepath.Join(dir, "bccguard.yaml"), []byte(`
hostname: relay.brand.example
dkim:
  keys:
    - {domain: Brand.Example., selector: rsa, key_file: rsa1.pem, expire_after: 7d}
    - {domain: brand.example, selector: ed, key_file: `+filepath.Join(dir, "ed.pem")+`}
  fallback_domain: brand.example
`))
	if err != nil {
		t.Fatal(err)
	}
	d := c.DKIM
	if !d.Verify || d.AuthservID != "relay.brand.example" || d.FallbackDomain != "brand.example" {
		t.Errorf("dkim = %+v", d)
	}
	if len(d.Keys) != 2 || d.Keys[0].Domain != "brand.example" || d.Keys[0].Signer == nil || d.Keys[1].Signer == nil {
		t.Fatalf("keys = %+v", d.Keys)
	}
	if _, ok := d.Keys[1].Signer.(ed25519.PrivateKey); !ok {
		t.Errorf("second key is %T", d.Keys[1].Signer)
	}
	if d.Keys[0].ExpireAfter.D().Hours() != 7*24 {
		t.Errorf("expire_after = %v", d.Keys[0].ExpireAfter.D())
	}
	if c, err := Parse("t.yaml", []byte("dkim: {verify: false}\n")); err != nil || c.DKIM.Verify {
		t.Errorf("verify: false: %v %v", c.DKIM.Verify, err)
	}
}

func TestDKIMErrorsHaveLines(t *testing.T) {
	dir := t.TempDir()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallPath := writePEM(t, dir, "small.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small))
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecPath := writePEM(t, dir, "ec.pem", "PRIVATE KEY", ecDER)
	certPath := writePEM(t, dir, "cert.pem", "CERTIFICATE", []byte("x"))

	cases := []struct{ name, yaml, want string }{
		{"no key file", "dkim:\n  keys:\n    - domain: brand.example\n      selector: s1\n", "t.yaml:3: dkim key 1: needs key_file"},
		{"missing file", "dkim:\n  keys:\n    - domain: brand.example\n      selector: s1\n      key_file: /nonexistent.pem\n", "t.yaml:5: dkim key 1: open /nonexistent.pem"},
		{"short RSA", "dkim:\n  keys:\n    - domain: brand.example\n      selector: s1\n      key_file: " + smallPath + "\n", "t.yaml:5: dkim key 1: " + smallPath + ": RSA key of 1024 bits"},
		{"ECDSA", "dkim:\n  keys:\n    - domain: brand.example\n      selector: s1\n      key_file: " + ecPath + "\n", "cannot sign DKIM: use RSA or Ed25519"},
		{"not a key", "dkim:\n  keys:\n    - domain: brand.example\n      selector: s1\n      key_file: " + certPath + "\n", `PEM block "CERTIFICATE"`},
		{"bad domain", "dkim:\n  keys:\n    - domain: brand example\n      selector: s1\n      key_file: " + ecPath + "\n", "t.yaml:3: dkim key 1: domain"},
		{"bad selector", "dkim:\n  keys:\n    - domain: brand.example\n      selector: 's;1'\n      key_file: " + ecPath + "\n", "t.yaml:4: dkim key 1: selector"},
		{"twice", "dkim:\n  keys:\n    - {domain: a.example, selector: s, key_file: x}\n    - {domain: a.example, selector: s, key_file: x}\n", "t.yaml:4: dkim key 2: s._domainkey.a.example is configured twice"},
		{"fallback without key", "dkim:\n  fallback_domain: esp.example\n", "t.yaml:2: dkim.fallback_domain \"esp.example\" has no key"},
		{"bad resolver", "dkim:\n  resolver: 127.0.0.1\n", "t.yaml:2: dkim.resolver"},
		{"unknown key", "dkim:\n  sign_everything: true\n", `t.yaml:2: dkim: unknown key "sign_everything"; known keys: authserv_id,`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
