package harness

import (
	"bytes"
	"io"
	"testing"
)

func TestBodyIsExactAndCRLF(t *testing.T) {
	for _, size := range []int64{2, 3, 70, 71, 72, 73, 1000, 1 << 20, 1<<20 + 1} {
		b, err := io.ReadAll(NewBody(size))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != size || !bytes.HasSuffix(b, []byte("\r\n")) {
			t.Errorf("size %d: got %d bytes, ends %q", size, len(b), b[max(len(b)-4, 0):])
		}
		if bytes.Contains(bytes.ReplaceAll(b, []byte("\r\n"), nil), []byte("\n")) || bytes.Contains(bytes.ReplaceAll(b, []byte("\r\n"), nil), []byte("\r")) {
			t.Errorf("size %d: bare CR or LF", size)
		}
	}
}

func TestFields(t *testing.T) {
	hdr, body := SplitMessage(CRLF("Received: from a\n\tby b; date\nTo: x@example.net,\n y@example.net\nBcc: z@example.org\n\nbody\n"))
	fs := Fields(hdr)
	if len(fs) != 3 || fs[0].Name != "Received" || string(fs[1].Raw) != "To: x@example.net,\r\n y@example.net\r\n" || fs[2].Name != "Bcc" {
		t.Fatalf("fields: %q", fs)
	}
	if string(body) != "body\r\n" || !HasField(hdr, "bcc") || HasField(hdr, "Cc") {
		t.Fatal("split or HasField wrong")
	}
}

func TestParseQueue(t *testing.T) {
	for _, out := range []string{
		`[{"id":"d1","state":"deferred"},{"id":"d2","state":"queued"}]`,
		`{"deliveries":[{"id":"d1","state":"deferred"},{"id":"d2","state":"queued"}]}`,
		"{\"id\":\"d1\",\"state\":\"deferred\"}\n{\"id\":\"d2\",\"state\":\"queued\"}\n",
	} {
		es, err := ParseQueue(out)
		if err != nil || len(es) != 2 || CountState(es, "deferred") != 1 || es[1].ID != "d2" {
			t.Errorf("%s: %v %+v", out, err, es)
		}
	}
	if es, err := ParseQueue("[]\n"); err != nil || len(es) != 0 {
		t.Errorf("empty: %v %v", es, err)
	}
}
