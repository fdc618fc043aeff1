package relay

import (
	"fmt"
	"regexp"
	"strings"
)

// addrLike matches what looks like a mail address inside free text, such as
// an upstream's "550 5.1.1 <bob@example.net>: Recipient address rejected",
// in every form the relay accepts (internal/smtpaddr): a local part that is
// quoted (with escapes: "a \"b\"") or a run without spaces and delimiters
// (which may hold "@", as the unquoted form of "a@b"@c.example does), "@",
// and an address literal ([192.0.2.1], [IPv6:...]) or a domain that does not
// end in a dot (so the full stop of a sentence stays).
var addrLike = regexp.MustCompile(`(?:"(?:[^"\\\r\n]|\\.)*"|[^\s<>()\[\]",;:]+)@(?:\[[^\]\s]*\]|[^\s<>()\[\]",;:@]*[^\s<>()\[\]",;:@.])`)

// redactText replaces every address in text with its redaction token, for
// log fields that carry text from elsewhere (upstream replies, library
// errors). With redaction off it returns text unchanged.
func (s *Server) redactText(text string) string {
	if s.redactKey == nil || !strings.Contains(text, "@") {
		return text
	}
	return addrLike.ReplaceAllStringFunc(text, s.redact)
}

// RedactText is redactText for the other parts of bccguard that log text
// which may carry addresses (the review service's filters, sign-in names).
func (s *Server) RedactText(text string) string { return s.redactText(text) }

// redactingPrinter passes go-smtp's server log (panics, connection errors)
// through redactText before it reaches slog.
type redactingPrinter struct {
	p      slogPrinter
	redact func(string) string
}

func (r redactingPrinter) Printf(format string, v ...any) {
	r.p.Println(r.redact(fmt.Sprintf(format, v...)))
}

func (r redactingPrinter) Println(v ...any) { r.p.Println(r.redact(fmt.Sprint(v...))) }
