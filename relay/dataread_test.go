package relay

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

// The header block handed to the policy must contain every To:/Cc: field,
// even below a malformed line: stopping early would hide recipients.
func TestReadHeaderBlock(t *testing.T) {
	cases := []struct {
		name, msg, want string
		err             error
	}{
		{"ordinary", "From: a@example.com\r\nTo: b@example.net\r\n\r\nbody\r\n", "From: a@example.com\r\nTo: b@example.net\r\n\r\n", nil},
		{"folded", "To: a@example.com,\r\n b@example.net\r\n\r\nx", "To: a@example.com,\r\n b@example.net\r\n\r\n", nil},
		{"obsolete space before colon", "Subject: x\r\nTo : b@example.net\r\n\r\nx", "Subject: x\r\nTo : b@example.net\r\n\r\n", nil},
		{"mbox From line first", "From a@example.com Sat Jan  3 01:05:34 1996\r\nTo: b@example.net\r\n\r\nx", "From a@example.com Sat Jan  3 01:05:34 1996\r\nTo: b@example.net\r\n\r\n", nil},
		{"no body", "Subject: only a header\r\n", "Subject: only a header\r\n", nil},
		{"bare LF", "To: b@example.net\n\nbody", "To: b@example.net\n\n", nil},
		{"too big", "X: " + strings.Repeat("y", 200) + "\r\n\r\n", "", errHeaderTooBig},
		// Longer than the reader's buffer (16 bytes here): read on.
		{"a line longer than the buffer", "X-Long: " + strings.Repeat("y", 60) + "\r\nTo: b@example.net\r\n\r\nx", "X-Long: " + strings.Repeat("y", 60) + "\r\nTo: b@example.net\r\n\r\n", nil},
		{"a blank line longer than the buffer is not one", "A: b\r\n" + strings.Repeat(" ", 40) + "\r\nTo: c@example.net\r\n\r\n", "A: b\r\n" + strings.Repeat(" ", 40) + "\r\nTo: c@example.net\r\n\r\n", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readHeaderBlock(bufio.NewReaderSize(strings.NewReader(tc.msg), 16), 128)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if string(got) != tc.want {
				t.Errorf("header block = %q, want %q", got, tc.want)
			}
		})
	}
}
