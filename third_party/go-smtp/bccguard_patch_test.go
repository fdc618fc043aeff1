package smtp

// Tests of bccguard's patch (PATCHES.md): the DATA reader is lossless, the
// quoted local part of a path is returned as written, and MaxLineLength does
// not apply to message text.

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// readData runs wire through the DATA reader, in reads of every size from
// 1 to 7 bytes in turn (state must carry over between reads), and returns
// what it produced and what it left unread.
func readData(t testing.TB, wire string) (string, string, error) {
	br := bufio.NewReaderSize(strings.NewReader(wire), 16)
	r := &dataReader{r: br}
	var out bytes.Buffer
	buf := make([]byte, 7)
	for i := 0; ; i++ {
		n, err := r.Read(buf[:1+i%7])
		out.Write(buf[:n])
		if err == io.EOF {
			rest, _ := io.ReadAll(br)
			return out.String(), string(rest), nil
		}
		if err != nil {
			return out.String(), "", err
		}
	}
}

func TestPatchDataReaderLossless(t *testing.T) {
	for _, tc := range []struct {
		name, wire, want, rest string
	}{
		{"plain", "a\r\nb\r\n.\r\n", "a\r\nb\r\n", ""},
		{"empty", ".\r\n", "", ""},
		{"dot-stuffed", "..a\r\n..\r\n.\r\n", ".a\r\n.\r\n", ""},
		{"unstuffed dot dropped as RFC 5321 4.5.2 says", ".a\r\n.\r\n", "a\r\n", ""},
		{"dot then bare LF keeps the dot", "a\r\n.\nb\r\n.\r\n", "a\r\n.\nb\r\n", ""},
		{"dot then bare CR keeps both", "a\r\n.\rMAIL FROM:<x@example.com>\r\n.\r\n", "a\r\n.\rMAIL FROM:<x@example.com>\r\n", ""},
		{"dot, bare CR, CR LF", "a\r\n.\r\r\n.\r\n", "a\r\n.\r\r\n", ""},
		{"dot, bare CR, CR, X", "a\r\n.\r\rX\r\n.\r\n", "a\r\n.\r\rX\r\n", ""},
		{"bare CR smuggling", "hello\r.\rMAIL FROM:<a@bank.example>\r\n.\r\n", "hello\r.\rMAIL FROM:<a@bank.example>\r\n", ""},
		{"LF dot LF is content", "a\n.\nb\r\n.\r\n", "a\n.\nb\r\n", ""},
		{"LF dot CRLF is content", "a\n.\r\nb\r\n.\r\n", "a\n.\r\nb\r\n", ""},
		{"CR CR LF ends the line", "a\r\r\n.\r\nQUIT\r\n", "a\r\r\n", "QUIT\r\n"},
		{"CR CR LF then stuffed dot", "a\r\r\n..b\r\n.\r\n", "a\r\r\n.b\r\n", ""},
		{"stops at the end marker", "a\r\n.\r\nRSET\r\n", "a\r\n", "RSET\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, rest, err := readData(t, tc.wire)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || rest != tc.rest {
				t.Errorf("read %q: got %q (rest %q), want %q (rest %q)", tc.wire, got, rest, tc.want, tc.rest)
			}
		})
	}
}

func TestPatchDataReaderCutShort(t *testing.T) {
	if _, _, err := readData(t, "a\r\n.\rb"); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a stream without an end: got %v, want io.ErrUnexpectedEOF", err)
	}
}

// referenceData decodes a DATA stream the slow and obvious way: lines end
// at CRLF only; a line "." ends the data; a "." that starts a line and is
// followed by anything but CR or LF is the transparency dot and goes;
// every other byte stays. It returns the content and the number of wire
// bytes consumed, or ok false when the stream has no end.
func referenceData(wire []byte) (out []byte, used int, ok bool) {
	atStart := true
	for i := 0; i < len(wire); {
		if atStart {
			if bytes.HasPrefix(wire[i:], []byte(".\r\n")) {
				return out, i + 3, true
			}
			if wire[i] == '.' && i+1 < len(wire) && wire[i+1] != '\r' && wire[i+1] != '\n' {
				i++
			}
		}
		if i >= len(wire) {
			break
		}
		out = append(out, wire[i])
		atStart = wire[i] == '\n' && i > 0 && wire[i-1] == '\r'
		i++
	}
	return out, len(wire), false
}

// stuff is what a conforming client sends for content: a "." that starts a
// CRLF line doubled, CRLF added if the content does not end in one, and
// the end marker.
func stuff(content []byte) []byte {
	var b []byte
	atStart := true
	for i, c := range content {
		if atStart && c == '.' {
			b = append(b, '.')
		}
		b = append(b, c)
		atStart = c == '\n' && i > 0 && content[i-1] == '\r'
	}
	if !bytes.HasSuffix(content, []byte("\r\n")) && len(content) > 0 {
		b = append(b, '\r', '\n')
	}
	return append(b, ".\r\n"...)
}

// FuzzPatchDataReader checks the reader against referenceData on any wire
// bytes (only transparency dots and the end marker are removed; every CR
// and LF is kept), and that any content a conforming client sends comes
// back exactly.
func FuzzPatchDataReader(f *testing.F) {
	for _, s := range []string{
		"a\r\n.\r\n", "\r\n.\n.\r\n", "x\r\n.\rMAIL FROM:<a@b>\r\n.\r\n", "w\r.\r.end\r",
		"\r\r\n.\r\n", "..\r\n", ".\r\r\n", "\n.\n", ".",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		want, used, ok := referenceData(wire)
		got, rest, err := readData(t, string(wire))
		if !ok {
			if err == nil {
				t.Fatalf("%q has no end marker, yet the reader ended with %q", wire, got)
			}
		} else {
			if err != nil {
				t.Fatalf("%q: %v", wire, err)
			}
			if got != string(want) || rest != string(wire[used:]) {
				t.Fatalf("%q: reader gave %q (rest %q), reference %q (rest %q)", wire, got, rest, want, wire[used:])
			}
		}
		// The same bytes as content, sent by a conforming client, come
		// back unchanged (with a CRLF added if they did not end in one).
		content := wire
		got, rest, err = readData(t, string(stuff(content)))
		if len(content) > 0 && !bytes.HasSuffix(content, []byte("\r\n")) {
			content = append(append([]byte(nil), content...), '\r', '\n')
		}
		if err != nil || got != string(content) || rest != "" {
			t.Fatalf("content %q sent stuffed came back as %q (rest %q, err %v)", content, got, rest, err)
		}
	})
}

func TestPatchQuotedLocalPartAsWritten(t *testing.T) {
	for _, tc := range []struct{ raw, path string }{
		{`<"victim@evil.example"@c.example>`, `"victim@evil.example"@c.example`},
		{`<"u,v"@c.example>`, `"u,v"@c.example`},
		{`<"u\\"@c.example>`, `"u\\"@c.example`},
		{`<"a\"b"@c.example>`, `"a\"b"@c.example`},
		{`<plain@c.example>`, `plain@c.example`},
		{`<@route.example:"q r"@c.example>`, `"q r"@c.example`},
	} {
		p := parser{tc.raw}
		path, err := p.parsePath()
		if err != nil || path != tc.path {
			t.Errorf("parsePath(%q) = %q, %v; want %q", tc.raw, path, err, tc.path)
		}
	}
	for _, raw := range []string{`<"open@c.example>`, `<"ends in a backslash\`} {
		p := parser{raw}
		if path, err := p.parsePath(); err == nil {
			t.Errorf("parsePath(%q) = %q, want an error", raw, path)
		}
	}
}
