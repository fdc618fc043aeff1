package relay

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bccguard/bccguard/config"
	"github.com/bccguard/bccguard/internal/mailhdr"
	"github.com/bccguard/bccguard/policy"
	"github.com/bccguard/bccguard/relay/dkim"
	"github.com/bccguard/bccguard/relay/rewrite"
)

// verification is the DKIM check of what arrives: a tee on the way to the
// spool, finished before the policy decides. (Signing what leaves is
// rewrite.Signer's, at delivery.)
type verification struct {
	verifier   *dkim.Verifier // nil: verification is off
	authservID string
	signer     *rewrite.Signer // tells the policy whether copies can be signed

	verifications *prometheus.CounterVec
}

func newVerification(c config.DKIM, signer *rewrite.Signer, reg prometheus.Registerer) *verification {
	v := &verification{
		authservID: c.AuthservID,
		signer:     signer,
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bccguard_dkim_verifications_total", Help: "Incoming DKIM signatures checked, by result (pass, fail, temperror, permerror; none for a message without one).",
		}, []string{"result"}),
	}
	if c.Verify {
		v.verifier = &dkim.Verifier{Lookup: dkim.NewLookup(c.Resolver)}
	}
	reg.MustRegister(v.verifications)
	return v
}

// newSigner is the DKIM signer of the copies delivery writes, with the
// keys of the configuration.
func newSigner(c config.DKIM, reg prometheus.Registerer) *rewrite.Signer {
	keys := make([]dkim.Key, 0, len(c.Keys))
	for _, k := range c.Keys {
		keys = append(keys, dkim.Key{Domain: k.Domain, Selector: k.Selector, Signer: k.Signer, Expire: k.ExpireAfter.D()})
	}
	return rewrite.NewSigner(rewrite.SignerOptions{
		Keyring:    dkim.NewKeyring(keys, c.FallbackDomain),
		SignPassed: c.SignPassed,
		AuthservID: c.AuthservID,
		Verifying:  c.Verify,
	}, reg)
}

// startVerify begins verifying a message once its header block is in; nil
// when verification is off or there is no signature to verify, so an
// unsigned message costs no hashing tee and no goroutine.
func (vf *verification) startVerify(ctx context.Context, h *mailhdr.Reading) *dkim.Check {
	if vf.verifier == nil || !h.Has("DKIM-Signature") {
		return nil
	}
	return vf.verifier.Start(ctx)
}

// finishVerify ends the verification of a message that has been received
// whole and returns what the policy sees and the Authentication-Results:
// field to store with it ("" for a message without signatures). The
// field matters most where bccguard removed the original signatures its
// rewrite broke: it records that they held when the message arrived.
func (vf *verification) finishVerify(c *dkim.Check, h *mailhdr.Reading) (policy.DKIM, string) {
	facts := policy.DKIM{CanSign: vf.signer.CanSign(h)}
	if vf.verifier == nil {
		return facts, ""
	}
	var res dkim.Result // none: the message has no signature
	if c != nil {
		res = c.Result()
	}
	for _, v := range res.Values() {
		vf.verifications.WithLabelValues(v).Inc()
	}
	facts.Valid = res.Valid()
	facts.Domains = res.Domains()
	if len(res.Signatures) == 0 {
		// Nothing to record for an unsigned message (dkim=none): its
		// copies stay as they were but for Received:, and receivers
		// learn nothing from a "none" they find out themselves.
		return facts, ""
	}
	return facts, res.Field(vf.authservID)
}
