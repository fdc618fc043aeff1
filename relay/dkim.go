package relay

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/internal/mailhdr"
	"github.com/bccguard/bccguard/policy"
	"github.com/bccguard/bccguard/relay/dkim"
	"github.com/bccguard/bccguard/relay/rewrite"
	"github.com/bccguard/bccguard/relay/store"
)

// dkimSide is the relay's DKIM work: verifying what arrives (a tee on the
// way to the spool, finished before the policy decides) and signing what
// leaves (at delivery, rewrite's signing pass over the copy).
type dkimSide struct {
	verifier   *dkim.Verifier // nil: verification is off
	authservID string
	signer     *rewrite.Signer

	verifications *prometheus.CounterVec
}

func newDKIMSide(c config.DKIM, reg prometheus.Registerer) *dkimSide {
	keys := make([]dkim.Key, 0, len(c.Keys))
	for _, k := range c.Keys {
		keys = append(keys, dkim.Key{Domain: k.Domain, Selector: k.Selector, Signer: k.Signer, Expire: k.ExpireAfter.D()})
	}
	d := &dkimSide{
		authservID: c.AuthservID,
		signer:     rewrite.NewSigner(dkim.NewKeyring(keys, c.FallbackDomain), c.SignPassed, reg),
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_dkim_verifications_total", Help: "Incoming DKIM signatures checked, by result (pass, fail, temperror, permerror; none for a message without one).",
		}, []string{"result"}),
	}
	if c.Verify {
		d.verifier = &dkim.Verifier{Lookup: dkim.NewLookup(c.Resolver)}
	}
	reg.MustRegister(d.verifications)
	return d
}

// startVerify begins verifying a message once its header block is in; nil
// when verification is off or there is no signature to verify, so an
// unsigned message costs no hashing tee and no goroutine.
func (d *dkimSide) startVerify(ctx context.Context, h *mailhdr.Reading) *dkim.Check {
	if d.verifier == nil || !h.Has("DKIM-Signature") {
		return nil
	}
	return d.verifier.Start(ctx)
}

// finishVerify ends the verification of a message that has been received
// whole and returns what the policy sees and the Authentication-Results:
// field to store with it ("" for a message without signatures). The
// field matters most where bccguard removed the original signatures its
// rewrite broke: it records that they held when the message arrived.
func (d *dkimSide) finishVerify(c *dkim.Check, h *mailhdr.Reading) (policy.DKIM, string) {
	facts := policy.DKIM{CanSign: d.signer.CanSign(h)}
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

// prepare makes what delivery writes around the stored message for one
// copy (see rewrite.Signer.Prepare). Forged results in bccguard's name are
// dropped whenever bccguard records results of its own.
func (d *dkimSide) prepare(ctx context.Context, src *rewrite.Source, dl store.Delivery) (rewrite.Options, error) {
	authservID := ""
	if d.verifier != nil || src.Message().AuthResults != "" {
		// Whoever reads bccguard's results must be able to trust that
		// every one in its name is its own.
		authservID = d.authservID
	}
	return d.signer.Prepare(ctx, src, dl, authservID)
}
