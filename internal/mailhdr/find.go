package mailhdr

import (
	"net/url"
	"strings"
)

// Found is an address-like token in text.
type Found struct {
	Addr string
	// Also is a longer reading of the same token, "" if none: atext allows
	// "=", "?", "&" and "/" in a local part, but in a URL query
	// ("?subject=bob@example.com") they end the word before the address.
	// Addr is the short reading, Also the whole run.
	Also string
	// Mailto is set when the address is the target of a mailto: URI (and
	// not in its query): the mailbox a List-* field points at.
	Mailto bool
}

// Find returns the address-like tokens in s, decoded text of any kind (a
// Subject, a display name, a comment, a line that is not a field): what a
// person reading it would take for an address. That is local@domain with
// RFC 5322 atext and dots in the local part and a domain of two or more
// labels (or an address literal). Percent-encoded ones (%40 in a mailto:
// query) are found too. Each is returned once, in order.
func Find(s string) []Found {
	if !strings.Contains(s, "@") && !strings.Contains(s, "%40") {
		return nil
	}
	var out []Found
	seen := map[string]bool{}
	add := func(text string) {
		for i := 0; i < len(text); {
			j := strings.IndexByte(text[i:], '@')
			if j < 0 {
				return
			}
			at := i + j
			if f, ok := foundAt(text, at); ok && !seen[Key(f.Addr)] {
				seen[Key(f.Addr)] = true
				out = append(out, f)
			}
			i = at + 1
		}
	}
	add(s)
	if strings.Contains(s, "%") {
		if u, err := url.PathUnescape(strings.ReplaceAll(s, "+", " ")); err == nil && u != s {
			add(u)
		} else if err != nil {
			add(lenientUnescape(s))
		}
	}
	return out
}

// foundAt returns the address around the "@" at s[at].
func foundAt(s string, at int) (Found, bool) {
	k := at
	for k > 0 && isLocalByte(s[k-1]) && at-k < 64 {
		k--
	}
	for k < at && s[k] == '.' {
		k++
	}
	local := s[k:at]
	if local == "" || strings.HasSuffix(local, ".") {
		return Found{}, false
	}
	long := ""
	if i := strings.LastIndexAny(local, "=?&/"); i >= 0 {
		long = local
		local = strings.TrimLeft(local[i+1:], ".")
		if local == "" {
			return Found{}, false
		}
	}
	m := at + 1
	if m < len(s) && s[m] == '[' {
		end := strings.IndexByte(s[m:], ']')
		if end < 0 {
			return Found{}, false
		}
		m += end + 1
	} else {
		for m < len(s) && isDomainByte(s[m]) && m-at <= 255 {
			m++
		}
		for m > at+1 && (s[m-1] == '.' || s[m-1] == '-') {
			m--
		}
		if !dottedDomain(s[at+1 : m]) {
			return Found{}, false
		}
	}
	f := Found{Addr: local + s[at:m], Mailto: isMailto(s, at-len(local))}
	if long != "" {
		f.Also = long + s[at:m]
	}
	return f, true
}

// isMailto reports whether the address starting at s[k] follows "mailto:".
func isMailto(s string, k int) bool {
	return k >= 7 && strings.EqualFold(s[k-7:k], "mailto:")
}

func isLocalByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c >= 0x80 ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0
}

func isDomainByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c >= 0x80 || c == '-' || c == '.'
}

// dottedDomain wants two or more non-empty labels of at most 63 bytes.
func dottedDomain(d string) bool {
	if !strings.Contains(d, ".") {
		return false
	}
	for l := range strings.SplitSeq(d, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
	}
	return true
}

// lenientUnescape undoes the %XX escapes it can and keeps the rest.
func lenientUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
