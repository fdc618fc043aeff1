package content

import (
	"strings"
	"unicode/utf8"
)

// The masks keep just enough of a value for a reviewer to recognise its
// kind and plausibility: never enough to use it.

// maskEmail keeps two characters of the local part and of the domain:
// "anna@example.com" is "an…@ex…".
func maskEmail(a []byte) string {
	s := string(a)
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return "…"
	}
	return prefix(s[:at], 2) + "…@" + prefix(s[at+1:], 2) + "…"
}

func prefix(s string, n int) string {
	i := 0
	for k := 0; k < n && i < len(s); k++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i]
}

// maskPhone keeps the country code, the first group and the last three
// digits of an internationally formatted number: "+44 20 7946 0001" is
// "+44 20 **** *001".
func maskPhone(intl string) string {
	b := []byte(intl)
	total := 0
	for _, c := range b {
		if '0' <= c && c <= '9' {
			total++
		}
	}
	group, digits := 0, 0
	for i, c := range b {
		switch {
		case c == ' ' || c == '-':
			group++
		case '0' <= c && c <= '9':
			digits++
			if group >= 2 && digits <= total-3 {
				b[i] = '*'
			}
		}
	}
	return string(b)
}

// maskCard shows the last four digits in groups of four:
// "**** **** **** 6467".
func maskCard(digits []byte) string {
	n := len(digits)
	var b strings.Builder
	for i := range n {
		if i > 0 && (n-i)%4 == 0 {
			b.WriteByte(' ')
		}
		if i < n-4 {
			b.WriteByte('*')
		} else {
			b.WriteByte(digits[i])
		}
	}
	return b.String()
}

// maskIBAN shows the country, the check digits and the last two
// characters: "GB82 **** **** **** **** 32".
func maskIBAN(iban []byte) string {
	var b strings.Builder
	for i, c := range iban {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		if i < 4 || i >= len(iban)-2 {
			b.WriteByte(c)
		} else {
			b.WriteByte('*')
		}
	}
	return b.String()
}
