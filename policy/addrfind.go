package policy

import (
	"bytes"
	"hash/maphash"
	"io"
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
	chunkSize    = 32 << 10
)

// addrSet counts distinct addresses by a 64-bit hash of their lowercased
// form: no allocation per address and 8 bytes per entry, so even a full set
// stays small. A collision needs ~2^32 addresses to become likely.
type addrSet struct {
	seen      map[uint64]struct{}
	seed      maphash.Seed
	limit     int
	truncated bool
	lower     []byte
	onAdd     func(addr []byte) // tests only
}

func newAddrSet(limit int) *addrSet {
	return &addrSet{seen: map[uint64]struct{}{}, seed: maphash.MakeSeed(), limit: limit}
}

// add records addr; it reports false once the set is full.
func (s *addrSet) add(addr []byte) bool {
	s.lower = s.lower[:0]
	for _, c := range addr {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		s.lower = append(s.lower, c)
	}
	h := maphash.Bytes(s.seed, s.lower)
	if _, ok := s.seen[h]; ok {
		return true
	}
	if len(s.seen) >= s.limit {
		s.truncated = true
		return false
	}
	s.seen[h] = struct{}{}
	if s.onAdd != nil {
		s.onAdd(s.lower)
	}
	return true
}

// adder takes each address found; false stops the search.
type adder interface{ add(addr []byte) bool }

// findAll adds every address in r to set, reading in chunks and carrying
// enough of each chunk's end over to the next that an address split across
// a chunk boundary is still seen whole. Work is linear in the input: each
// "@" looks at most maxLocalLen bytes back and maxDomainLen bytes ahead.
// It returns errSetFull once the set is full.
func findAll(r io.Reader, set adder, buf []byte) error {
	buf = buf[:0]
	start := 0 // first byte whose "@" has not been examined
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		done := err != nil
		limit := len(buf)
		if !done {
			limit = max(start, len(buf)-maxDomainLen-1)
		}
		for i := start; i < limit; {
			j := bytes.IndexByte(buf[i:limit], '@')
			if j < 0 {
				break
			}
			at := i + j
			if a := matchAt(buf, at); a != nil && !set.add(a) {
				return errSetFull
			}
			i = at + 1
		}
		start = limit
		if done {
			if err == io.EOF {
				return nil
			}
			return err
		}
		// Keep the unexamined tail and the local part that may precede it.
		keep := max(0, start-maxLocalLen-1)
		copy(buf, buf[keep:])
		buf = buf[:len(buf)-keep]
		start -= keep
		if len(buf) == cap(buf) { // cannot happen with chunkSize > carry; be safe
			buf, start = buf[:0], 0
		}
	}
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
var localByte, domainByte [256]bool

func init() {
	for c := 0; c < 256; c++ {
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c >= 0x80
		localByte[c] = alnum || strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", byte(c)) >= 0
		domainByte[c] = alnum || c == '-' || c == '.'
	}
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
