package policy

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// scanAll feeds raw to a Scanner in small, uneven chunks, as the relay's
// tee would, and returns the result and the distinct addresses counted.
func scanAll(t testing.TB, raw []byte, limit int) (ScanResult, []string) {
	t.Helper()
	var got []string
	s := newScanner(limit, func(a []byte) { got = append(got, string(a)) })
	for i, n := 0, 1; i < len(raw); i, n = i+n, n%4093+7 {
		if _, err := s.Write(raw[i:min(len(raw), i+n)]); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	slices.Sort(got)
	return s.Result(), got
}

// TestScanner is the specification of the body scan, one golden message
// per case in testdata/scan.
func TestScanner(t *testing.T) {
	tests := []struct {
		file string
		want []string // the distinct addresses counted, sorted
		n    int      // or just their number, for long lists
		err  bool     // a MIME problem is reported
	}{
		{file: "plain.eml", // header addresses are not counted; case-insensitive; junk rejected
			want: []string{"billing@brand.example", "sales@example.org", "support@brand.example"}},
		{file: "html.eml", // quoted-printable soft line break inside an address; mailto: and &lt;&gt;
			want: []string{"help@brand.example", "press@brand.example"}},
		{file: "vcard.eml",
			want: []string{"anna.private@example.com", "anna@example.org", "joerg@example.net"}},
		{file: "nested.eml", // alternative parts once; attached message's header and body; .txt attachment; no preamble or epilogue
			want: []string{"alice@example.com", "bob@example.org", "carol@example.net", "dave@example.net", "erin@example.com", "frank@example.org"}},
		{file: "csv-base64-200.eml", // base64 text/csv of 200 customers + one in the text
			n: 201},
		{file: "octet-stream-csv.eml", // .csv under application/octet-stream counts, a PDF does not
			n: 30},
		{file: "malformed.eml", // parser gives up: the rest is scanned raw
			want: []string{"one@example.com", "three@example.com", "two@example.com"}, err: true},
		{file: "header-only-addresses.eml",
			want: nil},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(strings.TrimSuffix(tt.file, ".eml"), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata/scan", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			res, got := scanAll(t, raw, MaxBodyAddresses)
			if tt.want != nil || tt.n == 0 {
				if !slices.Equal(got, tt.want) {
					t.Errorf("addresses:\n got  %q\n want %q", got, tt.want)
				}
				tt.n = len(tt.want)
			}
			if res.Addresses != tt.n || len(got) != tt.n {
				t.Errorf("Addresses = %d (%d seen), want %d", res.Addresses, len(got), tt.n)
			}
			if (res.Err != "") != tt.err {
				t.Errorf("Err = %q, want error: %v", res.Err, tt.err)
			}
			if res.Truncated {
				t.Error("Truncated")
			}
		})
	}
	files, _ := filepath.Glob("testdata/scan/*.eml")
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s has no expectation in this table", f)
		}
	}
}

// scanChunk is the content scanner's chunk size (64 KiB).
const scanChunk = 64 << 10

func TestScannerCap(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("Subject: big\r\n\r\n")
	for i := range 500 {
		fmt.Fprintf(&b, "user%d@example.com\r\n", i)
	}
	res, got := scanAll(t, b.Bytes(), 100)
	if res.Addresses != 100 || !res.Truncated || len(got) != 100 {
		t.Errorf("got %+v (%d seen), want 100 and Truncated", res, len(got))
	}
}

// An address split across Write calls or the finder's chunk boundary is
// still found whole.
func TestScannerBoundaries(t *testing.T) {
	for _, pad := range []int{0, 1, scanChunk - 10, scanChunk - 300, scanChunk + 5, 3*scanChunk - 17} {
		raw := "Subject: x\r\n\r\n" + strings.Repeat("x", pad) + " someone.long.name@sub.example.com " + strings.Repeat("y", 100)
		_, got := scanAll(t, []byte(raw), 10)
		if !slices.Equal(got, []string{"someone.long.name@sub.example.com"}) {
			t.Errorf("pad %d: got %q", pad, got)
		}
	}
}

// Write must never block, also when the parser has stopped early.
func TestScannerNeverBlocks(t *testing.T) {
	cases := map[string]string{
		"binary top level": "Content-Type: image/png\r\n\r\n",
		"broken header":    "this is not a header\r\n",
		"full early":       "Subject: x\r\n\r\na@example.com b@example.com c@example.com\r\n",
	}
	for name, head := range cases {
		t.Run(name, func(t *testing.T) {
			s := newScanner(2, nil)
			done := make(chan struct{})
			go func() {
				defer close(done)
				s.Write([]byte(head))
				chunk := bytes.Repeat([]byte("z"), 64<<10)
				for range 200 { // 12.5 MiB
					s.Write(chunk)
				}
				s.Close()
			}()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Scanner blocked")
			}
			s.Write([]byte("after close")) // harmless
		})
	}
}

// A line far longer than any real one is broken up before the MIME parser
// sees it, and addresses on it still count.
func TestScannerLongLine(t *testing.T) {
	raw := "Subject: x\r\n\r\n" + strings.Repeat("a ", 3*(1<<20)/2) + "far@example.com" + strings.Repeat(" b", 1000) + "\r\n"
	res, got := scanAll(t, []byte(raw), 10)
	if res.Addresses != 1 || got[0] != "far@example.com" {
		t.Errorf("got %+v %q", res, got)
	}
}

func TestScannerDeepNesting(t *testing.T) {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=b0\r\n\r\n")
	for i := range 40 {
		fmt.Fprintf(&b, "--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n", i, i+1)
	}
	b.WriteString("--b40\r\nContent-Type: text/plain\r\n\r\ndeep@example.com\r\n")
	res, got := scanAll(t, []byte(b.String()), 10)
	if !slices.Equal(got, []string{"deep@example.com"}) || res.Err == "" {
		t.Errorf("got %+v %q: want the address found by the raw fallback and the depth reported", res, got)
	}
}

func TestMatchAt(t *testing.T) {
	yes := []string{"a@example.com", "first.last@example.co.uk", "x+tag@sub.example.org", "o'brien@example.ie",
		"jörg@bücher.example", "user@xn--bcher-kva.example", "UPPER@EXAMPLE.COM"}
	no := []string{"a@b", "user@localhost", "@example.com", "user@", "a..b@example.com", "a.@example.com",
		"user@-bad.example", "user@example.c", "user@example.123", "user@.example.com",
		strings.Repeat("l", 65) + "@example.com"}
	for _, s := range yes {
		if _, got := scanAll(t, []byte("\r\n"+s+"\r\n"), 10); len(got) != 1 {
			t.Errorf("%q not found", s)
		}
	}
	for _, s := range no {
		if _, got := scanAll(t, []byte("\r\n"+s+"\r\n"), 10); len(got) != 0 {
			t.Errorf("%q found as %q", s, got)
		}
	}
}

// bigMessage is a message of about size bytes: a short text part and a
// base64 CSV attachment with a new address on every line.
func bigMessage(size int) []byte {
	var csv bytes.Buffer
	for i := 0; csv.Len() < size*3/4; i++ {
		fmt.Fprintf(&csv, "Customer %d,customer%d@example.com,+1 555 %07d\n", i, i%50000, i)
	}
	enc := base64.StdEncoding.EncodeToString(csv.Bytes())
	var b bytes.Buffer
	b.WriteString("From: crm@brand.example\r\nTo: sales@brand.example\r\nSubject: export\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"xx\"\r\n\r\n--xx\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n" +
		"--xx\r\nContent-Type: text/csv; name=\"c.csv\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--xx--\r\n")
	return b.Bytes()
}

func BenchmarkScanner(b *testing.B) {
	msg := bigMessage(10 << 20)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		s := NewScanner(ScanOptions{})
		for i := 0; i < len(msg); i += 32 << 10 {
			s.Write(msg[i:min(len(msg), i+32<<10)])
		}
		s.Close()
		if r := s.Result(); r.Addresses != 50000 {
			b.Fatalf("counted %d", r.Addresses)
		}
	}
}

// The scanner's memory does not grow with the message: heap in use after
// scanning 40 MiB is within a few MiB of that after 5 MiB.
func TestScannerMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	peak := func(size int) uint64 {
		msg := bigMessage(size)
		return heapDuring(func(sample func()) {
			s := NewScanner(ScanOptions{})
			for i := 0; i < len(msg); i += 32 << 10 {
				s.Write(msg[i:min(len(msg), i+32<<10)])
				if i%(1<<20) == 0 {
					sample()
				}
			}
			s.Close()
		}) - uint64(cap(msg))
	}
	small, large := peak(5<<20), peak(40<<20)
	t.Logf("heap beyond the message: 5 MiB message %d KiB, 40 MiB message %d KiB", small>>10, large>>10)
	if large > small+8<<20 {
		t.Errorf("memory grows with message size: %d -> %d bytes", small, large)
	}
}

var _ io.WriteCloser = (*Scanner)(nil)

// heapDuring runs f and returns the largest live heap at the points
// where f calls sample. It collects garbage first: what must not grow is
// what the scan keeps, not what it has dropped and the collector has not
// yet reclaimed (whose amount follows GOGC and the test's own heap).
func heapDuring(f func(sample func())) uint64 {
	runtime.GC()
	var peak uint64
	f(func() {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		peak = max(peak, m.HeapInuse)
	})
	return peak
}
