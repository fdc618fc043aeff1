package content

import (
	"bytes"
	"testing"
)

// trimWordBytes is bytes.Trim(w, wordEdges) made fast: it must agree with it.
func TestTrimWordBytesAgreesWithTrim(t *testing.T) {
	cases := []string{"", "anna", "'anna'", "anna’s", "’anna’", "--x--", "...", "’", "a.b", "\xe2\x80", "x\xe2\x80", "\xe2\x80\x99\xe2\x80\x99a\xe2", "é’.", "'’-.a-.’'"}
	for _, c := range cases {
		if got, want := trimWordBytes([]byte(c)), bytes.Trim([]byte(c), wordEdges); !bytes.Equal(got, want) {
			t.Errorf("trimWordBytes(%q) = %q, want %q", c, got, want)
		}
	}
}

func FuzzTrimWordBytes(f *testing.F) {
	for _, s := range []string{"'anna’", "’’x", "a\xe2\x80"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := trimWordBytes(b), bytes.Trim(b, wordEdges); !bytes.Equal(got, want) {
			t.Fatalf("trimWordBytes(%q) = %q, want %q", b, got, want)
		}
	})
}
