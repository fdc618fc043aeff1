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
	out, err := s.edit(d, o)
	if err != nil {
		return err
	}
	var changed map[string]bool
	if o.StripSignatures {
		changed = s.changedBy(out, o)
	}
	if _, err := w.Write(s.own); err != nil {
		return err
	}
	for _, f := range out {
		if changed != nil && f.orig >= 0 && s.hdr.Entries[f.orig].Is("DKIM-Signature") && !keepSignature(s.hdr.Entries[f.orig].Field, changed) {
			continue
		}
		if _, err := w.Write(f.raw); err != nil {
			return err
		}
	}
	_, err = w.Write(s.hdr.Tail)
	return err
}

// outField is one field of a copy's header: an original one written as it
// is (orig is its index among the entries), or one the rewrite made (orig
// -1).
type outField struct {
	name string
	raw  []byte
	orig int
}

// edit applies the table to the header for delivery d: the copy's fields
// in order (bccguard's Received: and the separator aside), the original
// signatures still among them.
func (s *Source) edit(d store.Delivery, o Options) ([]outField, error) {
	to, err := s.newTo(d)
	if err != nil {
		return nil, err
	}
	own := ""
	if len(d.Recipients) == 1 {
		own = mailhdr.Key(d.Recipients[0].Addr)
	}
	out := make([]outField, 0, len(s.hdr.Entries)+1)
	// A field written after one that does not end in LF (a bare CR, or a
	// block cut short), other than the one that followed it in the
	// original, must not run into it.
	put := func(f outField, i int) {
		if n := len(out); n > 0 {
			last := out[n-1]
			if (f.orig < 0 || last.orig != i-1) && !bytes.HasSuffix(last.raw, []byte("\n")) {
				sep := "\r\n"
				if bytes.HasSuffix(last.raw, []byte("\r")) {
					sep = "\n"
				}
				f.raw, f.orig = append([]byte(sep), f.raw...), -1
			}
		}
		out = append(out, f)
	}
	placed := false
	for i, e := range s.hdr.Entries {
		if o.AuthservID != "" && e.Is("Authentication-Results") && isOwnAuthResults(e.Field, o.AuthservID) {
			continue
		}
		switch edits.For(d.Rewrite, e.Name, e.Role) {
		case edits.Remove:
			continue
		case edits.Replace:
			if !placed {
				placed = true
				put(outField{"To", to, -1}, i)
			}
			continue
		case edits.Clean:
			if raw, keep := s.cleaned(i, own); !keep {
				if raw != nil {
					put(outField{e.Name, raw, -1}, i)
				}
				continue
			}
		}
		put(outField{e.Name, e.Raw, i}, i)
	}
	if to != nil && !placed {
		put(outField{"To", to, -1}, len(s.hdr.Entries))
	}
	return out, nil
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
	out, err := s.edit(d, o)
	if err != nil {
		return nil, err
	}
	return s.changedBy(out, o), nil
}

// changedBy is changed for the copy's fields out. Only the names the copy
// touches (a field left out, or one it made) are compared, instance by
// instance: a field made byte for byte as it was (a To: already showing
// only its recipient) changes nothing.
func (s *Source) changedBy(out []outField, o Options) map[string]bool {
	changed := map[string]bool{}
	kept := make([]bool, len(s.hdr.Entries))
	for _, f := range out {
		if f.orig >= 0 {
			kept[f.orig] = true
		} else {
			changed[strings.ToLower(f.name)] = true
		}
	}
	for i, e := range s.hdr.Entries {
		if !kept[i] && !e.Is("DKIM-Signature") {
			changed[e.Key()] = true
		}
	}
	for k := range changed {
		var before, after [][]byte
		for _, e := range s.hdr.Entries {
			if e.Key() == k {
				before = append(before, e.Raw)
			}
		}
		for _, f := range out {
			if strings.EqualFold(f.name, k) {
				after = append(after, f.raw)
			}
		}
		if sameFields(before, after) {
			delete(changed, k)
		}
	}
	if o.AuthservID != "" {
		for _, e := range s.hdr.Entries {
			if e.Is("Authentication-Results") && isOwnAuthResults(e.Field, o.AuthservID) {
				changed["authentication-results"] = true
			}
		}
	}
	return changed
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
