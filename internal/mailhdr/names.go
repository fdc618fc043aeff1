package mailhdr

import (
	"hash/maphash"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// words splits decoded text into the words a reader sees: runs of letters,
// digits and combining marks, lowercased, in Unicode NFC (so "Zoé" written
// with a combining accent is the same word).
func words(s string) []string {
	if !isASCII(s) {
		s = strings.ToLower(norm.NFC.String(s))
		return strings.FieldsFunc(s, func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r)
		})
	}
	// ASCII, most of what headers hold: no normalization to do.
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !('a' <= r && r <= 'z' || '0' <= r && r <= '9')
	})
}

// NameKey is the form in which names are compared: their words, lowercased,
// joined by single spaces ("" for a name without a word).
func NameKey(name string) string { return strings.Join(words(name), " ") }

// Telling reports whether a name (as NameKey gives it) says who someone is
// when it shows up in free text: two words or more, or one of six letters or
// more that is not a role word. "Ann" alone would match every "Ann" in a
// subject line; "Customer" names a role, not a person.
func Telling(key string) bool {
	if key == "" {
		return false
	}
	if strings.Contains(key, " ") {
		return true
	}
	return len([]rune(key)) >= 6 && !roleWords[key]
}

// roleWords are single words that mailings use as display names for
// anyone: they say nothing about who a recipient is.
var roleWords = map[string]bool{
	"customer": true, "customers": true, "support": true, "service": true, "marketing": true,
	"newsletter": true, "information": true, "contact": true, "member": true, "members": true,
	"subscriber": true, "recipient": true, "recipients": true, "undisclosed": true,
	"client": true, "friend": true, "friends": true, "everyone": true, "office": true,
	"kunde": true, "kundin": true, "kunden": true, "abonnent": true, "mitglied": true,
}

// nameIndex finds known names, as word sequences, in text. Names are
// looked up by hashes of their word prefixes, so that finding them costs
// about the text's length times the longest name that matches there, and
// not the number of names that share a first word: a mailing's 500 (or,
// in a 1 MiB header, 20,000) "Customer N" names all start with one word,
// and a list of names per first word made that quadratic.
type nameIndex struct {
	prefixes map[uint64]struct{}    // every word prefix of every name
	names    map[uint64][]nameEntry // whole names, by the same hash
}

// nameSeed seeds the name hashes: one per process (immutable), so that two
// readings of one header are equal values.
var nameSeed = maphash.MakeSeed()

type nameEntry struct {
	key string // words joined by single spaces (NameKey)
	who int
}

// hashWord extends a prefix hash by one word.
func hashWord(h *maphash.Hash, w string) uint64 {
	h.WriteString(w)
	h.WriteByte(' ')
	return h.Sum64()
}

func (x *nameIndex) add(key string, who int) {
	if key == "" {
		return
	}
	if x.names == nil {
		x.prefixes, x.names = map[uint64]struct{}{}, map[uint64][]nameEntry{}
	}
	var h maphash.Hash
	h.SetSeed(nameSeed)
	var sum uint64
	for w := range strings.SplitSeq(key, " ") {
		sum = hashWord(&h, w)
		x.prefixes[sum] = struct{}{}
	}
	es := x.names[sum]
	// People add their names in turn, so a repeat is the last entry.
	for i := len(es) - 1; i >= 0 && es[i].who == who; i-- {
		if es[i].key == key {
			return
		}
	}
	x.names[sum] = append(es, nameEntry{key, who})
}

// find calls hit for every entry whose words occur in a row in text's
// words (once per entry, however often the name occurs).
func (x *nameIndex) find(text []string, hit func(who int, key string)) {
	if len(x.names) == 0 {
		return
	}
	var done map[uint64]bool
	var h maphash.Hash
	h.SetSeed(nameSeed)
	for i := range text {
		h.Reset()
		for j := i; j < len(text); j++ {
			sum := hashWord(&h, text[j])
			if _, ok := x.prefixes[sum]; !ok {
				break
			}
			es, ok := x.names[sum]
			if !ok || done[sum] {
				continue
			}
			if done == nil {
				done = map[uint64]bool{}
			}
			done[sum] = true
			for _, e := range es {
				if sameWords(e.key, text[i:j+1]) {
					hit(e.who, e.key)
				}
			}
		}
	}
}

// sameWords reports whether key is ws joined by single spaces (a hash
// match is checked, never trusted).
func sameWords(key string, ws []string) bool {
	for k, w := range ws {
		if k > 0 {
			if key == "" || key[0] != ' ' {
				return false
			}
			key = key[1:]
		}
		if !strings.HasPrefix(key, w) {
			return false
		}
		key = key[len(w):]
	}
	return key == ""
}
