package policy

import (
	"strings"
	"unicode/utf8"

	"github.com/bccguard/bccguard/internal/mailhdr"
)

// addrKey is the form in which the policy compares addresses (see
// mailhdr.Key: the local part lowercased too, IDN domains in one form).
func addrKey(a string) string { return mailhdr.Key(a) }

// domainOf returns the normalized domain of an address ("" if it has none).
func domainOf(a string) string { return mailhdr.DomainOf(a) }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// safeParseError reduces a library's parse error to its kind: net/mail
// and go-message repeat the offending input after it (quoted, or after a
// last colon), and that input is someone's address or header line, which
// must not reach logs or replies.
func safeParseError(err error) string {
	m := err.Error()
	for _, kind := range []string{"malformed MIME header line", "malformed MIME header key", "malformed MIME header initial line"} {
		if i := strings.Index(m, kind); i >= 0 {
			return m[:i+len(kind)]
		}
	}
	if i := strings.IndexByte(m, '"'); i >= 0 {
		m = m[:i]
	}
	if i := strings.Index(m, ": '"); i >= 0 {
		m = m[:i]
	}
	return strings.TrimRight(m, " :;")
}
