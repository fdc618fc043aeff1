package relay

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-message/mail"

	"github.com/bccguard/bccguard/relay/store"
)

// render writes the copy of a stored message for one delivery: the header
// block with the delivery's edits, then the body streamed unchanged. raw is
// the stored message from its first byte; only the header block (bounded by
// the listener's header limit when it was received) is held in memory.
func render(w io.Writer, raw io.Reader, msg store.Message, d store.Delivery) error {
	head := make([]byte, msg.HeaderLen)
	if _, err := io.ReadFull(raw, head); err != nil {
		return fmt.Errorf("read stored header: %w", err)
	}
	fields, tail := splitHeader(head)
	bw := bufio.NewWriterSize(w, 32<<10)
	if err := writeHeader(bw, fields, d); err != nil {
		return err
	}
	if _, err := bw.Write(tail); err != nil {
		return err
	}
	if _, err := io.Copy(bw, raw); err != nil {
		return fmt.Errorf("copy body: %w", err)
	}
	return bw.Flush()
}

// writeHeader writes the fields with the edits of the delivery's rewrite.
// Every field it does not edit is written byte for byte.
//
//   - pass: Bcc: removed.
//   - explode: To: shows only the delivery's recipient (with the display
//     name the original gave them); Cc: and Bcc: removed.
//   - bcc: To: undisclosed-recipients:; Cc: and Bcc: removed.
//
// The new To: takes the place of the first To: (or Cc:) field, so the order
// of the others is unchanged.
func writeHeader(w io.Writer, fields []rawField, d store.Delivery) error {
	var to string
	switch d.Rewrite {
	case store.RewriteExplode:
		if len(d.Recipients) != 1 {
			return fmt.Errorf("explode delivery %s has %d recipients, want 1", d.ID, len(d.Recipients))
		}
		to = "To: " + visibleAs(fields, d.Recipients[0].Addr) + "\r\n"
	case store.RewriteBcc:
		to = "To: undisclosed-recipients:;\r\n"
	}
	placed := false
	endsLine := true // whether what was written so far ends with a line end
	for _, f := range fields {
		switch {
		case f.is("Bcc"):
			continue
		case to != "" && (f.is("To") || f.is("Cc")):
			if !placed {
				if _, err := io.WriteString(w, to); err != nil {
					return err
				}
				placed = true
			}
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

// visibleAs formats addr for the To: of its own copy, with the display name
// the original's To:/Cc: gave it, if any.
func visibleAs(fields []rawField, addr string) string {
	name := ""
	for _, f := range fields {
		if !f.is("To") && !f.is("Cc") {
			continue
		}
		list, err := mail.ParseAddressList(f.value())
		if err != nil {
			continue
		}
		for _, a := range list {
			if strings.EqualFold(a.Address, addr) && a.Name != "" {
				name = a.Name
				break
			}
		}
		if name != "" {
			break
		}
	}
	return (&mail.Address{Name: name, Address: addr}).String()
}
