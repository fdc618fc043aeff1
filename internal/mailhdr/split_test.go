package mailhdr

import (
	"bytes"
	"testing"
)

// joined writes the fields and the tail back one after the other.
func joined(h Header) []byte {
	var b []byte
	for _, f := range h.Fields {
		b = append(b, f.Raw...)
	}
	return append(b, h.Tail...)
}

// Split keeps every byte and cuts where a mail client would: at every line
// end including a bare CR, never at white space that continues a field,
// and never losing the fields around a line that is not one.
func TestSplit(t *testing.T) {
	cases := []struct {
		name  string
		block string
		want  []string // field names, "" for a line that is not a field
		tail  string
	}{
		{"plain", "From: a@example.com\r\nTo: b@example.com\r\n\r\n", []string{"From", "To"}, "\r\n"},
		{"folded", "To: a@example.com,\r\n\tb@example.com\r\nSubject: x\r\n\r\n", []string{"To", "Subject"}, "\r\n"},
		{"LF only", "To: a@example.com\nSubject: x\n\n", []string{"To", "Subject"}, "\n"},
		{"no separator", "To: a@example.com\r\nSubject: x", []string{"To", "Subject"}, ""},
		{"white space before the colon", "Subject :x\r\nTo\t: a@example.com\r\n\r\n", []string{"Subject", "To"}, "\r\n"},
		{"mbox From line", "From a@example.com  Mon Jan  1 00:00:00 2001\r\nTo: b@example.com\r\n\r\n", []string{"", "To"}, "\r\n"},
		{"stray line", "To: a@example.com\r\nthis line has no colon\r\nCc: b@example.org\r\n\r\n", []string{"To", "", "Cc"}, "\r\n"},
		{"first line starts with a space", " To: a@example.com\r\nSubject: x\r\n\r\n", []string{"", "Subject"}, "\r\n"},
		{"bare CR ends a line", "Subject: hello\rCc: Chen <chen@example.com>\r\n\r\n", []string{"Subject", "Cc"}, "\r\n"},
		{"bare CR before a continuation", "Subject: hello\r world\r\n\r\n", []string{"Subject"}, "\r\n"},
		{"an empty line only a bare CR makes does not end the block", "X: y\r\r\nCc: b@example.org\r\n\r\n", []string{"X", "Cc"}, "\r\n"},
		{"white-space-only continuation", "Subject: a\r\n   \r\n b\r\n\r\n", []string{"Subject"}, "\r\n"},
		{"empty", "", nil, ""},
		{"only the separator", "\r\n", nil, "\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := Split([]byte(c.block))
			if !bytes.Equal(joined(h), []byte(c.block)) {
				t.Fatalf("fields and tail are %q, not the block %q", joined(h), c.block)
			}
			var got []string
			for _, f := range h.Fields {
				got = append(got, f.Name)
			}
			if len(got) != len(c.want) {
				t.Fatalf("fields %q, want %q", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("fields %q, want %q", got, c.want)
				}
			}
			if string(h.Tail) != c.tail {
				t.Errorf("tail %q, want %q", h.Tail, c.tail)
			}
		})
	}
}

func TestFieldBody(t *testing.T) {
	for raw, want := range map[string]string{
		"Subject: =?utf-8?q?a?=\r\n  b\r\n": "=?utf-8?q?a?= b",
		"Subject :  x  \r\n":                "x",
		"To: a,\r\n\tb\r\n":                 "a, b",
		"From x@y Mon\r\n":                  "From x@y Mon",
	} {
		if got := Split([]byte(raw)).Fields[0].Body(); got != want {
			t.Errorf("%q: body %q, want %q", raw, got, want)
		}
	}
}

// FuzzSplit: whatever the block, the fields and the tail are the block,
// every field ends at a line end (or the block's end), and reading it never
// fails.
func FuzzSplit(f *testing.F) {
	f.Add([]byte("From x\r\n To: a@example.com\r\nSubject: h\rCc: b@example.org\r\nX: y\r\r\n\r\n"))
	f.Add([]byte("a\r\r\r\n\n\r \t:\r\n"))
	f.Fuzz(func(t *testing.T, block []byte) {
		h := Split(block)
		if !bytes.Equal(joined(h), block) {
			t.Fatal("bytes lost or added")
		}
		for i, fl := range h.Fields {
			if len(fl.Raw) == 0 {
				t.Fatal("empty field")
			}
			last := fl.Raw[len(fl.Raw)-1]
			if i < len(h.Fields)-1 && last != '\n' && last != '\r' {
				t.Fatalf("field %q does not end at a line end", fl.Raw)
			}
		}
		r := Read(block)
		for _, who := range r.People("s@example.com", []string{"a@example.com"}).List {
			if who.Key == "" {
				t.Fatalf("a person without a key: %+v", who)
			}
		}
	})
}
