package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net/textproto"
	"strings"
	"testing"
)

// textprotoDot is the reference: what net/textproto's DotWriter makes of
// data written in one piece.
func textprotoDot(t testing.TB, data []byte) []byte {
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	dw := textproto.NewWriter(bw).DotWriter()
	if _, err := dw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ourDot writes data split at the given chunk sizes (the rest in one).
func ourDot(t testing.TB, data []byte, chunks []int) []byte {
	var buf bytes.Buffer
	var d dotWriter
	d.reset(&buf)
	for _, n := range chunks {
		n = min(n, len(data))
		if k, err := d.Write(data[:n]); err != nil || k != n {
			t.Fatalf("Write = %d, %v; want %d", k, err, n)
		}
		data = data[n:]
	}
	if _, err := d.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDotWriter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"empty", nil, "\r\n.\r\n"},
		{"crlf line", []string{"a\r\n"}, "a\r\n.\r\n"},
		{"no final line end", []string{"a\r\nb"}, "a\r\nb\r\n.\r\n"},
		{"bare lf", []string{"a\nb\n"}, "a\r\nb\r\n.\r\n"},
		{"leading dot", []string{".a\r\n..\r\n.\r\n"}, "..a\r\n...\r\n..\r\n.\r\n"},
		{"dot mid line", []string{"a.b\r\n"}, "a.b\r\n.\r\n"},
		{"dot after bare lf", []string{"a\n.b"}, "a\r\n..b\r\n.\r\n"},
		{"cr split from lf", []string{"a\r", "\nb\r\n"}, "a\r\nb\r\n.\r\n"},
		{"dot at start of next write", []string{"a\r\n", ".b\r\n"}, "a\r\n..b\r\n.\r\n"},
		{"dot after split crlf", []string{"a\r", "\n", ".b"}, "a\r\n..b\r\n.\r\n"},
		{"dot after bare lf write", []string{"a\n", "."}, "a\r\n..\r\n.\r\n"},
		{"trailing cr", []string{"a\r"}, "a\r\n.\r\n"},
		{"bare cr mid line", []string{"a\rb\r\n"}, "a\rb\r\n.\r\n"},
		{"two crs then lf", []string{"a\r\r\n"}, "a\r\r\r\n.\r\n"},
		{"three crs then lf", []string{"a\r\r\r\n"}, "a\r\r\r\n.\r\n"},
		{"crs split", []string{"a\r", "\r", "\n"}, "a\r\r\r\n.\r\n"},
		{"cr then dot", []string{"\r."}, "\r.\r\n.\r\n"},
		{"only dot", []string{"."}, "..\r\n.\r\n"},
		{"empty writes", []string{"", "a", "", "\n", ""}, "a\r\n.\r\n"},
		{"lone lf", []string{"\n"}, "\r\n.\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			var d dotWriter
			d.reset(&buf)
			for _, w := range tc.writes {
				if _, err := io.WriteString(&d, w); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			ref := textprotoDot(t, []byte(strings.Join(tc.writes, "")))
			if string(ref) != tc.want {
				t.Errorf("textproto gives %q; the table is wrong", ref)
			}
		})
	}
}

// FuzzDotWriter checks that for any data, split into writes anywhere, the
// output is textproto.DotWriter's.
func FuzzDotWriter(f *testing.F) {
	f.Add([]byte("a\r\n.b\n\r\r\n.."), []byte{1, 2, 3})
	f.Add([]byte(".\r\n.\r"), []byte{0, 1})
	f.Add([]byte("\r\r\r\n\n\n..\r"), []byte{2, 0, 1, 1, 1})
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, data, splits []byte) {
		chunks := make([]int, len(splits))
		for i, s := range splits {
			chunks[i] = int(s % 17) // small chunks: many boundaries
		}
		want := textprotoDot(t, data)
		if got := ourDot(t, data, chunks); !bytes.Equal(got, want) {
			t.Fatalf("data %q chunks %v:\ngot  %q\nwant %q", data, chunks, got, want)
		}
	})
}

// benchBody is a message of about size bytes: CRLF lines of 76, some
// starting with a dot, as a renderer would write it.
func benchBody(size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.com\r\nTo: b@example.com\r\nSubject: bench\r\n\r\n")
	line := strings.Repeat("0123456789", 8)[:74] + "\r\n"
	for i := 0; b.Len() < size; i++ {
		if i%20 == 0 {
			b.WriteString("." + line[1:])
		} else {
			b.WriteString(line)
		}
	}
	return b.Bytes()[: size-2 : size-2]
}

func BenchmarkDotWriter(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"2KiB", 2 << 10}, {"1MiB", 1 << 20}} {
		body := append(benchBody(size.n), "\r\n"...)
		b.Run("ours/"+size.name, func(b *testing.B) {
			bw := bufio.NewWriterSize(io.Discard, writeBufSize)
			var d dotWriter
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				d.reset(bw)
				// In 4 KiB writes, as io.Copy from a renderer would.
				for p := body; len(p) > 0; {
					n := min(len(p), 4<<10)
					_, _ = d.Write(p[:n])
					p = p[n:]
				}
				_ = d.Close()
			}
		})
		b.Run("textproto/"+size.name, func(b *testing.B) {
			bw := bufio.NewWriterSize(io.Discard, writeBufSize)
			tw := textproto.NewWriter(bw)
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				dw := tw.DotWriter()
				for p := body; len(p) > 0; {
					n := min(len(p), 4<<10)
					_, _ = dw.Write(p[:n])
					p = p[n:]
				}
				_ = dw.Close()
			}
		})
	}
}
