package policy

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bccguard/bccguard/policy/content"
)

// seedFiles adds the golden messages as seeds.
func seedFiles(f *testing.F, glob string, add func(raw []byte)) {
	files, _ := filepath.Glob(glob)
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		add(raw)
	}
}

// FuzzParseVisible: whatever the header, ParseVisible returns, agrees
// with itself, and lists only real addresses, each once.
func FuzzParseVisible(f *testing.F) {
	seedFiles(f, "testdata/visible/*.eml", func(raw []byte) { f.Add(HeaderBlock(raw)) })
	for _, s := range []string{
		"To: a@example.com\r\nTo: b@example.org\r\n\r\n",
		"To: g: a@example.com, (c) <@r.example:b@example.org>;, c . d @ example . net\r\n\r\n",
		"Cc: \"x\\\"y\" <z@example.com>; w@example.com\r\n\r\n",
		"To: =?utf-8?b?w7w=?= <\xff@example.com>\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	internal := []string{"example.com", "*.example.org"}
	f.Fuzz(func(t *testing.T, header []byte) {
		v := ParseVisible(header, internal)
		checkVisibleInvariants(t, v)
		if w := ParseVisible(header, internal); !reflect.DeepEqual(v, w) {
			t.Fatalf("not deterministic:\n%+v\n%+v", v, w)
		}
		if v.Truncated && v.Count != MaxVisible {
			t.Fatalf("Truncated with Count %d", v.Count)
		}
		var shown []string
		for _, r := range v.Recipients {
			shown = append(shown, r.Address)
		}
		if n := len(v.NotInEnvelope(shown)); n != 0 {
			t.Fatalf("%d visible recipients not found in an envelope of the visible recipients", n)
		}
		if n := len(v.NotVisible(shown)); n != 0 {
			t.Fatalf("%d of the visible recipients reported as not visible", n)
		}
	})
}

// FuzzScanner: whatever the message and however it is chunked, the scan
// finishes, counts the same, stays under its cap, and counts only
// addresses.
func FuzzScanner(f *testing.F) {
	seedFiles(f, "testdata/scan/*.eml", func(raw []byte) { f.Add(raw, uint16(7)) })
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: message/rfc822\r\n\r\nTo: x@example.com\r\n\r\ny@example.org\r\n--a--\r\n"), uint16(1))
	f.Add([]byte("Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nYUBleGFtcGxlLmNvbQ==\r\n"), uint16(3))
	const limit = 40
	f.Fuzz(func(t *testing.T, raw []byte, chunk uint16) {
		var seen []string
		one := newScanner(limit, func(a []byte) { seen = append(seen, string(a)) })
		finish(t, one, raw, len(raw)+1)
		r1 := one.Result()

		two := newScanner(limit, nil)
		finish(t, two, raw, int(chunk%512)+1)
		r2 := two.Result()

		if r1.Addresses > limit || r1.Truncated && r1.Addresses != limit {
			t.Fatalf("count %d (truncated %v) with limit %d", r1.Addresses, r1.Truncated, limit)
		}
		if r1.Addresses != len(seen) {
			t.Fatalf("Addresses %d, %d seen", r1.Addresses, len(seen))
		}
		if r1.Addresses != r2.Addresses || r1.Truncated != r2.Truncated {
			t.Fatalf("chunking changes the result: %+v vs %+v", r1, r2)
		}
		for _, a := range seen {
			local, domain, ok := strings.Cut(a, "@")
			if !ok || local == "" || !content.ValidDomain(domain) || strings.ContainsAny(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
				t.Fatalf("counted %q", a)
			}
		}
	})
}

// finish writes raw in chunks and closes, failing if that ever blocks.
func finish(t *testing.T, s *Scanner, raw []byte, chunk int) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for r := bytes.NewReader(raw); r.Len() > 0; {
			b := make([]byte, min(chunk, r.Len()))
			r.Read(b)
			s.Write(b)
		}
		s.Close()
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("scanner blocked")
	}
}
