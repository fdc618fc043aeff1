package content

import (
	"bytes"
	"strings"
)

// The address finder is hand-written rather than a regexp: it runs over
// every decoded byte of every text part, and starting from each "@" found
// with bytes.IndexByte is several times faster than a regexp scan while
// matching the same shape: local@domain.tld, with RFC 5322 atext in the
// local part and LDH labels (or UTF-8) in the domain.
const (
	maxLocalLen  = 64  // RFC 5321 4.5.3.1.1
	maxDomainLen = 255 // RFC 5321 4.5.3.1.2
)

// findEmails calls add with every address in b and returns how many it
// found. Work is linear in b: each "@" looks at most maxLocalLen bytes
// back and maxDomainLen bytes ahead.
func findEmails(b []byte, add func([]byte)) int {
	n := 0
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '@')
		if j < 0 {
			break
		}
		at := i + j
		if a := matchAt(b, at); a != nil {
			add(a)
			n++
		}
		i = at + 1
	}
	return n
}

// matchAt returns the address around the "@" at buf[at], or nil.
func matchAt(buf []byte, at int) []byte {
	// Local part: atext and dots, leftwards.
	k := at
	for k > 0 && isLocalByte(buf[k-1]) {
		k--
		if at-k > maxLocalLen {
			return nil
		}
	}
	for k < at && buf[k] == '.' {
		k++ // a sentence's "...jane@" or ".jane@"
	}
	local := buf[k:at]
	if len(local) == 0 || local[len(local)-1] == '.' || bytes.Contains(local, []byte("..")) {
		return nil
	}
	// Domain: letters, digits, hyphens, dots, UTF-8; rightwards.
	m := at + 1
	for m < len(buf) && isDomainByte(buf[m]) {
		m++
		if m-at-1 > maxDomainLen {
			return nil
		}
	}
	for m > at+1 && (buf[m-1] == '.' || buf[m-1] == '-') {
		m-- // end of sentence
	}
	if !validDomain(buf[at+1 : m]) {
		return nil
	}
	return buf[k:m]
}

// Byte classes, as tables: these run for every byte around every "@".
var localByte, domainByte = byteClasses()

func byteClasses() (local, domain [256]bool) {
	for c := 0; c < 256; c++ {
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c >= 0x80
		local[c] = alnum || strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", byte(c)) >= 0
		domain[c] = alnum || c == '-' || c == '.'
	}
	return local, domain
}

func isLocalByte(c byte) bool  { return localByte[c] }
func isDomainByte(c byte) bool { return domainByte[c] }

// validDomain wants at least two labels of 1-63 bytes, no label starting or
// ending with "-", and a top-level label of letters (or an IDN).
func validDomain(d []byte) bool {
	if len(d) < 3 {
		return false
	}
	labels := 0
	var last []byte
	for len(d) > 0 {
		i := bytes.IndexByte(d, '.')
		var l []byte
		if i < 0 {
			l, d = d, nil
		} else {
			l, d = d[:i], d[i+1:]
		}
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		labels++
		last = l
	}
	if labels < 2 || len(last) < 2 {
		return false
	}
	if bytes.HasPrefix(last, []byte("xn--")) || bytes.HasPrefix(last, []byte("XN--")) {
		return true
	}
	for _, c := range last {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c >= 0x80) {
			return false
		}
	}
	return true
}

// ValidDomain reports whether d has the shape of a domain name the
// address finder accepts (two or more labels, a top-level label of
// letters or an IDN).
func ValidDomain(d string) bool { return validDomain([]byte(d)) }
