package dkim

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

// Signature is one DKIM-Signature field made by Sign.
type Signature struct {
	Key Key
	// Field is the whole header field, folded, ending in CRLF: ready to be
	// written above the copy it signs.
	Field string
}

// Sign signs one message with every key in a single pass. write is called
// once and must write the whole message (header block, then body) to the
// writer it is given; that writer feeds all of go-msgauth's streaming
// signers at once, so the body is hashed as it goes by and never held,
// whatever its size. headerKeys is the h= list (see HeaderKeys);
// canonicalization is relaxed/relaxed, which survives the re-folding and
// whitespace changes of MTAs on the way.
func Sign(keys []Key, headerKeys []string, write func(io.Writer) error) ([]Signature, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	signers := make([]*dkim.Signer, 0, len(keys))
	writers := make([]io.Writer, 0, len(keys))
	closeAll := func() {
		for _, s := range signers {
			_ = s.Close()
		}
	}
	now := time.Now()
	for _, k := range keys {
		o := &dkim.SignOptions{
			Domain:                 k.Domain,
			Selector:               k.Selector,
			Signer:                 k.Signer,
			HeaderCanonicalization: dkim.CanonicalizationRelaxed,
			BodyCanonicalization:   dkim.CanonicalizationRelaxed,
			HeaderKeys:             headerKeys,
		}
		if k.Expire > 0 {
			o.Expiration = now.Add(k.Expire)
		}
		s, err := dkim.NewSigner(o)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("dkim %s/%s: %w", k.Domain, k.Selector, err)
		}
		signers = append(signers, s)
		writers = append(writers, s)
	}
	if err := write(io.MultiWriter(writers...)); err != nil {
		closeAll()
		return nil, err
	}
	sigs := make([]Signature, len(keys))
	var errs []error
	for i, s := range signers {
		// Close must be called on every signer, also after one failed, so
		// that no signing goroutine is left waiting.
		if err := s.Close(); err != nil {
			errs = append(errs, fmt.Errorf("dkim %s/%s: %w", keys[i].Domain, keys[i].Selector, err))
			continue
		}
		sigs[i] = Signature{Key: keys[i], Field: s.Signature()}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return sigs, nil
}
