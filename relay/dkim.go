package relay

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-message/mail"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/policy"
	"github.com/bccguard/bccguard/relay/dkim"
	"github.com/bccguard/bccguard/relay/store"
)

// dkimSide is the relay's DKIM work: verifying what arrives (a tee on the
// way to the spool, finished before the policy decides) and signing what
// leaves (at delivery, in a first streaming pass over the copy).
type dkimSide struct {
	keyring    *dkim.Keyring
	verifier   *dkim.Verifier // nil: verification is off
	authservID string
	signPassed bool

	signatures    *prometheus.CounterVec
	signFailures  *prometheus.CounterVec
	verifications *prometheus.CounterVec
}

func newDKIMSide(c config.DKIM, reg prometheus.Registerer) *dkimSide {
	keys := make([]dkim.Key, 0, len(c.Keys))
	for _, k := range c.Keys {
		keys = append(keys, dkim.Key{Domain: k.Domain, Selector: k.Selector, Signer: k.Signer, Expire: k.ExpireAfter.D()})
	}
	d := &dkimSide{
		keyring:    dkim.NewKeyring(keys, c.FallbackDomain),
		authservID: c.AuthservID,
		signPassed: c.SignPassed,
		signatures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_dkim_signatures_total", Help: "DKIM signatures added to delivered copies, by signing domain and algorithm.",
		}, []string{"domain", "algorithm"}),
		signFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_dkim_sign_failures_total", Help: "Copies that could not be signed (the delivery attempt is deferred), by signing domain.",
		}, []string{"domain"}),
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_dkim_verifications_total", Help: "Incoming DKIM signatures checked, by result (pass, fail, temperror, permerror; none for a message without one).",
		}, []string{"result"}),
	}
	if c.Verify {
		d.verifier = &dkim.Verifier{Lookup: dkim.NewLookup(c.Resolver)}
	}
	reg.MustRegister(d.signatures, d.signFailures, d.verifications)
	return d
}

// startVerify begins verifying a message once its header block (fields)
// is in; nil when verification is off or there is no signature to verify,
// so an unsigned message costs no hashing tee and no goroutine.
func (d *dkimSide) startVerify(ctx context.Context, fields []rawField) *dkim.Check {
	if d.verifier == nil || !hasField(fields, "DKIM-Signature") {
		return nil
	}
	return d.verifier.Start(ctx)
}

// finishVerify ends the verification of a message that has been received
// whole and returns what the policy sees and the Authentication-Results:
// field to store with it ("" for a message without signatures). The
// field matters most where bccguard removed the original signatures its
// rewrite broke: it records that they held when the message arrived.
func (d *dkimSide) finishVerify(c *dkim.Check, fields []rawField) (policy.DKIM, string) {
	facts := policy.DKIM{CanSign: d.canSign(fields)}
	if d.verifier == nil {
		return facts, ""
	}
	var res dkim.Result // none: the message has no signature
	if c != nil {
		res = c.Result()
	}
	for _, v := range res.Values() {
		d.verifications.WithLabelValues(v).Inc()
	}
	facts.Valid = res.Valid()
	facts.Domains = res.Domains()
	if len(res.Signatures) == 0 {
		// Nothing to record for an unsigned message (dkim=none): its
		// copies stay as they were but for Received:, and receivers
		// learn nothing from a "none" they find out themselves.
		return facts, ""
	}
	return facts, res.Field(d.authservID)
}

// canSign reports whether a key would sign copies of a message with this
// header.
func (d *dkimSide) canSign(fields []rawField) bool {
	from := fromDomain(fields)
	return from != "" && len(d.keyring.For(from)) > 0
}

// fromDomain is the domain of the From: field's addresses, "" when there is
// none, it cannot be parsed, or it names several domains (then no single
// domain can align with it under DMARC).
func fromDomain(fields []rawField) string {
	domain := ""
	for _, f := range fields {
		if !f.is("From") {
			continue
		}
		list, err := mail.ParseAddressList(f.value())
		if err != nil {
			return ""
		}
		for _, a := range list {
			at := strings.LastIndexByte(a.Address, '@')
			if at < 0 {
				return ""
			}
			dom := strings.ToLower(a.Address[at+1:])
			if domain != "" && dom != domain {
				return ""
			}
			domain = dom
		}
	}
	return domain
}

// prepare makes what delivery writes around the stored message for one
// copy: the copy options (signatures the rewrite broke removed, forged
// results dropped) and, above the copy, bccguard's DKIM-Signature fields and
// the stored Authentication-Results: field.
//
// A copy is signed when bccguard changed its header (explode, bcc, a pass
// that lost its Bcc: or Resent-Bcc:) or sign_passed is set, and a key fits its From:
// domain. Signing is a first pass over the copy exactly as it will be sent
// (the body from memory or streamed from the store, never held whole); the
// second pass, into the DATA command, writes the fields made here and the
// same copy again.
func (d *dkimSide) prepare(ctx context.Context, src *msgSource, dl store.Delivery) (copyOptions, error) {
	msg := src.msg
	o := copyOptions{stripSignatures: true, names: src.visible()}
	if d.verifier != nil || msg.AuthResults != "" {
		// Whoever reads bccguard's results must be able to trust that
		// every one in its name is its own.
		o.authservID = d.authservID
	}
	o.prefix = msg.AuthResults
	if d.keyring.Empty() {
		return o, nil
	}
	var keys []dkim.Key
	if d.signPassed || dl.Rewrite != store.RewritePass || hasField(src.fields, "Bcc") || hasField(src.fields, "Resent-Bcc") {
		if from := fromDomain(src.fields); from != "" {
			keys = d.keyring.For(from)
		}
	}
	if len(keys) == 0 {
		return o, nil
	}
	// The copy's header is small (bounded by the listener's header limit):
	// it is rendered once into memory, for the h= list and the signers.
	var head bytes.Buffer
	if err := writeHeaderWith(&head, src.fields, dl, o); err != nil {
		return o, err
	}
	copyFields, _ := splitHeader(head.Bytes())
	names := make([]string, len(copyFields))
	for i, f := range copyFields {
		names[i] = f.name
	}
	body, err := src.openBody(ctx)
	if err != nil {
		return o, err
	}
	defer body.Close()
	sigs, err := dkim.Sign(keys, dkim.HeaderKeys(names), func(w io.Writer) error {
		if _, err := w.Write(head.Bytes()); err != nil {
			return err
		}
		if _, err := w.Write(src.tail); err != nil {
			return err
		}
		_, err := io.Copy(w, body)
		return err
	})
	if err != nil {
		d.signFailures.WithLabelValues(keys[0].Domain).Inc()
		return o, fmt.Errorf("dkim signing: %w", err)
	}
	var prefix strings.Builder
	for _, s := range sigs {
		d.signatures.WithLabelValues(s.Key.Domain, s.Key.Algorithm()).Inc()
		prefix.WriteString(s.Field)
	}
	prefix.WriteString(msg.AuthResults)
	o.prefix = prefix.String()
	return o, nil
}

// hasField reports whether a field named name is among fields.
func hasField(fields []rawField, name string) bool {
	for _, f := range fields {
		if f.is(name) {
			return true
		}
	}
	return false
}
