package policy

import (
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
