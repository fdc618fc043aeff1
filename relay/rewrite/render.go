package rewrite

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-message/mail"

	"github.com/bccguard/bccguard/internal/mailhdr"
	"github.com/bccguard/bccguard/relay/dkim"
	"github.com/bccguard/bccguard/relay/rewrite/edits"
	"github.com/bccguard/bccguard/relay/store"
)

// Options are what delivery adds to the rewrite of a copy.
type Options struct {
	// Prefix is written above the copy: bccguard's DKIM-Signature and
	// Authentication-Results: fields, whole and ending in CRLF.
	Prefix string
	// StripSignatures drops the original DKIM-Signature fields that the
	// rewrite has broken (see keepSignature).
	StripSignatures bool
	// AuthservID, when set, drops incoming Authentication-Results: fields
	// that claim to be bccguard's own (RFC 8601 5): a sender must not be
	// able to forge the result bccguard records.
	AuthservID string
}

// WriteCopy writes the delivery's copy: the prefix, bccguard's Received:,
// the original header with the rewrite's edits (see package edits),
// the separator and the body, streamed from body. w should be buffered: the
// header goes out field by field.
func WriteCopy(w io.Writer, src *Source, body io.Reader, d store.Delivery, o Options) error {
	if _, err := io.WriteString(w, o.Prefix); err != nil {
		return err
	}
	if err := src.WriteHeader(w, d, o); err != nil {
		return err
	}
	if _, err := io.Copy(w, body); err != nil {
		return fmt.Errorf("copy body: %w", err)
	}
	return nil
}

// WriteHeader writes the copy's header block: bccguard's Received:, the
// edited fields and the empty line that ends the block. Every field the
// table does not edit is written byte for byte.
func (s *Source) WriteHeader(w io.Writer, d store.Delivery, o Options) error {
	if _, err := w.Write(s.own); err != nil {
		return err
	}
	var changed map[string]bool
	if o.StripSignatures {
		var err error
		if changed, err = s.changed(d, o); err != nil {
			return err
		}
	}
	err := s.fields(d, o, changed, func(_ string, raw []byte) error {
		_, err := w.Write(raw)
		return err
	})
	if err != nil {
		return err
	}
	_, err = w.Write(s.hdr.Tail)
	return err
}

// fields calls emit with each field of the copy's header (bccguard's
// Received: and the separator aside), in order. changed, when not nil, is
// the set of fields the copy changes: the original signatures covering one
// of them are left out.
func (s *Source) fields(d store.Delivery, o Options, changed map[string]bool, emit func(name string, raw []byte) error) error {
	to, err := s.newTo(d)
	if err != nil {
		return err
	}
	own := ""
	if len(d.Recipients) == 1 {
		own = mailhdr.Key(d.Recipients[0].Addr)
	}
	// A field written after one that does not end in LF (a bare CR, or a
	// block cut short), other than the one that followed it in the
	// original, must not run into it.
	last, lastRaw := -2, []byte(nil)
	put := func(i int, name string, raw []byte) error {
		if lastRaw != nil && i != last+1 && !bytes.HasSuffix(lastRaw, []byte("\n")) {
			sep := "\r\n"
			if bytes.HasSuffix(lastRaw, []byte("\r")) {
				sep = "\n"
			}
			raw = append([]byte(sep), raw...)
		}
		last, lastRaw = i, raw
		return emit(name, raw)
	}
	placed := false
	for i, e := range s.hdr.Entries {
		switch {
		case o.AuthservID != "" && e.Is("Authentication-Results") && isOwnAuthResults(e.Field, o.AuthservID):
			continue
		case changed != nil && e.Is("DKIM-Signature") && !keepSignature(e.Field, changed):
			continue
		}
		switch edits.For(d.Rewrite, e.Name, e.Role) {
		case edits.Remove:
			continue
		case edits.Replace:
			if !placed {
				placed = true
				if err := put(-1, "To", to); err != nil {
					return err
				}
			}
			continue
		case edits.Clean:
			raw, keep := s.cleaned(i, own)
			if !keep {
				if raw != nil {
					if err := put(-1, e.Name, raw); err != nil {
						return err
					}
				}
				continue
			}
		}
		if err := put(i, e.Name, e.Raw); err != nil {
			return err
		}
	}
	if to != nil && !placed {
		return put(-1, "To", to)
	}
	return nil
}

// newTo is the To: field that takes the place of To:/Cc: in the delivery's
// copy, nil when the rewrite keeps them.
func (s *Source) newTo(d store.Delivery) ([]byte, error) {
	switch d.Rewrite {
	case store.RewriteExplode:
		if len(d.Recipients) != 1 {
			return nil, fmt.Errorf("explode delivery %s has %d recipients, want 1", d.ID, len(d.Recipients))
		}
		addr := d.Recipients[0].Addr
		return []byte("To: " + (&mail.Address{Name: s.OwnName(addr), Address: addr}).String() + "\r\n"), nil
	case store.RewriteBcc:
		return []byte("To: undisclosed-recipients:;\r\n"), nil
	}
	return nil, nil
}

// changed lists (lowercased) the fields whose instances differ between the
// original header and the delivery's copy, and Authentication-Results:
// when one claiming AuthservID is dropped: the fields a signature must not
// cover to stay valid.
func (s *Source) changed(d store.Delivery, o Options) (map[string]bool, error) {
	orig := map[string][][]byte{}
	for _, e := range s.hdr.Entries {
		if !e.Is("DKIM-Signature") {
			orig[e.Key()] = append(orig[e.Key()], e.Raw)
		}
	}
	out := map[string][][]byte{}
	err := s.fields(d, Options{}, nil, func(name string, raw []byte) error {
		k := strings.ToLower(name)
		if k != "dkim-signature" {
			out[k] = append(out[k], raw)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	changed := map[string]bool{}
	for k, v := range orig {
		if !sameFields(v, out[k]) {
			changed[k] = true
		}
	}
	for k := range out {
		if _, ok := orig[k]; !ok {
			changed[k] = true
		}
	}
	if o.AuthservID != "" {
		for _, e := range s.hdr.Entries {
			if e.Is("Authentication-Results") && isOwnAuthResults(e.Field, o.AuthservID) {
				changed["authentication-results"] = true
			}
		}
	}
	return changed, nil
}

func sameFields(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// keepSignature reports whether an original DKIM-Signature field still
// holds in the copy: it does unless its h= covers a changed field. Such a
// signature would fail at every receiver, and a failing signature from the
// sender's own domain can count against the copy; one that covers no
// changed field (a list footer signer, an ESP's signature over From and
// Subject only) still verifies and is kept.
func keepSignature(f mailhdr.Field, changed map[string]bool) bool {
	for _, name := range dkim.SignedFields(f.Body()) {
		if changed[name] {
			return false
		}
	}
	return true
}

// isOwnAuthResults reports whether an Authentication-Results: field names
// authservID as its author (the token before the first ";", RFC 8601 2.2).
func isOwnAuthResults(f mailhdr.Field, authservID string) bool {
	id, _, _ := strings.Cut(f.Body(), ";")
	id = strings.TrimSpace(id)
	if i := strings.IndexAny(id, " \t("); i >= 0 {
		id = id[:i] // an optional version after the id, or a comment
	}
	return strings.EqualFold(id, authservID)
}
