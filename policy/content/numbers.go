package content

import (
	"hash/maphash"

	"github.com/nyaruka/phonenumbers"
)

// Phone numbers are found in two steps. A hand-written pass picks out
// candidates (libphonenumber's Go port has no matcher: its
// PhoneNumberMatcher is an unimplemented stub); each candidate is then
// parsed and validated by github.com/nyaruka/phonenumbers against the
// numbering plan of its country, or of the default region when it has no
// "+". The candidate rules keep look-alikes out before they cost a parse:
// identifiers (SKU-123, #100234), long plain digit runs (EANs, tracking
// numbers), dates.

const (
	maxRun      = 40 // bytes of one candidate run
	minPhoneLen = 7  // digits
	maxPhoneLen = 15 // E.164
)

// numberFinder holds the scratch space of the number finders.
type numberFinder struct {
	region string
	digits []byte
	iban   []byte
	pn     phonenumbers.PhoneNumber
	// checked remembers candidates already parsed (by a hash of the run)
	// and whether they were phones: libphonenumber's validation costs
	// microseconds and allocates, and the same number (a shop's own, in
	// every signature and footer) recurs.
	checked map[uint64]phoneCheck
	seed    maphash.Seed
	// notPhones is shared by the messages of one policy (may be nil).
	notPhones *NotPhones
}

// phoneCheck is a remembered candidate: not a phone, or its E.164 form
// and masked sample.
type phoneCheck struct {
	valid        bool
	e164, masked string
}

// maxChecked bounds the candidates remembered.
const maxChecked = 50_000

// find counts phones, cards and IBANs in b and returns how many it found.
func (f *numberFinder) find(b []byte, t *tally) int {
	n := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if i > 0 && wordByte[b[i-1]] {
			continue // inside a word or number seen already
		}
		switch {
		case 'A' <= c && c <= 'Z':
			if i+3 < len(b) && 'A' <= b[i+1] && b[i+1] <= 'Z' && isDigit(b[i+2]) && isDigit(b[i+3]) {
				if iban, span := matchIBAN(b[i:min(len(b), i+50)], f.iban[:0]); span > 0 {
					f.iban = iban
					t.found(IBAN, iban, func() string { return maskIBAN(iban) })
					n++
					i += span - 1
				}
			}
		case isDigit(c) || c == '+' || c == '(':
			if i > 0 && (b[i-1] == '-' || b[i-1] == '#' || b[i-1] == '/' || b[i-1] == '_' || b[i-1] == '.' || b[i-1] == ',') {
				continue // the tail of an identifier, a price or a date
			}
			end := runEnd(b, i)
			if end > i {
				if f.numberOrPrefix(b[i:end], t) {
					n++
				}
				i = end - 1
			}
		}
	}
	return n
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// wordByte marks the bytes of a word or number (isAlnum, and every byte
// of a UTF-8 sequence): find looks it up for every byte of the text.
var wordByte = func() (t [256]bool) {
	for c := range 256 {
		t[c] = isAlnum(byte(c)) || c >= 0x80
	}
	return t
}()

// runEnd finds the end of a candidate run starting at b[i]: digits with
// single separators (space, -, ., parentheses), ending on a digit.
func runEnd(b []byte, i int) int {
	end, lastDigit := i, -1
	prevSep := false
	for j := i; j < len(b) && j-i < maxRun; j++ {
		c := b[j]
		switch {
		case isDigit(c):
			lastDigit, prevSep = j, false
		case c == '+' && j == i:
		case c == '(' || c == ')':
		case c == ' ' || c == '-' || c == '.':
			if prevSep {
				return lastDigit + 1
			}
			prevSep = true
		default:
			if !prevSep && (isAlnum(c) || c >= 0x80) {
				return i // glued to a word: an identifier
			}
			return lastDigit + 1
		}
		end = j
	}
	if end-i+1 >= maxRun && end+1 < len(b) && isDigit(b[end+1]) {
		return i // a longer run of digits than any number we look for
	}
	return lastDigit + 1
}

// numberOrPrefix classifies a run; when it is nothing, shorter runs
// ending at a separator are tried too (two groups at most), because in
// text a number is often followed by another ("+44 20 7946 0000 12 High
// Street").
func (f *numberFinder) numberOrPrefix(run []byte, t *tally) bool {
	for try := 0; try < 3; try++ {
		if f.number(run, t) {
			return true
		}
		j := len(run) - 1
		for j > 0 && isDigit(run[j]) {
			j--
		}
		for j > 0 && !isDigit(run[j]) {
			j--
		}
		if j <= 0 {
			return false
		}
		run = run[:j+1]
	}
	return false
}

// number classifies one candidate run.
func (f *numberFinder) number(run []byte, t *tally) bool {
	f.digits = f.digits[:0]
	plus, paren, dot, sep := false, false, false, false
	for _, c := range run {
		switch {
		case isDigit(c):
			f.digits = append(f.digits, c)
		case c == '+':
			plus = true
		case c == '(' || c == ')':
			paren = true
		case c == '.':
			dot, sep = true, true
		default:
			sep = true
		}
	}
	d := f.digits
	if !plus && !paren && !dot && len(d) >= 12 && isCard(d) {
		t.found(Card, d, func() string { return maskCard(d) })
		return true
	}
	if len(d) < minPhoneLen || len(d) > maxPhoneLen || dot && looksLikeDateOrVersion(run) {
		return false
	}
	if !plus && !sep && !paren && len(d) >= 12 {
		return false // EAN-13, UPC, tracking and order numbers
	}
	if looksLikeDateOrVersion(run) {
		return false
	}
	if f.checked == nil {
		f.checked, f.seed = map[uint64]phoneCheck{}, maphash.MakeSeed()
	}
	h := maphash.Bytes(f.seed, run)
	c, seen := f.checked[h]
	if !seen {
		if f.notPhones != nil && f.notPhones.has(f.region, run) {
			c = phoneCheck{}
		} else {
			c = f.check(run)
			if !c.valid && f.notPhones != nil {
				f.notPhones.add(f.region, run)
			}
		}
		if len(f.checked) < maxChecked {
			f.checked[h] = c
		}
	}
	if !c.valid {
		return false
	}
	t.found(Phone, []byte(c.e164), func() string { return c.masked })
	return true
}

// looksLikeDateOrVersion: 2026-12-03, 03.12.2026, 1.2.3.4 (groups of at
// most four digits separated by dots or hyphens, with a four-digit year
// at one end, or dotted groups of at most three digits).
func looksLikeDateOrVersion(run []byte) bool {
	var buf [maxRun/2 + 1]int // a run holds at most this many groups
	groups := buf[:0]
	cur, seps, dots := 0, 0, 0
	for _, c := range run {
		switch {
		case isDigit(c):
			cur++
		case c == '.' || c == '-' || c == '/':
			groups = append(groups, cur)
			cur = 0
			seps++
			if c == '.' {
				dots++
			}
		default:
			return false
		}
	}
	groups = append(groups, cur)
	if seps == 2 && len(groups) == 3 {
		g := groups
		if g[0] == 4 && g[1] <= 2 && g[2] <= 2 || g[2] == 4 && g[0] <= 2 && g[1] <= 2 {
			return true
		}
	}
	if dots == seps && dots >= 2 {
		for _, g := range groups {
			if g > 3 {
				return false
			}
		}
		return true
	}
	return false
}

// check parses and validates a candidate with libphonenumber.
func (f *numberFinder) check(run []byte) phoneCheck {
	if err := phonenumbers.ParseToNumber(string(run), f.region, &f.pn); err != nil {
		return phoneCheck{}
	}
	if !phonenumbers.IsPossibleNumber(&f.pn) || !phonenumbers.IsValidNumber(&f.pn) {
		return phoneCheck{}
	}
	return phoneCheck{valid: true, e164: phonenumbers.Format(&f.pn, phonenumbers.E164),
		masked: maskPhone(phonenumbers.Format(&f.pn, phonenumbers.INTERNATIONAL))}
}
