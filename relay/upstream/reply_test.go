package upstream

import (
	"bufio"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

func TestReadReply(t *testing.T) {
	long := strings.Repeat("x", readBufSize)
	many := strings.Repeat("250-x\r\n", maxReplyLines) + "250 x\r\n"
	big := strings.Repeat("250-"+strings.Repeat("y", 1000)+"\r\n", 70) + "250 y\r\n"
	for _, tc := range []struct {
		name, in string
		code     int
		text     string
		bad      bool
	}{
		{name: "one line", in: "250 2.1.0 Ok\r\n", code: 250, text: "2.1.0 Ok"},
		{name: "bare lf", in: "250 Ok\n", code: 250, text: "Ok"},
		{name: "code only", in: "354\r\n", code: 354, text: ""},
		{name: "code and space", in: "220 \r\n", code: 220, text: ""},
		{name: "multi", in: "250-mx.example\r\n250-PIPELINING\r\n250 DSN\r\n", code: 250, text: "mx.example\nPIPELINING\nDSN"},
		{name: "empty continuation", in: "250-\r\n250 x\r\n", code: 250, text: "\nx"},
		{name: "code changes", in: "250-a\r\n251 b\r\n", bad: true},
		{name: "not digits", in: "2x0 Ok\r\n", bad: true},
		{name: "class 1", in: "150 Ok\r\n", bad: true},
		{name: "class 6", in: "650 Ok\r\n", bad: true},
		{name: "bad separator", in: "250:Ok\r\n", bad: true},
		{name: "short", in: "25\r\n", bad: true},
		{name: "eof mid reply", in: "250-a\r\n", bad: true},
		{name: "no line end", in: "250 Ok", bad: true},
		{name: "line too long", in: "250 " + long + "\r\n", bad: true},
		{name: "too many lines", in: many, bad: true},
		{name: "too many bytes", in: big, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := bufio.NewReaderSize(strings.NewReader(tc.in), readBufSize)
			code, text, err := readReply(r, nil)
			if tc.bad {
				if err == nil {
					t.Fatalf("got %d %q, want an error", code, text)
				}
				return
			}
			if err != nil || code != tc.code || string(text) != tc.text {
				t.Fatalf("got %d %q %v, want %d %q", code, text, err, tc.code, tc.text)
			}
		})
	}
}

func TestReplyError(t *testing.T) {
	for _, tc := range []struct {
		text string
		enh  smtp.EnhancedCode
		msg  string
	}{
		{"5.1.1 No such user", smtp.EnhancedCode{5, 1, 1}, "No such user"},
		{"4.7.0 a\n4.7.0 b", smtp.EnhancedCode{4, 7, 0}, "a\nb"},
		{"5.1.1 a\nb", smtp.EnhancedCode{5, 1, 1}, "a\nb"},
		{"2.0.0 Ok", smtp.EnhancedCode{2, 0, 0}, "Ok"},
		{"5.100.999 x", smtp.EnhancedCode{5, 100, 999}, "x"},
		{"No code here", smtp.EnhancedCode{}, "No code here"},
		{"3.1.1 wrong class", smtp.EnhancedCode{}, "3.1.1 wrong class"},
		{"5.1 too short", smtp.EnhancedCode{}, "5.1 too short"},
		{"5.1.1.1 too long", smtp.EnhancedCode{}, "5.1.1.1 too long"},
		{"5.1.1", smtp.EnhancedCode{}, "5.1.1"},
		{"55.1.1 x", smtp.EnhancedCode{}, "55.1.1 x"},
		{"5.1000.1 x", smtp.EnhancedCode{}, "5.1000.1 x"},
	} {
		se := replyError(550, []byte(tc.text))
		if se.Code != 550 || se.EnhancedCode != tc.enh || se.Message != tc.msg {
			t.Errorf("%q: got %d %v %q, want %v %q", tc.text, se.Code, se.EnhancedCode, se.Message, tc.enh, tc.msg)
		}
	}
}

func TestXtext(t *testing.T) {
	for _, tc := range []struct{ in, xtext, utf8 string }{
		{"user@example.com", "user@example.com", "user@example.com"},
		{"a+b=c@example.com", "a+2Bb+3Dc@example.com", `a\x{2B}b\x{3D}c@example.com`},
		{"sp ace\\", "sp+20ace\\", `sp\x{20}ace\x{5C}`},
		{"ü@example.com", "+C3+BC@example.com", `\x{FC}@example.com`},
		{"δ€😀", "+CE+B4+E2+82+AC+F0+9F+98+80", `\x{3B4}\x{20AC}\x{1F600}`},
		{"\x01\x7f", "+01+7F", `\x{01}\x{7F}`},
	} {
		if got := string(appendXtext(nil, tc.in)); got != tc.xtext {
			t.Errorf("xtext(%q) = %q, want %q", tc.in, got, tc.xtext)
		}
		if got := string(appendUTF8AddrXtext(nil, tc.in)); got != tc.utf8 {
			t.Errorf("utf-8-addr-xtext(%q) = %q, want %q", tc.in, got, tc.utf8)
		}
	}
}
