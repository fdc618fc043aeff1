package content

import (
	"bytes"
	"hash/maphash"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Watch is the list of the message's recipients (envelope and visible)
// whose appearance in the body is looked for: a copy of an exploded or
// bcc'd message cannot hide a recipient the body shows.
type Watch struct {
	// Keys are the watched addresses, normalised as Key normalises.
	Keys []string
	// Names are the display names given for each entry, by index.
	Names [][]string
	// Key normalises an address found in the body the way Keys are; nil
	// compares lowercased.
	Key func(string) string
}

// watcher finds the watched recipients in what the scan reads.
//
// Names are matched as a mail client shows them: case-insensitively,
// with any run of spaces, punctuation or markup between words counting
// as one break, and only at word boundaries. A name qualifies only if it
// has at least two words or at least six letters, and is not a common
// word of mail ("Customer Service", "Newsletter"), so that "Ann" alone
// does not match every Ann in a newsletter.
type watcher struct {
	byKey map[string][]int
	key   func(string) string
	names map[uint64][]int // hash of the lowercased words joined by one space
	last  map[string]bool  // the last word of some name
	// lastSeen is a cheap filter in front of last: a word can end a name
	// only if some last word has its length, first byte and final byte.
	// Most words of a body fail it, and skip the map lookup (the largest
	// cost of a 10 MiB body's scan after the word loop itself).
	lastSeen lastFilter
	maxLen   int // most words in a name
	seed     maphash.Seed
	words    [][]byte // the last maxLen words, oldest first
	cur      []byte   // the word being read
	byAddr   map[int]bool
	byName   map[int]bool
	joined   []byte
	pending  []byte // an incomplete UTF-8 sequence at the end of a write
}

func newWatcher(w Watch) *watcher {
	x := &watcher{byKey: map[string][]int{}, key: w.Key, names: map[uint64][]int{},
		last: map[string]bool{}, seed: maphash.MakeSeed()} // byAddr and byName are made when a recipient is found
	if x.key == nil {
		x.key = strings.ToLower
	}
	for i, k := range w.Keys {
		if k != "" {
			x.byKey[k] = append(x.byKey[k], i)
		}
	}
	for i := range w.Names {
		if i >= len(w.Keys) {
			break
		}
		for _, n := range w.Names[i] {
			ws := nameWords(n)
			if !qualifies(ws) {
				continue
			}
			h := maphash.String(x.seed, strings.Join(ws, " "))
			if !containsInt(x.names[h], i) {
				x.names[h] = append(x.names[h], i)
			}
			x.last[ws[len(ws)-1]] = true
			x.lastSeen.add(ws[len(ws)-1])
			x.maxLen = max(x.maxLen, len(ws))
		}
	}
	return x
}

func containsInt(l []int, v int) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// commonNames are names that say nothing about a person.
var commonNames = map[string]bool{
	"customer service": true, "customer support": true, "newsletter": true, "support": true,
	"service": true, "customer": true, "customers": true, "marketing": true, "information": true,
	"billing": true, "accounts": true, "undisclosed recipients": true, "undisclosed-recipients": true,
	"recipient": true, "recipients": true, "the team": true, "sales team": true, "support team": true,
	"no reply": true, "noreply": true, "do not reply": true, "mailer daemon": true, "postmaster": true,
	"webmaster": true, "contact": true, "contacts": true, "office": true, "reception": true,
}

// qualifies applies the name rule above.
func qualifies(ws []string) bool {
	if len(ws) == 0 || commonNames[strings.Join(ws, " ")] {
		return false
	}
	if len(ws) >= 2 {
		return true
	}
	return utf8.RuneCountInString(ws[0]) >= 6
}

// nameWords splits a display name into lowercased words as the text
// matcher does. A name holding an address is left to the address match.
func nameWords(n string) []string {
	if strings.Contains(n, "@") {
		return nil
	}
	var out []string
	for _, f := range strings.FieldsFunc(n, func(r rune) bool { return !isWordRune(r) }) {
		if f = trimWord(f); f != "" {
			out = append(out, strings.ToLower(f))
		}
	}
	return out
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || r == '\'' || r == '’' || r == '-' || r == '.'
}

// wordEdges are the characters a word may carry at its ends that are not
// part of it (isWordRune lets them inside a word).
const wordEdges = "'’-."

func trimWord(w string) string { return strings.Trim(w, wordEdges) }

// address notes an address found in the body (lowercased, new to the
// message).
func (x *watcher) address(a []byte) {
	if x == nil || len(x.byKey) == 0 {
		return
	}
	for _, i := range x.byKey[x.key(string(a))] {
		if x.byAddr == nil {
			x.byAddr = map[int]bool{}
		}
		x.byAddr[i] = true
	}
}

// write feeds text to the name matcher; words continue across writes.
func (x *watcher) write(b []byte) {
	if x == nil || x.maxLen == 0 {
		return
	}
	if len(x.pending) > 0 { // a rune split across writes: rare, so a copy is fine
		b = append(x.pending, b...)
		x.pending = nil
	}
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if !asciiWordByte[c] {
				x.endWord()
				i++
				continue
			}
			// The rest of an ASCII word at once: most text is ASCII.
			j := i + 1
			for j < len(b) && asciiWordByte[b[j]] {
				j++
			}
			for _, c := range b[i:j] {
				x.cur = append(x.cur, lowerASCII(c))
			}
			i = j
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 && !utf8.FullRune(b[i:]) {
			x.pending = append([]byte(nil), b[i:]...)
			return
		}
		if isWordRune(r) {
			x.cur = utf8.AppendRune(x.cur, unicode.ToLower(r))
		} else {
			x.endWord()
		}
		i += size
	}
}

// brk ends the current word: markup and cell boundaries separate words.
func (x *watcher) brk() {
	if x != nil && x.maxLen > 0 {
		x.endWord()
	}
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func (x *watcher) endWord() {
	if len(x.cur) == 0 { // a run of spaces or punctuation
		return
	}
	w := trimWordBytes(x.cur)
	if len(w) == 0 || len(w) > 64 {
		x.cur = x.cur[:0]
		return
	}
	// Keep the last maxLen words, reusing their buffers.
	var slot []byte
	if len(x.words) == x.maxLen {
		slot = x.words[0][:0]
		copy(x.words, x.words[1:])
		x.words = x.words[:len(x.words)-1]
	}
	x.words = append(x.words, append(slot, w...))
	x.cur = x.cur[:0]
	if !x.lastSeen.may(w) || !x.last[string(w)] {
		return
	}
	for n := 1; n <= len(x.words); n++ {
		x.joined = x.joined[:0]
		for _, ww := range x.words[len(x.words)-n:] {
			if len(x.joined) > 0 {
				x.joined = append(x.joined, ' ')
			}
			x.joined = append(x.joined, ww...)
		}
		for _, i := range x.names[maphash.Bytes(x.seed, x.joined)] {
			if x.byName == nil {
				x.byName = map[int]bool{}
			}
			x.byName[i] = true
		}
	}
}

// apostrophe is U+2019 in UTF-8, the typographic apostrophe.
var apostrophe = []byte("’")

// trimWordBytes is trimWord for bytes: it strips what
// bytes.Trim(w, wordEdges) strips, without Trim's per-rune path. The
// cutset's ’ is not ASCII, which made Trim decode every byte of every
// word: a third of the CPU a 10 MiB body's scan took.
func trimWordBytes(w []byte) []byte {
	if len(w) > 0 && isAlnum(w[0]) && isAlnum(w[len(w)-1]) { // nothing to trim
		return w
	}
	for len(w) > 0 {
		if c := w[0]; c == '\'' || c == '-' || c == '.' {
			w = w[1:]
		} else if bytes.HasPrefix(w, apostrophe) {
			w = w[len(apostrophe):]
		} else {
			break
		}
	}
	for len(w) > 0 {
		if c := w[len(w)-1]; c == '\'' || c == '-' || c == '.' {
			w = w[:len(w)-1]
		} else if bytes.HasSuffix(w, apostrophe) {
			w = w[:len(w)-len(apostrophe)]
		} else {
			break
		}
	}
	return w
}

// asciiWordByte holds the ASCII bytes isWordRune accepts.
var asciiWordByte = func() (t [256]bool) {
	for c := 0; c < utf8.RuneSelf; c++ {
		t[c] = isAlnum(byte(c)) || c == '\'' || c == '-' || c == '.'
	}
	return t
}()

// lastFilter answers "may w be one of the words added?" with no false
// negatives: it keeps which lengths (up to 64 bytes, the longest word the
// watcher matches), first bytes and final bytes the added words have.
type lastFilter struct {
	lens         uint64
	first, final [4]uint64
}

func (f *lastFilter) add(w string) {
	if len(w) == 0 || len(w) > 64 {
		return
	}
	f.lens |= 1 << (len(w) - 1)
	f.first[w[0]>>6] |= 1 << (w[0] & 63)
	f.final[w[len(w)-1]>>6] |= 1 << (w[len(w)-1] & 63)
}

func (f *lastFilter) may(w []byte) bool {
	if len(w) == 0 || len(w) > 64 {
		return false
	}
	a, z := w[0], w[len(w)-1]
	return f.lens&(1<<(len(w)-1)) != 0 && f.first[a>>6]&(1<<(a&63)) != 0 && f.final[z>>6]&(1<<(z&63)) != 0
}
