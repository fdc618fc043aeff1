package oneline

import "testing"

func TestASCII(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"451 4.3.0 try later", 100, "451 4.3.0 try later"},
		{"550 bad\r\n250 ok", 100, "550 bad  250 ok"},
		{"a\tb\x00c\x7fdé", 100, "a bcd"},
		{"0123456789", 4, "0123"},
	} {
		if got := ASCII(tc.in, tc.max); got != tc.want {
			t.Errorf("ASCII(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}
