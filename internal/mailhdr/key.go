package mailhdr

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// SplitAddr splits an addr-spec at its last "@" (a quoted local part may
// hold another). ok is false when there is no "@" with text on both sides.
func SplitAddr(a string) (local, domain string, ok bool) {
	i := strings.LastIndexByte(a, '@')
	if i <= 0 || i == len(a)-1 {
		return "", "", false
	}
	return a[:i], a[i+1:], true
}

// NormDomain lowercases a domain and brings an internationalized one to one
// form (Unicode), so that "Bücher.example" and "xn--bcher-kva.example" are
// the same domain.
func NormDomain(d string) string {
	d = strings.TrimSuffix(strings.TrimSpace(d), ".")
	if strings.HasPrefix(d, "[") {
		return strings.ToLower(d) // address literal
	}
	if isASCII(d) && !strings.Contains(strings.ToLower(d), "xn--") {
		return strings.ToLower(d)
	}
	if u, err := idna.Lookup.ToUnicode(d); err == nil && u != "" && !strings.ContainsAny(u, "@ ") {
		return u
	}
	return strings.ToLower(d)
}

// Key is the form in which bccguard compares addresses: the domain as
// NormDomain gives it, and the local part unquoted and lowercased too. RFC
// 5321 lets a local part be case sensitive, but practically no mailbox is,
// and a CRM that writes "Jane.Doe@" in To: and "jane.doe@" in RCPT TO must
// not make her look like someone else. An unqualified address ("baz") is
// its lowercased self.
func Key(a string) string {
	if plainKey(a) {
		return a // already in its compared form: no allocation
	}
	a = strings.TrimSpace(a)
	a = strings.TrimSuffix(strings.TrimPrefix(a, "<"), ">")
	local, domain, ok := SplitAddr(a)
	if !ok {
		return strings.ToLower(a)
	}
	if len(local) >= 2 && local[0] == '"' && local[len(local)-1] == '"' {
		local = unquote(local[1 : len(local)-1])
	}
	return strings.ToLower(local) + "@" + NormDomain(domain)
}

// DomainOf returns the normalized domain of an address ("" if it has none).
func DomainOf(a string) string {
	_, d, ok := SplitAddr(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(a), "<"), ">"))
	if !ok {
		return ""
	}
	return NormDomain(d)
}

func unquote(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// plainKey reports whether a is already its own Key: lowercase ASCII with
// one "@", nothing to unquote, trim or convert.
func plainKey(a string) bool {
	at := -1
	for i := 0; i < len(a); i++ {
		switch c := a[i]; {
		case c == '@':
			if at >= 0 {
				return false
			}
			at = i
		case c >= utf8.RuneSelf, 'A' <= c && c <= 'Z', c == '"', c == '<', c == '>', c == ' ', c == '\t', c == '[':
			return false
		}
	}
	return at > 0 && at < len(a)-1 && a[len(a)-1] != '.' && !strings.Contains(a[at:], "xn--")
}
