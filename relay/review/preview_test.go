package review

import (
	"strings"
	"testing"
	"time"

	"github.com/bccguard/bccguard/relay/rewrite"
)

func TestPreview(t *testing.T) {
	long := strings.Repeat("é", MaxPreview) // 2 bytes each: twice the cap
	cases := []struct {
		name      string
		msg       string
		source    string
		text      string
		truncated bool
		note      bool
	}{
		{"plain", "Subject: x\r\n\r\nHello\r\n\r\n\r\n\r\nthere  \r\n", "text/plain", "Hello\n\nthere", false, false},
		{"no content type", "Subject: x\r\n\r\nHi", "text/plain", "Hi", false, false},
		{"quoted-printable latin1",
			"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 =\r\nnoir\r\n",
			"text/plain", "Café noir", false, false},
		{"control and bidi characters",
			"Content-Type: text/plain; charset=utf-8\r\n\r\nA\x1b[31mB\x07C\u202eD\u200bE\x00F\r\n",
			"text/plain", "A[31mBCDEF", false, false},
		{"invalid utf-8", "Content-Type: text/plain\r\n\r\nok\xff\xfe\r\n", "text/plain", "ok\uFFFD", false, false},
		{"truncated on a rune boundary", "Content-Type: text/plain; charset=utf-8\r\n\r\n" + long, "text/plain", long[:MaxPreview], true, false},
		{"html only",
			"Content-Type: text/html; charset=utf-8\r\n\r\n<html><head><title>T</title><style>p{}</style></head><body><p>Dear &amp; <b>valued</b>\r\n customer</p><script>alert(1)</script><div>Bye<br>now</div><img src=\"http://x/\" onerror=\"x()\"></body></html>",
			"text/html", "Dear & valued customer\n\nBye\nnow", false, false},
		{"alternative prefers plain",
			"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>HTML</p>\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nUGxhaW4gdGV4dA==\r\n--b--\r\n",
			"text/plain", "Plain text", false, false},
		{"attachment skipped",
			"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=list.csv\r\n\r\nann@one.example,bob@two.example\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee the list.\r\n--b--\r\n",
			"text/plain", "See the list.", false, false},
		{"no text part",
			"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: image/png\r\n\r\nPNG\r\n--b--\r\n",
			"", "", false, true},
		{"broken header", "this is not a header\r\n\r\nbody", "", "", false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := preview(strings.NewReader(c.msg))
			if p.Source != c.source || p.Text != c.text || p.Truncated != c.truncated || (p.Note != "") != c.note {
				t.Fatalf("preview = %+v\nwant source %q text %q truncated %v note %v", p, c.source, c.text, c.truncated, c.note)
			}
			if len(p.Text) > MaxPreview {
				t.Fatalf("preview of %d bytes", len(p.Text))
			}
		})
	}
}

// The review page reads the header with the policy's reader: a line that
// is not a field hides nothing after it, and shows as a field without a
// name.
func TestParseHeader(t *testing.T) {
	h := "Received: from a\r\n\tby b;\r\n\tdate\r\n" +
		"Subject: =?iso-8859-1?q?Caf=E9?= and\r\n more\r\n" +
		"X-Evil: a\x1bb\u202ec\r\n" +
		"To: ann@one.example\r\n" +
		"not a field line\r\n" +
		"X-After: seen too\r\n"
	check := func(h string, want []HeaderField) {
		t.Helper()
		fs, more := parseHeader([]byte(h))
		if more || len(fs) != len(want) {
			t.Fatalf("fields %+v (more %v)", fs, more)
		}
		for i := range want {
			if fs[i] != want[i] {
				t.Fatalf("field %d = %+v, want %+v", i, fs[i], want[i])
			}
		}
	}
	check(h, []HeaderField{
		{"Received", "from a by b; date"},
		{"Subject", "Café and more"},
		{"X-Evil", "abc"},
		{"To", "ann@one.example"},
		{"", "not a field line"},
		{"X-After", "seen too"},
	})
	// An mbox From line, and a first line of the original that starts with
	// white space: it is not part of bccguard's Received: above it.
	own := rewrite.Received("crm.example", "192.0.2.1", "relay.example", "ESMTP", "Q1", time.Unix(0, 0))
	check(own+" To: bob@two.example\r\nFrom x@y.example Mon Jan  1 00:00:00 2001\r\nSubject: hi\r\n\r\n", []HeaderField{
		{"Received", "from crm.example ([192.0.2.1]) by relay.example (bccguard) with ESMTP id Q1; " + time.Unix(0, 0).Format(time.RFC1123Z)},
		{"", "To: bob@two.example"},
		{"", "From x@y.example Mon Jan  1 00:00:00 2001"},
		{"Subject", "hi"},
	})

	var many strings.Builder
	for range maxHeaderFields + 5 {
		many.WriteString("X-A: " + strings.Repeat("v", maxFieldValue+10) + "\r\n")
	}
	fs, more := parseHeader([]byte(many.String()))
	if !more || len(fs) != maxHeaderFields || len(fs[0].Value) != maxFieldValue {
		t.Fatalf("caps: %d fields, more %v, value %d bytes", len(fs), more, len(fs[0].Value))
	}
}

func TestParseAge(t *testing.T) {
	for in, want := range map[string]string{"90m": "1h30m0s", "36h": "36h0m0s", "7d": "168h0m0s", "0.5d": "12h0m0s"} {
		d, err := ParseAge(in)
		if err != nil || d.String() != want {
			t.Errorf("ParseAge(%q) = %v, %v; want %s", in, d, err, want)
		}
	}
	for _, in := range []string{"", "soon", "-1h", "-2d", "1e9d"} {
		if _, err := ParseAge(in); CodeOf(err) != CodeBadRequest {
			t.Errorf("ParseAge(%q) = %v, want bad_request", in, err)
		}
	}
}
