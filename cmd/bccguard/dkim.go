package main

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/relay/dkim"
)

const dkimUsage = "dkim needs a subcommand:\n" +
	"  dkim keygen --domain D --selector S [--type rsa|ed25519] [--bits 2048] [--out FILE]\n" +
	"  dkim check --domain D [--config FILE] [--resolver HOST:PORT]"

func cmdDKIM(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("%s", dkimUsage)
	}
	switch args[0] {
	case "keygen":
		return cmdDKIMKeygen(args[1:], stdout)
	case "check":
		return cmdDKIMCheck(args[1:], stdout)
	}
	return usagef("unknown dkim subcommand %q\n%s", args[0], dkimUsage)
}

// cmdDKIMKeygen writes a new private key and prints the DNS record that
// publishes it, with the config lines that use it.
func cmdDKIMKeygen(args []string, stdout io.Writer) error {
	fs := newFlags("dkim keygen")
	domain := fs.String("domain", "", "the domain the key signs for (d=)")
	selector := fs.String("selector", "", "the selector (s=), e.g. s2026")
	typ := fs.String("type", "rsa", "rsa or ed25519 (receivers that ignore Ed25519 still need an RSA key)")
	bits := fs.Int("bits", 2048, "RSA key size")
	out := fs.String("out", "", "private key file (default: DOMAIN.SELECTOR.pem)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *domain == "" || *selector == "" {
		return usagef("dkim keygen needs --domain and --selector")
	}
	d, s := strings.ToLower(strings.TrimSuffix(*domain, ".")), strings.ToLower(*selector)
	if strings.ContainsAny(d+s, " \t\r\n;=/\\\"") || strings.Contains(d, "..") {
		return usagef("dkim keygen: %q and %q must be DNS names", d, s)
	}
	var key crypto.Signer
	var err error
	switch *typ {
	case "rsa":
		if *bits < 2048 || *bits > 8192 {
			return usagef("dkim keygen: --bits must be between 2048 and 8192")
		}
		key, err = rsa.GenerateKey(rand.Reader, *bits)
	case "ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return usagef("dkim keygen: --type must be rsa or ed25519, not %q", *typ)
	}
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	record, err := dkim.Record(key.Public())
	if err != nil {
		return err
	}
	path := *out
	if path == "" {
		path = d + "." + s + ".pem"
	}
	// O_EXCL: an existing key may already be published and in use.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s exists: not overwriting a key that may be in use (choose another --out)", path)
		}
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	abs, _ := filepath.Abs(path)
	name := dkim.RecordName(s, d)
	fmt.Fprintf(stdout, "Wrote the %s private key to %s (mode 0600).\n\n", *typ, path)
	fmt.Fprintf(stdout, "Publish this DNS TXT record:\n  name:  %s\n  value: %s\n\n", name, record)
	fmt.Fprintf(stdout, "In a zone file (strings of at most 255 characters):\n  %s. IN TXT ( %s )\n\n", name, zoneStrings(record))
	fmt.Fprintf(stdout, "Then add the key to the configuration:\n  dkim:\n    keys:\n      - {domain: %s, selector: %s, key_file: %s}\n\n", d, s, abs)
	fmt.Fprintf(stdout, "and check it once published: bccguard dkim check --config FILE --domain %s\n", d)
	return nil
}

// zoneStrings splits a TXT value into quoted strings of at most 255
// characters, as DNS requires of each string in a record.
func zoneStrings(v string) string {
	var parts []string
	for len(v) > 255 {
		parts = append(parts, `"`+v[:255]+`"`)
		v = v[255:]
	}
	return strings.Join(append(parts, `"`+v+`"`), " ")
}

// cmdDKIMCheck looks up the published record of every configured key of a
// domain and compares it with the key. Exit 0 when all match, 1 when one
// is missing or differs.
func cmdDKIMCheck(args []string, stdout io.Writer) error {
	fs := newFlags("dkim check")
	domain := fs.String("domain", "", "the domain whose keys to check")
	cfgPath := fs.String("config", "", "configuration file with the dkim keys")
	resolver := fs.String("resolver", "", "DNS server HOST:PORT (default: dkim.resolver, else the system's)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *domain == "" {
		return usagef("dkim check needs --domain")
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	d := strings.ToLower(strings.TrimSuffix(*domain, "."))
	var keys []config.DKIMKey
	for _, k := range cfg.DKIM.Keys {
		if k.Domain == d {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return configError{fmt.Errorf("dkim check: no key for %s in the configuration (dkim.keys)", d)}
	}
	addr := cfg.DKIM.Resolver
	if *resolver != "" {
		addr = *resolver
	}
	lookup := dkim.NewLookup(addr)
	bad := 0
	for _, k := range keys {
		name := dkim.RecordName(k.Selector, k.Domain)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		txts, err := lookup(ctx, name)
		cancel()
		if problem := compareRecord(txts, err, k.Signer.Public()); problem != "" {
			bad++
			fmt.Fprintf(stdout, "%s: %s (key_file %s)\n", name, problem, k.KeyFile)
			continue
		}
		fmt.Fprintf(stdout, "%s: ok, the published key matches key_file %s\n", name, k.KeyFile)
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d key(s) of %s not published as configured", bad, len(keys), d)
	}
	return nil
}

// compareRecord says what is wrong with a looked-up record, "" if it
// publishes want.
func compareRecord(txts []string, err error, want crypto.PublicKey) string {
	if err != nil {
		return "MISSING: " + err.Error()
	}
	switch len(txts) {
	case 0:
		return "MISSING: no TXT record"
	case 1:
	default:
		return fmt.Sprintf("AMBIGUOUS: %d TXT records (verifiers treat that as an error)", len(txts))
	}
	pub, err := dkim.ParseRecord(txts[0])
	if err != nil {
		return "INVALID: " + err.Error()
	}
	if !dkim.SameKey(pub, want) {
		return "MISMATCH: the published key is not the configured one"
	}
	return ""
}
