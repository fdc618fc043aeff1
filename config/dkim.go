package config

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// DKIM configures how bccguard signs the copies it rewrites and verifies
// the signatures of what arrives.
type DKIM struct {
	// Keys are the signing keys, one entry per domain and selector. Several
	// entries for one domain all sign (an RSA and an Ed25519 key, or an old
	// and a new selector during a rotation).
	Keys []DKIMKey `yaml:"keys" item:"dkim key"`
	// SignPassed signs passed copies too, not only those whose header
	// bccguard changed.
	SignPassed bool `yaml:"sign_passed"`
	// FallbackDomain signs mail whose From: domain (and its parents) has no
	// key; it must be the domain of one of the keys.
	FallbackDomain string `yaml:"fallback_domain"`
	// AuthservID names bccguard in the Authentication-Results: field it
	// adds (default: hostname).
	AuthservID string `yaml:"authserv_id"`
	// Verify checks incoming signatures (on by default).
	Verify bool `yaml:"verify"`
	// Resolver is the DNS server (host:port) to look keys up at; "" uses
	// the system's resolver.
	Resolver string `yaml:"resolver"`
}

// DKIMKey is one signing key.
type DKIMKey struct {
	Domain   string `yaml:"domain"`
	Selector string `yaml:"selector"`
	// KeyFile is a PEM private key (PKCS#1 or PKCS#8; RSA of 2048 bits or
	// more, or Ed25519). A relative path is taken from the config file's
	// folder.
	KeyFile string `yaml:"key_file"`
	// ExpireAfter, when set, gives each signature an expiry (x=) that long
	// after it was made.
	ExpireAfter Duration `yaml:"expire_after"`

	// Signer is the key read from KeyFile when the configuration loads.
	Signer crypto.Signer `yaml:"-"`
}

// validateDKIM checks the dkim section and loads its keys, so a key that
// cannot sign is a configuration error with its line, found by check-config
// and at start, not at the first delivery.
func (c *Config) validateDKIM() []error {
	var errs []error
	d := &c.DKIM
	p := func(x ...any) []any { return append([]any{"dkim"}, x...) }
	if d.AuthservID == "" {
		d.AuthservID = c.Hostname
	}
	if strings.ContainsAny(d.AuthservID, " \t\r\n;()\"") {
		errs = append(errs, c.errf(p("authserv_id"), "dkim.authserv_id %q: must be a single token such as the host name", d.AuthservID))
	}
	if d.Resolver != "" {
		if _, _, err := net.SplitHostPort(d.Resolver); err != nil {
			errs = append(errs, c.errf(p("resolver"), "dkim.resolver %q: expected host:port of a DNS server", d.Resolver))
		}
	}
	seen := map[string]bool{}
	domains := map[string]bool{}
	for i := range d.Keys {
		k := &d.Keys[i]
		at := func(x ...any) []any { return p(append([]any{"keys", i}, x...)...) }
		k.Domain = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(k.Domain)), ".")
		k.Selector = strings.ToLower(strings.TrimSpace(k.Selector))
		if !isDNSName(k.Domain) {
			errs = append(errs, c.errf(at("domain"), "dkim key %d: domain %q: expected a DNS name in ASCII (A-labels for IDNs)", i+1, k.Domain))
		}
		if !isDNSName(k.Selector) {
			errs = append(errs, c.errf(at("selector"), "dkim key %d: selector %q: expected DNS labels (letters, digits, hyphens, dots)", i+1, k.Selector))
		}
		id := k.Selector + "._domainkey." + k.Domain
		if seen[id] {
			errs = append(errs, c.errf(at("selector"), "dkim key %d: %s is configured twice", i+1, id))
		}
		seen[id] = true
		domains[k.Domain] = true
		if k.KeyFile == "" {
			errs = append(errs, c.errf(at(), "dkim key %d: needs key_file (make one with: bccguard dkim keygen --domain D --selector S --out FILE)", i+1))
			continue
		}
		path := k.KeyFile
		if !filepath.IsAbs(path) && c.File != "" {
			path = filepath.Join(filepath.Dir(c.File), path)
		}
		s, err := LoadDKIMKey(path)
		if err != nil {
			errs = append(errs, c.errf(at("key_file"), "dkim key %d: %v", i+1, err))
			continue
		}
		k.Signer = s
	}
	d.FallbackDomain = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d.FallbackDomain)), ".")
	if d.FallbackDomain != "" && !domains[d.FallbackDomain] {
		errs = append(errs, c.errf(p("fallback_domain"), "dkim.fallback_domain %q has no key in dkim.keys", d.FallbackDomain))
	}
	return errs
}

// LoadDKIMKey reads a PEM private key fit for DKIM signing: RSA of at least
// 2048 bits (RFC 8301 allows 1024, but receivers increasingly distrust it)
// or Ed25519 (RFC 8463), in PKCS#1 or PKCS#8 form.
func LoadDKIMKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	var key any
	switch blk.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("%s: PEM block %q: expected \"PRIVATE KEY\" (PKCS#8) or \"RSA PRIVATE KEY\" (PKCS#1)", path, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if n := k.N.BitLen(); n < 2048 {
			return nil, fmt.Errorf("%s: RSA key of %d bits: DKIM keys need at least 2048", path, n)
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	default:
		return nil, fmt.Errorf("%s: %T keys cannot sign DKIM: use RSA or Ed25519", path, key)
	}
}

// isDNSName reports whether s is a host name of LDH labels (underscores
// allowed, as selectors and service names use them).
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
