package mailhdr

import (
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

// nameIndex finds known names, as word sequences, in text.
type nameIndex struct {
	byFirst map[string][]nameEntry
}

type nameEntry struct {
	words []string
	who   int
}

func (x *nameIndex) add(key string, who int) {
	if key == "" {
		return
	}
	if x.byFirst == nil {
		x.byFirst = map[string][]nameEntry{}
	}
	w := strings.Split(key, " ")
	for _, e := range x.byFirst[w[0]] {
		if e.who == who && len(e.words) == len(w) && strings.Join(e.words, " ") == key {
			return
		}
	}
	x.byFirst[w[0]] = append(x.byFirst[w[0]], nameEntry{w, who})
}

// find calls hit for every entry whose words occur in a row in text's words.
func (x *nameIndex) find(text []string, hit func(who int, key string)) {
	if len(x.byFirst) == 0 {
		return
	}
	for i, w := range text {
		for _, e := range x.byFirst[w] {
			if i+len(e.words) > len(text) {
				continue
			}
			match := true
			for j := 1; j < len(e.words); j++ {
				if text[i+j] != e.words[j] {
					match = false
					break
				}
			}
			if match {
				hit(e.who, strings.Join(e.words, " "))
			}
		}
	}
}
