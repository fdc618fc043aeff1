// Package dkim signs the copies bccguard delivers and verifies the
// signatures of the messages it receives, with go-msgauth doing the
// cryptography and canonicalization.
//
// What it adds on top is bccguard's own choices: which key signs a copy
// (the From: domain's, a parent domain's or a fallback), which header
// fields a signature covers and oversigns, signing with several keys in
// one streaming pass, verifying as a tee while DATA streams in, with a
// time bound and a configurable DNS server, and recording the outcome in
// an Authentication-Results: field.
package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"strings"
	"time"

	"golang.org/x/net/idna"
)

// Key is one signing key and the name it signs as.
type Key struct {
	Domain   string // d=
	Selector string // s=
	Signer   crypto.Signer
	// Expire, when positive, gives each signature an expiry (x=) that long
	// after it is made.
	Expire time.Duration
}

// Algorithm is the key's a= value, used as a metric label.
func (k Key) Algorithm() string {
	if _, ok := k.Signer.Public().(ed25519.PublicKey); ok {
		return "ed25519-sha256"
	}
	if _, ok := k.Signer.Public().(*rsa.PublicKey); ok {
		return "rsa-sha256"
	}
	return "unknown"
}

// Keyring chooses the keys that sign a copy.
type Keyring struct {
	byDomain map[string][]Key
	fallback string
}

// NewKeyring indexes keys by domain. fallback, if set, is the domain whose
// keys sign mail from domains that have none.
func NewKeyring(keys []Key, fallback string) *Keyring {
	kr := &Keyring{byDomain: map[string][]Key{}, fallback: normDomain(fallback)}
	for _, k := range keys {
		d := normDomain(k.Domain)
		kr.byDomain[d] = append(kr.byDomain[d], k)
	}
	return kr
}

// Empty reports whether the keyring has no key at all (nothing ever signs).
func (kr *Keyring) Empty() bool { return kr == nil || len(kr.byDomain) == 0 }

// For returns the keys to sign mail from fromDomain: the domain's own, else
// those of its closest parent domain that has keys (d=brand.example still
// aligns with From: news.brand.example under DMARC's relaxed alignment),
// else the fallback domain's. It returns nil when nothing can sign.
func (kr *Keyring) For(fromDomain string) []Key {
	if kr == nil || len(kr.byDomain) == 0 {
		return nil
	}
	d := normDomain(fromDomain)
	for d != "" {
		if ks := kr.byDomain[d]; len(ks) > 0 {
			return ks
		}
		_, parent, ok := strings.Cut(d, ".")
		if !ok || !strings.Contains(parent, ".") {
			break // never a bare top-level domain
		}
		d = parent
	}
	return kr.byDomain[kr.fallback]
}

// normDomain lowercases a domain and turns an internationalized one into
// A-labels, as keys are configured.
func normDomain(d string) string {
	d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
	if a, err := idna.Lookup.ToASCII(d); err == nil {
		return a
	}
	return d
}

// oversigned are listed in h= once more than they occur, so that no such
// field can be added after signing without breaking the signature (RFC
// 6376 8.15): these are the fields a reader sees and trusts, and the
// recipient fields bccguard itself rewrote. A field that is absent is
// listed once: it contributes nothing to the hash, and a field of that
// name added later breaks the signature.
var oversigned = []string{
	"From", "To", "Cc", "Subject", "Date", "Message-ID", "Reply-To",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding",
}

// signedAsPresent are signed where they occur but not oversigned: the
// threading and list fields. Gmail and Yahoo require List-Unsubscribe and
// List-Unsubscribe-Post to be signed for one-click unsubscribe (RFC 8058),
// while a mailing list downstream may legitimately add its own List-*
// fields, which must not break bccguard's signature.
var signedAsPresent = []string{
	"Sender", "In-Reply-To", "References",
	"List-Id", "List-Unsubscribe", "List-Unsubscribe-Post",
}

// HeaderKeys is the h= list for a header block with the given field names
// (in any order): every instance of the chosen fields, the oversigned ones
// once more.
func HeaderKeys(fieldNames []string) []string {
	count := map[string]int{}
	for _, n := range fieldNames {
		count[strings.ToLower(strings.TrimSpace(n))]++
	}
	var keys []string
	for _, k := range oversigned {
		for range count[strings.ToLower(k)] + 1 {
			keys = append(keys, k)
		}
	}
	for _, k := range signedAsPresent {
		for range count[strings.ToLower(k)] {
			keys = append(keys, k)
		}
	}
	return keys
}

// SignedFields returns the lowercased field names a DKIM-Signature field
// value lists in h=, nil if it has no h= tag.
func SignedFields(value string) []string {
	h, ok := tags(value)["h"]
	if !ok {
		return nil
	}
	var out []string
	for _, f := range strings.Split(h, ":") {
		if f = strings.ToLower(strings.TrimSpace(f)); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// tags parses a tag=value list (RFC 6376 3.2) leniently: it is used on
// signatures as received, which may be malformed.
func tags(s string) map[string]string {
	out := map[string]string{}
	for _, t := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			continue
		}
		out[strings.TrimSpace(k)] = strings.Join(strings.Fields(v), "")
	}
	return out
}
