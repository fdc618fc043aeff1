package contenttest

import (
	"encoding/base64"
	"fmt"
	"mime"
	"strings"
)

// Attachment is one attachment of a test message.
type Attachment struct {
	Name string
	Type string // Content-Type; application/octet-stream if empty
	Data []byte
	// Raw, for message/rfc822, puts Data in the part as it is (8bit).
	Raw bool
}

// Message is a one-to-one message from sales@brand.example to
// agency@example.net with a text body and the attachments, base64.
func Message(subject, text string, atts ...Attachment) []byte {
	return MessageTo("Partner Agency <agency@example.net>", subject, text, atts...)
}

// MessageTo is Message with the To: field given.
func MessageTo(to, subject, text string, atts ...Attachment) []byte {
	var b strings.Builder
	b.WriteString("From: Sales Team <sales@brand.example>\r\nTo: " + to + "\r\n" +
		"Subject: " + subject + "\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\nMessage-ID: <export-1@brand.example>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"=_part\"\r\n\r\n" +
		"--=_part\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text + "\r\n")
	for _, a := range atts {
		typ := a.Type
		if typ == "" {
			typ = "application/octet-stream"
		}
		name := mime.QEncoding.Encode("utf-8", a.Name)
		fmt.Fprintf(&b, "--=_part\r\nContent-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\n", typ, name, name)
		if a.Raw {
			b.WriteString("\r\n")
			b.Write(a.Data)
			b.WriteString("\r\n")
			continue
		}
		b.WriteString("Content-Transfer-Encoding: base64\r\n\r\n")
		b.WriteString(Base64Lines(a.Data))
	}
	b.WriteString("--=_part--\r\n")
	return []byte(b.String())
}

// Base64Lines encodes data in lines of 76 characters, as MIME wants.
func Base64Lines(data []byte) string {
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return b.String()
}
