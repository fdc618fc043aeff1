package rewrite

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/internal/mailhdr"
	"github.com/bccguard/bccguard/relay/dkim"
	"github.com/bccguard/bccguard/relay/store"
)

// Signer is the DKIM signing pass over the copies bccguard changes.
type Signer struct {
	keyring    *dkim.Keyring
	signPassed bool
	authservID string
	verifying  bool

	signatures   *prometheus.CounterVec
	signFailures *prometheus.CounterVec
}

// SignerOptions are what a Signer signs with and in whose name.
type SignerOptions struct {
	// Keyring holds the signing keys; empty signs nothing.
	Keyring *dkim.Keyring
	// SignPassed signs copies the rewrite left unchanged too.
	SignPassed bool
	// AuthservID is the authserv-id (RFC 8601) of bccguard's own
	// Authentication-Results: fields.
	AuthservID string
	// Verifying says that bccguard verifies incoming signatures and so
	// records results of its own.
	Verifying bool
}

// NewSigner signs as o says. Its metrics are registered with reg.
func NewSigner(o SignerOptions, reg prometheus.Registerer) *Signer {
	s := &Signer{
		keyring:    o.Keyring,
		signPassed: o.SignPassed,
		authservID: o.AuthservID,
		verifying:  o.Verifying,
		signatures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_dkim_signatures_total", Help: "DKIM signatures added to delivered copies, by signing domain and algorithm.",
		}, []string{"domain", "algorithm"}),
		signFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_dkim_sign_failures_total", Help: "Copies that could not be signed (the delivery attempt is deferred), by signing domain.",
		}, []string{"domain"}),
	}
	reg.MustRegister(s.signatures, s.signFailures)
	return s
}

// CanSign reports whether a key would sign copies of a message with this
// header.
func (s *Signer) CanSign(h *mailhdr.Reading) bool {
	from := FromDomain(h)
	return from != "" && len(s.keyring.For(from)) > 0
}

// FromDomain is the domain of the From: field's addresses, "" when there is
// none, it cannot be parsed cleanly, or it names several domains (then no
// single domain can align with it under DMARC).
func FromDomain(h *mailhdr.Reading) string {
	domain := ""
	for _, e := range h.Entries {
		if !e.Is("From") {
			continue
		}
		if !e.List.Clean || len(e.List.Boxes) == 0 {
			return ""
		}
		for _, mb := range e.List.Boxes {
			dom := mailhdr.DomainOf(mb.Addr)
			if dom == "" || domain != "" && dom != domain {
				return ""
			}
			domain = dom
		}
	}
	return domain
}

// Prepare makes what delivery writes around the stored message for one
// copy: the copy options (signatures the rewrite broke removed, forged
// results in bccguard's name dropped whenever bccguard records results of
// its own) and, above the copy, bccguard's DKIM-Signature fields and the
// stored Authentication-Results: field.
//
// A copy is signed when the rewrite changed its header (explode, bcc, a
// pass that lost its Bcc:) or sign_passed is set, and a key fits its From:
// domain. Signing is a first pass over the copy exactly as it will be sent
// (the body from memory or streamed from the store, never held whole); the
// second pass, into the DATA command, writes the fields made here and the
// same copy again.
func (s *Signer) Prepare(ctx context.Context, src *Source, dl store.Delivery) (Options, error) {
	msg := src.msg
	authservID := ""
	if s.verifying || msg.AuthResults != "" {
		// Whoever reads bccguard's results must be able to trust that
		// every one in its name is its own.
		authservID = s.authservID
	}
	o := Options{StripSignatures: true, AuthservID: authservID, Prefix: msg.AuthResults}
	if s.keyring.Empty() {
		return o, nil
	}
	sign := s.signPassed || dl.Rewrite != store.RewritePass
	if !sign {
		changed, err := src.changed(dl, o)
		if err != nil {
			return o, err
		}
		sign = len(changed) > 0
	}
	var keys []dkim.Key
	if sign {
		if from := FromDomain(src.hdr); from != "" {
			keys = s.keyring.For(from)
		}
	}
	if len(keys) == 0 {
		return o, nil
	}
	// The copy's header is small (bounded by the listener's header limit):
	// it is rendered once into memory, for the h= list and the signers.
	var head bytes.Buffer
	if err := src.WriteHeader(&head, dl, o); err != nil {
		return o, err
	}
	copyFields := mailhdr.Split(head.Bytes()).Fields
	names := make([]string, 0, len(copyFields))
	for _, f := range copyFields {
		if f.Name != "" {
			names = append(names, f.Name)
		}
	}
	body, err := src.OpenBody(ctx)
	if err != nil {
		return o, err
	}
	defer body.Close()
	sigs, err := dkim.Sign(keys, dkim.HeaderKeys(names), func(w io.Writer) error {
		if _, err := w.Write(head.Bytes()); err != nil {
			return err
		}
		_, err := io.Copy(w, body)
		return err
	})
	if err != nil {
		s.signFailures.WithLabelValues(keys[0].Domain).Inc()
		return o, fmt.Errorf("dkim signing: %w", err)
	}
	var prefix strings.Builder
	for _, sig := range sigs {
		s.signatures.WithLabelValues(sig.Key.Domain, sig.Key.Algorithm()).Inc()
		prefix.WriteString(sig.Field)
	}
	prefix.WriteString(msg.AuthResults)
	o.Prefix = prefix.String()
	return o, nil
}
