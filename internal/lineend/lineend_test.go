package lineend

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// reference is the obvious definition: a CR followed by LF is a line end;
// any other CR, and any LF not after a CR, is bare and becomes CRLF. It
// returns the normalised bytes, the number of bare ends, the first bare
// one, and the longest line.
func reference(b []byte) (out []byte, bare int, first byte, longest int) {
	line := 0
	end := func() {
		out = append(out, '\r', '\n')
		longest = max(longest, line)
		line = 0
	}
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\r' && i+1 < len(b) && b[i+1] == '\n':
			end()
			i++
		case c == '\r' || c == '\n':
			if bare == 0 {
				first = c
			}
			bare++
			end()
		default:
			out = append(out, c)
			line++
		}
	}
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\r', '\n') // the last line's end
	}
	return out, bare, first, max(longest, line)
}

// terminated is b with a CRLF after a last line that has none.
func terminated(b string) string {
	if b != "" && !strings.HasSuffix(b, "\r\n") {
		return b + "\r\n"
	}
	return b
}

// readAll reads r in reads of every size from 1 to 9 bytes in turn, so
// that state must carry across reads.
func readAll(r io.Reader) ([]byte, error) {
	var out bytes.Buffer
	buf := make([]byte, 9)
	for i := 0; ; i++ {
		n, err := r.Read(buf[:1+i%9])
		out.Write(buf[:n])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}

func TestModes(t *testing.T) {
	for _, tc := range []struct {
		name, in, normalized string
		err                  error // in Reject mode
	}{
		{"CRLF only", "a\r\nb\r\n\r\nc\r\n", "a\r\nb\r\n\r\nc\r\n", nil},
		{"no line end at the end", "a\r\nb", "a\r\nb\r\n", nil},
		{"empty", "", "", nil},
		{"bare CR smuggling", "hello\r.\rMAIL FROM:<a@bank.example>\r\n", "hello\r\n.\r\nMAIL FROM:<a@bank.example>\r\n", ErrBareCR},
		{"bare CR in a header", "Subject: x\rBcc: v5@secret.example\r\n\r\n", "Subject: x\r\nBcc: v5@secret.example\r\n\r\n", ErrBareCR},
		{"dot and bare LF", "a\r\n.\nb\r\n", "a\r\n.\r\nb\r\n", ErrBareLF},
		{"LF only", "a\nb\n", "a\r\nb\r\n", ErrBareLF},
		{"CR CR LF", "a\r\r\nb", "a\r\n\r\nb\r\n", ErrBareCR},
		{"ends on CR", "a\r", "a\r\n", ErrBareCR},
		{"BDAT smuggling", "w\r.\r.end\r", "w\r\n.\r\n.end\r\n", ErrBareCR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(NewReader(strings.NewReader(tc.in), Normalize, 0))
			if err != nil || string(got) != tc.normalized {
				t.Errorf("normalize %q = %q, %v; want %q", tc.in, got, err, tc.normalized)
			}
			got, err = readAll(NewReader(strings.NewReader(tc.in), Reject, 0))
			if !errors.Is(err, tc.err) {
				t.Errorf("reject %q: err %v, want %v", tc.in, err, tc.err)
			}
			if tc.err == nil && string(got) != terminated(tc.in) {
				t.Errorf("reject %q changed it to %q", tc.in, got)
			}
		})
	}
}

func TestLineBound(t *testing.T) {
	for _, mode := range []Mode{Reject, Normalize} {
		ok := strings.Repeat("x", 10) + "\r\n" + strings.Repeat("y", 10)
		if _, err := readAll(NewReader(strings.NewReader(ok), mode, 10)); err != nil {
			t.Errorf("%s: lines of exactly the bound: %v", mode, err)
		}
		var tl *LineTooLongError
		_, err := readAll(NewReader(strings.NewReader("a\r\n"+strings.Repeat("x", 11)+"\r\n"), mode, 10))
		if !errors.As(err, &tl) || tl.Max != 10 {
			t.Errorf("%s: a line of 11 over 10: %v", mode, err)
		}
	}
}

func TestReadErrorPassesThrough(t *testing.T) {
	boom := errors.New("boom")
	for _, mode := range []Mode{Reject, Normalize} {
		r := NewReader(io.MultiReader(strings.NewReader("a\r"), iotest.ErrReader(boom)), mode, 0)
		if _, err := io.ReadAll(r); !errors.Is(err, boom) {
			t.Errorf("%s: err %v, want the source's", mode, err)
		}
	}
}

// FuzzReader compares both modes with reference on any content: Normalize
// returns exactly the reference's bytes (no bare CR or LF, nothing else
// changed); Reject returns the content unchanged or fails at a bare one; and
// the line bound fails exactly when a line is over it.
func FuzzReader(f *testing.F) {
	for _, s := range []string{"a\r\nb", "hello\r.\rMAIL FROM:<a@b>\r\n", "\r\n.\n", "\r\r\n", "x\r", "\n", "w\r.\r.end\r"} {
		f.Add([]byte(s), 4)
	}
	f.Fuzz(func(t *testing.T, in []byte, maxLine int) {
		maxLine = max(0, maxLine%64)
		want, bare, first, longest := reference(in)
		over := maxLine > 0 && longest > maxLine
		got, err := readAll(NewReader(bytes.NewReader(in), Normalize, maxLine))
		var tl *LineTooLongError
		switch {
		case over && !errors.As(err, &tl):
			t.Fatalf("normalize %q, max %d: longest line %d, err %v", in, maxLine, longest, err)
		case !over && (err != nil || !bytes.Equal(got, want)):
			t.Fatalf("normalize %q = %q, %v; want %q", in, got, err, want)
		}
		if n, b := Normalized(in); !bytes.Equal(n, want) || b != bare {
			t.Fatalf("Normalized(%q) = %q, %d; want %q, %d", in, n, b, want, bare)
		}
		got, err = readAll(NewReader(bytes.NewReader(in), Reject, 0))
		switch {
		case bare == 0 && (err != nil || string(got) != terminated(string(in))):
			t.Fatalf("reject %q = %q, %v; want it unchanged (but for a last line end)", in, got, err)
		case bare > 0 && first == '\r' && !errors.Is(err, ErrBareCR), bare > 0 && first == '\n' && !errors.Is(err, ErrBareLF):
			t.Fatalf("reject %q: err %v, want the bare %q", in, err, first)
		}
	})
}
