package mailhdr

import (
	"slices"
	"testing"
	"unicode/utf8"
)

// Decode decodes encoded words as clients show them, malformed and split
// ones included.
func TestDecode(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                               "plain",
		"=?utf-8?q?Gr=C3=BC=C3=9Fe?= from us": "Grüße from us",
		"=?UTF-8?B?w7w=?= =?UTF-8?Q?a?=":      "üa",   // white space between words goes
		"=?utf-8?b?w6k=?=  x":                 "é  x", // but not before text
		"=?utf-8?b?4oKs?=":                    "€",    // B
		"=?utf-8?b?4g==?= =?utf-8?b?gg==?= =?utf-8?b?rA==?=": "€",                // one character split over three words
		"=?iso-8859-1?q?J=FCrgen?=":                          "Jürgen",           // a charset go-message knows
		"=?utf-8?q?hello world?=":                            "hello world",      // spaces inside: malformed, still decoded
		"abc=?utf-8?q?d?=e":                                  "abcde",            // inside a word
		"=?utf-8?b?w7w?=":                                    "ü",                // missing padding
		"=?utf-8?q?a=3?=":                                    "a=3",              // a stray "="
		"=?x-unknown?q?abc?=":                                "abc",              // unknown charset: the bytes
		"=?utf-8*en?q?lang?=":                                "lang",             // RFC 2231 language
		"=?utf-8?x?nope?=":                                   "=?utf-8?x?nope?=", // not an encoding: as it is
		"=?utf-8?q?unterminated":                             "=?utf-8?q?unterminated",
		"Andr\xe9":                                           "André",          // raw 8-bit: Latin-1 when not UTF-8
		"=?utf-8?b?Wm/DqQ0KQ2M6IEJvYg==?=":                   "Zoé\r\nCc: Bob", // line breaks are data
	} {
		if got := Decode(in); got != want {
			t.Errorf("Decode(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("=?utf-8?b?4o?= =?utf-8?b?KC?= x =?iso-8859-1?q?=FC?=")
	f.Fuzz(func(t *testing.T, s string) {
		if d := Decode(s); !utf8.ValidString(d) {
			t.Fatalf("Decode(%q) = %q: not UTF-8", s, d)
		}
	})
}

// Find sees what a reader takes for an address, in any text.
func TestFind(t *testing.T) {
	for in, want := range map[string][]string{
		"write to a@example.com or B@Example.org.":                              {"a@example.com", "B@Example.org"},
		"<mailto:unsub@brand.example?subject=bob%40b.example,chen%40c.example>": {"unsub@brand.example", "bob@b.example", "chen@c.example"},
		"user@localhost and @example.com and x@y":                               nil,
		"...jane@example.com, (john@[192.0.2.1])":                               {"jane@example.com", "john@[192.0.2.1]"},
		"zoe@bücher.example":                                                    {"zoe@bücher.example"},
	} {
		var got []string
		for _, f := range Find(in) {
			got = append(got, f.Addr)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Find(%q) = %q, want %q", in, got, want)
		}
	}
	if f := Find("<mailto:list@x.example>"); len(f) != 1 || !f[0].Mailto {
		t.Errorf("a mailto: target is not marked: %+v", f)
	}
	if f := Find("?subject=bob@b.example"); len(f) != 1 || f[0].Addr != "bob@b.example" || f[0].Also != "?subject=bob@b.example" {
		t.Errorf("a query address: %+v", f)
	}
}

func TestKey(t *testing.T) {
	for a, want := range map[string]string{
		"Jane.Doe@Example.COM":       "jane.doe@example.com",
		`"quoted"@example.net`:       "quoted@example.net",
		"jörg@XN--BCHER-KVA.example": "jörg@bücher.example",
		"jörg@Bücher.example.":       "jörg@bücher.example",
		"<ann@example.com>":          "ann@example.com",
		"baz":                        "baz",
	} {
		if got := Key(a); got != want {
			t.Errorf("Key(%q) = %q, want %q", a, got, want)
		}
	}
}
