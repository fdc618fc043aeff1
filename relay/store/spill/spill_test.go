package spill

import (
	"bytes"
	"io"
	"os"
	"testing"
)

func TestBody(t *testing.T) {
	cases := []struct {
		name    string
		limit   int
		writes  []int // sizes of successive writes
		spilled bool
	}{
		{"small stays in memory", 1024, []int{100, 200}, false},
		{"reaching the limit spills", 1024, []int{1000, 24}, true},
		{"one large write spills", 1024, []int{5000}, true},
		{"negative limit spills at once", -1, []int{1}, true},
		{"empty body", 1024, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want []byte
			b := New(tc.limit, func() (*os.File, error) { return os.OpenFile(t.TempDir()+"/body", os.O_CREATE|os.O_RDWR, 0o600) })
			for i, n := range tc.writes {
				p := bytes.Repeat([]byte{byte('a' + i)}, n)
				want = append(want, p...)
				if m, err := b.Write(p); err != nil || m != n {
					t.Fatalf("Write = %d, %v", m, err)
				}
			}
			if b.Spilled() != tc.spilled || b.Size() != int64(len(want)) {
				t.Fatalf("spilled %v size %d, want %v %d", b.Spilled(), b.Size(), tc.spilled, len(want))
			}
			got := b.Inline()
			if tc.spilled {
				if got != nil {
					t.Fatal("a spilled body still holds memory")
				}
				f, err := b.File()
				if err != nil {
					t.Fatal(err)
				}
				if got, err = io.ReadAll(io.NewSectionReader(f, 0, b.Size())); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got, want) {
				t.Fatal("body changed")
			}
			if cap(b.Inline()) > max(tc.limit, 0) && !tc.spilled {
				t.Errorf("inline capacity %d exceeds the limit %d", cap(b.Inline()), tc.limit)
			}
			b.Drop()
		})
	}
}
