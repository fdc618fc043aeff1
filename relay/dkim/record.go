package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
)

// RecordName is the DNS name a key is published at (RFC 6376 3.6.2.1).
func RecordName(selector, domain string) string {
	return selector + "._domainkey." + domain
}

// Record is the TXT record value that publishes pub: "v=DKIM1; k=rsa;
// p=..." with an RSA key as SubjectPublicKeyInfo (what OpenDKIM and
// go-msgauth publish), or "k=ed25519" with the raw 32-byte key (RFC 8463).
func Record(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return "", err
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(k), nil
	default:
		return "", fmt.Errorf("dkim: %T keys are not supported", pub)
	}
}

// ParseRecord returns the public key a published TXT record holds.
func ParseRecord(txt string) (crypto.PublicKey, error) {
	t := tags(txt)
	if v, ok := t["v"]; ok && v != "DKIM1" {
		return nil, fmt.Errorf("v=%s, want DKIM1", v)
	}
	p, ok := t["p"]
	if !ok {
		return nil, errors.New("no p= tag")
	}
	if p == "" {
		return nil, errors.New("the key is revoked (empty p=)")
	}
	b, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		return nil, fmt.Errorf("p=: %w", err)
	}
	switch t["k"] {
	case "", "rsa":
		if pub, err := x509.ParsePKIXPublicKey(b); err == nil {
			if rk, ok := pub.(*rsa.PublicKey); ok {
				return rk, nil
			}
			return nil, fmt.Errorf("k=rsa but p= holds a %T", pub)
		}
		// RFC 6376 is read both ways; some publish a bare RSAPublicKey.
		return x509.ParsePKCS1PublicKey(b)
	case "ed25519":
		if len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("ed25519 key of %d bytes, want %d", len(b), ed25519.PublicKeySize)
		}
		return ed25519.PublicKey(b), nil
	default:
		return nil, fmt.Errorf("unknown key type k=%s", t["k"])
	}
}

// SameKey reports whether a and b are the same public key.
func SameKey(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}
