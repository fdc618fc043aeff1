package rewrite

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/bccguard/bccguard/relay/store"
)

// benchMessage is a mailing of size bytes: a header block showing 100
// customers in To: and Cc:, then lines of body text.
func benchMessage(size int) (raw []byte, headerLen int) {
	var h strings.Builder
	h.WriteString("Received: from crm.example.com by relay.brand.example; Sat, 21 Nov 2026 10:00:00 +0000\r\n")
	h.WriteString("From: Brand Phones <crm@brand.example>\r\n")
	for _, f := range []struct {
		name   string
		lo, hi int
	}{{"To", 0, 70}, {"Cc", 70, 100}} {
		h.WriteString(f.name + ": ")
		for i := f.lo; i < f.hi; i++ {
			if i > f.lo {
				h.WriteString(",\r\n ")
			}
			fmt.Fprintf(&h, "\"Customer %03d, Example\" <customer%03d@example.net>", i, i)
		}
		h.WriteString("\r\n")
	}
	h.WriteString("Subject: the big catalogue\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\n" +
		"Message-ID: <catalogue@brand.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n")
	b := bytes.NewBuffer(make([]byte, 0, size+100))
	b.WriteString(h.String())
	headerLen = b.Len()
	line := []byte("the quick brown fox jumps over the lazy dog 0123456789 the quick brown fox\r\n")
	for b.Len()+len(line) <= size {
		b.Write(line)
	}
	b.Write(bytes.Repeat([]byte("x"), size-b.Len()))
	return b.Bytes(), headerLen
}

// readerOnly hides bytes.Reader's WriteTo, so the body is copied in chunks
// as it is from a stored file.
type readerOnly struct{ io.Reader }

// BenchmarkRenderExplode renders the explode copy for one recipient of a
// 1 MiB and a 10 MiB message from memory into io.Discard: the header rewrite
// and the streamed body. MB/s counts the stored message's bytes.
func BenchmarkRenderExplode(b *testing.B) {
	for _, bc := range []struct {
		name    string
		size    int
		chunked bool
	}{
		{"1MiB", 1 << 20, false},
		{"10MiB", 10 << 20, false},
		{"10MiB-chunked", 10 << 20, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			raw, hl := benchMessage(bc.size)
			msg := store.Message{ID: "B1", HeaderLen: int64(hl), Size: int64(len(raw))}
			d := store.Delivery{ID: "D1", Rewrite: store.RewriteExplode, Recipients: []store.Recipient{{Addr: "customer042@example.net"}}}
			src := func() io.Reader {
				r := io.Reader(bytes.NewReader(raw))
				if bc.chunked {
					r = readerOnly{r}
				}
				return r
			}

			// The copy is what it should be: the body whole, the header
			// showing only the recipient.
			var out bytes.Buffer
			if err := render(&out, src(), msg, d); err != nil {
				b.Fatal(err)
			}
			head, body, _ := bytes.Cut(out.Bytes(), []byte("\r\n\r\n"))
			if !bytes.Equal(body, raw[hl:]) {
				b.Fatal("the rendered body differs from the stored one")
			}
			if !bytes.Contains(head, []byte("\r\nTo: \"Customer 042, Example\" <customer042@example.net>\r\n")) ||
				bytes.Contains(head, []byte("customer041@")) || bytes.Contains(head, []byte("Cc:")) {
				b.Fatalf("rendered header:\n%s", head)
			}

			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := render(io.Discard, src(), msg, d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkExplodeCopies renders, as delivery does, the 100 explode copies
// of one 1 MiB mailing from one Source (the header read and whom it shows
// worked out once, the body in memory), with the original signatures'
// changed set worked out for each copy. ns/op is per copy.
func BenchmarkExplodeCopies(b *testing.B) {
	raw, hl := benchMessage(1 << 20)
	msg := store.Message{ID: "B1", HeaderLen: int64(hl), Size: int64(len(raw))}
	for i := range 100 {
		msg.Envelope.Recipients = append(msg.Envelope.Recipients, store.Recipient{Addr: fmt.Sprintf("customer%03d@example.net", i)})
	}
	src, err := ReadSource(bytes.NewReader(raw), msg)
	if err != nil {
		b.Fatal(err)
	}
	body := raw[hl:]
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d := store.Delivery{ID: "D", Rewrite: store.RewriteExplode, Recipients: msg.Envelope.Recipients[i%100 : i%100+1]}
		if err := WriteCopy(io.Discard, src, bytes.NewReader(body), d, Options{StripSignatures: true}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
