package relay

import (
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-message/mail"

	"github.com/bccguard/bccguard/relay/dkim"
	"github.com/bccguard/bccguard/relay/store"
)

// copyOptions are what delivery adds to the rewrite of a copy.
type copyOptions struct {
	// prefix is written above the copy: bccguard's DKIM-Signature and
	// Authentication-Results: fields, whole and ending in CRLF.
	prefix string
	// stripSignatures drops the original DKIM-Signature fields that the
	// rewrite has broken (see keepSignature).
	stripSignatures bool
	// authservID, when set, drops incoming Authentication-Results: fields
	// that claim to be bccguard's own (RFC 8601 5): a sender must not be
	// able to forge the result bccguard records.
	authservID string
	// names, when set, are the message's To:/Cc: display names, parsed
	// once for all its exploded copies (see msgSource.visible).
	names *visibleNames
}

// writeCopy writes the delivery's copy: the prefix, the header with the
// rewrite's edits, the separator and the body, streamed from body. w
// should be buffered: the header goes out field by field.
func writeCopy(w io.Writer, src *msgSource, body io.Reader, d store.Delivery, o copyOptions) error {
	if _, err := io.WriteString(w, o.prefix); err != nil {
		return err
	}
	if err := writeHeaderWith(w, src.fields, d, o); err != nil {
		return err
	}
	if _, err := w.Write(src.tail); err != nil {
		return err
	}
	if _, err := io.Copy(w, body); err != nil {
		return fmt.Errorf("copy body: %w", err)
	}
	return nil
}

// writeHeader writes the fields with the edits of the delivery's rewrite.
// Every field it does not edit is written byte for byte.
//
//   - pass: Bcc: and Resent-Bcc: removed.
//   - explode: To: shows only the delivery's recipient (with the display
//     name the original gave them); Cc: and Bcc: removed.
//   - bcc: To: undisclosed-recipients:; Cc: and Bcc: removed.
//
// The new To: takes the place of the first To: (or Cc:) field, so the order
// of the others is unchanged.
func writeHeader(w io.Writer, fields []rawField, d store.Delivery) error {
	return writeHeaderWith(w, fields, d, copyOptions{})
}

// writeHeaderWith is writeHeader with delivery's additions (see
// copyOptions).
func writeHeaderWith(w io.Writer, fields []rawField, d store.Delivery, o copyOptions) error {
	to, err := newTo(fields, d, o.names)
	if err != nil {
		return err
	}
	var changed map[string]bool
	if o.stripSignatures {
		changed = changedFields(fields, to, o.authservID)
	}
	drop := func(f rawField) bool {
		switch {
		case o.authservID != "" && f.is("Authentication-Results"):
			return isOwnAuthResults(f, o.authservID)
		case o.stripSignatures && f.is("DKIM-Signature"):
			return !keepSignature(f, changed)
		}
		return false
	}
	placed := false
	endsLine := true // whether what was written so far ends with a line end
	for _, f := range fields {
		switch {
		case isBlind(f):
			continue
		case to != "" && (f.is("To") || f.is("Cc")):
			if !placed {
				if _, err := io.WriteString(w, to); err != nil {
					return err
				}
				placed = true
			}
			continue
		case drop(f):
			continue
		}
		if _, err := w.Write(f.raw); err != nil {
			return err
		}
		endsLine = len(f.raw) > 0 && f.raw[len(f.raw)-1] == '\n'
	}
	if to != "" && !placed {
		// A header block cut short (no final line end) must not run into
		// the new field.
		if !endsLine {
			to = "\r\n" + to
		}
		_, err := io.WriteString(w, to)
		return err
	}
	return nil
}

// newTo is the To: field that replaces To:/Cc: in the delivery's copy, ""
// when the rewrite keeps them.
func newTo(fields []rawField, d store.Delivery, names *visibleNames) (string, error) {
	switch d.Rewrite {
	case store.RewriteExplode:
		if len(d.Recipients) != 1 {
			return "", fmt.Errorf("explode delivery %s has %d recipients, want 1", d.ID, len(d.Recipients))
		}
		if names == nil {
			names = parseVisibleNames(fields)
		}
		return "To: " + names.visibleAs(d.Recipients[0].Addr) + "\r\n", nil
	case store.RewriteBcc:
		return "To: undisclosed-recipients:;\r\n", nil
	}
	return "", nil
}

// changedFields lists (lowercased) the fields whose instances differ
// between the stored header and the delivery's copy (to is newTo's
// result): Bcc: and Resent-Bcc: whenever there was one; for explode and bcc, Cc: when
// there was one and To: unless the new To: is byte for byte the only
// original one; Authentication-Results: when one claiming authservID is
// dropped.
func changedFields(fields []rawField, to, authservID string) map[string]bool {
	changed := map[string]bool{}
	var tos [][]byte
	for _, f := range fields {
		switch {
		case isBlind(f):
			changed[strings.ToLower(f.name)] = true
		case f.is("Cc") && to != "":
			changed["cc"] = true
		case f.is("To"):
			tos = append(tos, f.raw)
		case authservID != "" && f.is("Authentication-Results") && isOwnAuthResults(f, authservID):
			changed["authentication-results"] = true
		}
	}
	if to != "" && (len(tos) != 1 || string(tos[0]) != to) {
		changed["to"] = true
	}
	return changed
}

// isBlind reports whether f is a blind-copy field, which never leaves:
// Bcc and Resent-Bcc (RFC 5322 3.6.3, 3.6.6).
func isBlind(f rawField) bool { return f.is("Bcc") || f.is("Resent-Bcc") }

// keepSignature reports whether an original DKIM-Signature field still
// holds in the copy: it does unless its h= covers a changed field. Such a
// signature would fail at every receiver, and a failing signature from the
// sender's own domain can count against the copy; one that covers no
// changed field (a list footer signer, an ESP's signature over From and
// Subject only) still verifies and is kept.
func keepSignature(f rawField, changed map[string]bool) bool {
	for _, name := range dkim.SignedFields(f.value()) {
		if changed[name] {
			return false
		}
	}
	return true
}

// isOwnAuthResults reports whether an Authentication-Results: field names
// authservID as its author (the token before the first ";", RFC 8601 2.2).
func isOwnAuthResults(f rawField, authservID string) bool {
	id, _, _ := strings.Cut(f.value(), ";")
	id = strings.TrimSpace(id)
	if i := strings.IndexAny(id, " \t("); i >= 0 {
		id = id[:i] // an optional version after the id, or a comment
	}
	return strings.EqualFold(id, authservID)
}

// visibleNames are the mailboxes of a header's To:/Cc: fields, parsed once:
// an exploded message of n recipients would otherwise parse its n
// addresses again for each of its n copies.
type visibleNames struct {
	list   []*mail.Address   // in header order; unparsable fields skipped
	byAddr map[string]string // lowercased address -> first non-empty name
}

func parseVisibleNames(fields []rawField) *visibleNames {
	v := &visibleNames{byAddr: map[string]string{}}
	for _, f := range fields {
		if !f.is("To") && !f.is("Cc") {
			continue
		}
		list, err := mail.ParseAddressList(f.value())
		if err != nil {
			continue
		}
		for _, a := range list {
			v.list = append(v.list, a)
			if k := strings.ToLower(a.Address); a.Name != "" && v.byAddr[k] == "" {
				v.byAddr[k] = a.Name
			}
		}
	}
	return v
}

// visibleAs is the first display name the header gives addr (compared
// without case), as the To: of addr's own copy.
func (v *visibleNames) visibleAs(addr string) string {
	name := v.byAddr[strings.ToLower(addr)]
	if name == "" {
		// Unicode case folding can match where lowercasing does not.
		for _, a := range v.list {
			if a.Name != "" && strings.EqualFold(a.Address, addr) {
				name = a.Name
				break
			}
		}
	}
	return (&mail.Address{Name: name, Address: addr}).String()
}
