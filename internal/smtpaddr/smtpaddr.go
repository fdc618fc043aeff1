// Package smtpaddr parses envelope addresses (the mailbox of a MAIL FROM or
// RCPT TO path) to RFC 5321 4.1.2 with the RFC 6531 (SMTPUTF8) extensions,
// and writes them back.
//
// It is hand-written because no library does this part: go-message and
// net/mail parse RFC 5322 header addresses (comments, folding, obsolete
// syntax, and no notion of SMTPUTF8 or the 5321 length limits), and
// go-smtp's own path parser accepts anything up to a space or ">" as the
// domain. bccguard's patched go-smtp hands the mailbox over as the client
// wrote it (a quoted local part with its quotes); Parse is the one place
// that decides what it means.
//
// The forms: a Mailbox's String is the local part unquoted, "@", and the
// domain, as go-smtp always handed it over, as bccguard stores and logs
// envelope addresses and as net/mail and go-message take an address. Since
// a valid domain never holds an "@", that form splits back at its last "@"
// without ambiguity. Wire is the form to write in a command: the local part
// as a dot-string, quoted only where RFC 5321 requires it. A client's
// needless quotes ("abc"@example.com) are not kept: RFC 5322 3.4.1 says the
// dot-atom form SHOULD be used where it can, the two name one mailbox, and
// Postfix forwards them the same way.
package smtpaddr

import (
	"errors"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Limits of RFC 5321 4.5.3.1, in octets (UTF-8 octets with SMTPUTF8).
const (
	MaxLocalPart = 64
	MaxDomain    = 255
	// MaxMailbox is the longest mailbox: a path is at most 256 octets
	// with its angle brackets.
	MaxMailbox = 254
)

// Mailbox is a parsed envelope address.
type Mailbox struct {
	// Local is the local part with quoting removed: what it means.
	Local string
	// Domain is a domain name (as written: A-labels or, with SMTPUTF8,
	// U-labels) or an address literal such as "[192.0.2.1]".
	Domain string
}

// String is Local "@" Domain (see the package comment).
func (m Mailbox) String() string { return m.Local + "@" + m.Domain }

// Wire is the mailbox as written in a MAIL FROM or RCPT TO command.
func (m Mailbox) Wire() string { return QuoteLocal(m.Local) + "@" + m.Domain }

// Error says why an address was refused, in words fit for an SMTP reply
// (it never repeats the address).
type Error struct{ Reason string }

func (e *Error) Error() string { return "invalid address: " + e.Reason }

// ErrNeedsSMTPUTF8 is returned for a non-ASCII address in a transaction
// that did not ask for SMTPUTF8.
var ErrNeedsSMTPUTF8 = errors.New("non-ASCII address without SMTPUTF8")

func fail(reason string) error { return &Error{Reason: reason} }

// Parse parses a mailbox as the client wrote it (go-smtp has taken off the
// angle brackets and any source route). utf8 is whether the transaction
// asked for SMTPUTF8, which allows non-ASCII local parts and domains.
func Parse(s string, utf8ok bool) (Mailbox, error) {
	if err := checkText(s, utf8ok); err != nil {
		return Mailbox{}, err
	}
	if len(s) > MaxMailbox {
		return Mailbox{}, fail("address longer than 254 octets")
	}
	var local string
	var rest string
	if strings.HasPrefix(s, `"`) {
		var ok bool
		local, rest, ok = unquote(s)
		if !ok {
			return Mailbox{}, fail("malformed quoted local part")
		}
	} else {
		at := strings.IndexByte(s, '@')
		if at < 0 {
			return Mailbox{}, fail("no @domain")
		}
		local, rest = s[:at], s[at:]
		if !isDotString(local) {
			return Mailbox{}, fail("local part is not a dot-string; quote it")
		}
	}
	if len(s)-len(rest) > MaxLocalPart {
		return Mailbox{}, fail("local part longer than 64 octets")
	}
	if local == "" {
		return Mailbox{}, fail("empty local part")
	}
	if !strings.HasPrefix(rest, "@") {
		return Mailbox{}, fail("no @ after the local part")
	}
	domain := rest[1:]
	if strings.IndexByte(domain, '@') >= 0 {
		return Mailbox{}, fail("an @ outside quotes in the local part")
	}
	if err := checkDomain(domain); err != nil {
		return Mailbox{}, err
	}
	return Mailbox{Local: local, Domain: domain}, nil
}

// FromString splits an address in the String form at its last "@" and
// checks that it can be written in a command: for addresses stored before
// they were parsed this strictly, so that one that cannot be sent is
// refused, not written.
func FromString(addr string) (Mailbox, error) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return Mailbox{}, fail("no @domain")
	}
	m := Mailbox{Local: addr[:at], Domain: addr[at+1:]}
	if err := checkText(addr, true); err != nil {
		return Mailbox{}, err
	}
	if m.Local == "" {
		return Mailbox{}, fail("empty local part")
	}
	if len(QuoteLocal(m.Local)) > MaxLocalPart {
		return Mailbox{}, fail("local part longer than 64 octets")
	}
	if len(m.Wire()) > MaxMailbox {
		return Mailbox{}, fail("address longer than 254 octets")
	}
	if err := checkDomain(m.Domain); err != nil {
		return Mailbox{}, err
	}
	return m, nil
}

// Wire is FromString(addr).Wire(), for a stored address.
func Wire(addr string) (string, error) {
	m, err := FromString(addr)
	if err != nil {
		return "", err
	}
	return m.Wire(), nil
}

// checkText refuses control characters (NUL among them), invalid UTF-8 and,
// without SMTPUTF8, anything past ASCII.
func checkText(s string, utf8ok bool) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return fail("control character in the address")
		case c >= 0x80 && !utf8ok:
			return ErrNeedsSMTPUTF8
		}
	}
	if !utf8.ValidString(s) {
		return fail("invalid UTF-8 in the address")
	}
	for _, r := range s {
		switch {
		case r >= 0x80 && r < 0xa0 || r == 0x2028 || r == 0x2029:
			return fail("control character in the address")
		case unicode.Is(unicode.Cf, r):
			// Bidi overrides, zero-width characters: an address that
			// looks like another one to whoever reads it.
			return fail("invisible formatting character in the address")
		}
	}
	return nil
}

// unquote reads the quoted-string at the start of s (RFC 5321
// Quoted-string: qtextSMTP and quoted-pairSMTP, plus UTF-8 with RFC 6531)
// and returns its content and the rest of s.
func unquote(s string) (content, rest string, ok bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return b.String(), s[i+1:], true
		case c == '\\':
			i++
			if i >= len(s) || s[i] < 0x20 || s[i] > 0x7e {
				return "", "", false
			}
			b.WriteByte(s[i])
		case c >= 0x20 && c != 0x7f:
			b.WriteByte(c)
		default:
			return "", "", false
		}
	}
	return "", "", false
}

// QuoteLocal writes a local part as a dot-string when it is one, else as a
// quoted-string with '"' and '\' escaped.
func QuoteLocal(local string) string {
	if isDotString(local) {
		return local
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(local); i++ {
		if c := local[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(local[i])
	}
	b.WriteByte('"')
	return b.String()
}

// isDotString reports whether s is Atom *("." Atom) with RFC 5321 atext
// (and UTF-8 beyond ASCII, RFC 6531).
func isDotString(s string) bool {
	if s == "" {
		return false
	}
	prevDot := true // no dot first
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if prevDot {
				return false
			}
			prevDot = true
			continue
		}
		if !isAtext(c) {
			return false
		}
		prevDot = false
	}
	return !prevDot
}

func isAtext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c >= 0x80:
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// checkDomain accepts a domain name (LDH labels, or U-labels that IDNA
// accepts) or an IPv4 or IPv6 address literal.
func checkDomain(d string) error {
	if d == "" {
		return fail("empty domain")
	}
	if len(d) > MaxDomain {
		return fail("domain longer than 255 octets")
	}
	if strings.HasPrefix(d, "[") {
		if !validLiteral(d) {
			return fail("not an IPv4 or IPv6 address literal")
		}
		return nil
	}
	for _, label := range strings.Split(d, ".") {
		if !validLabel(label) {
			return fail("not a valid domain")
		}
	}
	return nil
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	ascii := true
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case c >= 0x80:
			ascii = false
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
		default:
			return false
		}
	}
	if ascii {
		return true
	}
	a, err := idna.Lookup.ToASCII(l)
	return err == nil && a != "" && !strings.Contains(a, ".")
}

func validLiteral(d string) bool {
	if len(d) < 3 || d[len(d)-1] != ']' {
		return false
	}
	inner := d[1 : len(d)-1]
	if v6, ok := strings.CutPrefix(inner, "IPv6:"); ok {
		a, err := netip.ParseAddr(v6)
		return err == nil && a.Is6() && a.Zone() == ""
	}
	a, err := netip.ParseAddr(inner)
	return err == nil && a.Is4()
}
