// Package oneline makes text from elsewhere (an upstream's reply, a
// library's error) safe to put on one line of an SMTP reply, a stored
// delivery error or a status report.
package oneline

// ASCII keeps printable ASCII only, so no CR or LF can inject a reply
// line, turns tabs and line breaks into spaces, and caps the length at
// max bytes.
func ASCII(s string, max int) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(b) < max; i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			b = append(b, c)
		} else if c == '\t' || c == '\r' || c == '\n' {
			b = append(b, ' ')
		}
	}
	return string(b)
}
