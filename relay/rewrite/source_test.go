package rewrite

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/bccguard/bccguard/relay/store"
)

// countingStore serves stored messages and counts how often each is opened.
type countingStore struct {
	store.Store
	raw   map[string][]byte
	opens map[string]int
}

func (c *countingStore) Open(_ context.Context, id string) (io.ReadCloser, error) {
	c.opens[id]++
	b, ok := c.raw[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// A copy rendered from a source is the copy render makes from the stored
// message, whether the source holds the body or streams it from the store.
func TestSourceRendersAsRender(t *testing.T) {
	raw, hl := loadEML(t, "survey.eml")
	big := append(bytes.Clone(raw), bytes.Repeat([]byte("a long body line\r\n"), sourceBodyMax/18+10)...)
	for name, raw := range map[string][]byte{"small body in memory": raw, "large body streamed": big} {
		t.Run(name, func(t *testing.T) {
			st := &countingStore{raw: map[string][]byte{"M": raw}, opens: map[string]int{}}
			msg := store.Message{ID: "M", HeaderLen: int64(hl), Size: int64(len(raw))}
			src, err := Load(context.Background(), st, msg)
			if err != nil {
				t.Fatal(err)
			}
			if inMemory := src.body != nil; inMemory != (len(raw)-hl <= sourceBodyMax) {
				t.Fatalf("body in memory: %v for a %d-byte body", inMemory, len(raw)-hl)
			}
			for _, addr := range []string{"ann@example.com", "bjorn@example.net", "secret@example.com"} {
				d := store.Delivery{MessageID: "M", Rewrite: store.RewriteExplode, Recipients: []store.Recipient{{Addr: addr}}}
				want := renderString(t, raw, hl, d)
				body, err := src.OpenBody(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				var got bytes.Buffer
				err = WriteCopy(&got, src, body, d, Options{})
				body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if got.String() != want {
					t.Errorf("%s: copy differs from render's:\n%s\nwant:\n%s", addr, got.String(), want)
				}
			}
		})
	}
}

// A stored message whose length disagrees with its record is an error,
// not a silently short or long copy.
func TestSourceChecksSize(t *testing.T) {
	raw, hl := loadEML(t, "survey.eml")
	st := &countingStore{raw: map[string][]byte{"M": raw}, opens: map[string]int{}}
	for _, size := range []int{len(raw) - 1, len(raw) + 1} {
		msg := store.Message{ID: "M", HeaderLen: int64(hl), Size: int64(size)}
		if _, err := Load(context.Background(), st, msg); err == nil || !strings.Contains(err.Error(), "record says") {
			t.Errorf("size %d of %d: err %v", size, len(raw), err)
		}
	}
}

// The cache reads each message once while it holds it, and stays within
// its entry and byte bounds.
func TestSourceCache(t *testing.T) {
	raw, hl := loadEML(t, "survey.eml")
	st := &countingStore{raw: map[string][]byte{}, opens: map[string]int{}}
	msgs := make([]store.Message, 10)
	for i := range msgs {
		id := fmt.Sprintf("M%d", i)
		st.raw[id] = raw
		msgs[i] = store.Message{ID: id, HeaderLen: int64(hl), Size: int64(len(raw))}
	}
	c := NewCache(4, 1<<20)
	for range 50 {
		if _, err := c.Get(context.Background(), st, msgs[0]); err != nil {
			t.Fatal(err)
		}
	}
	if st.opens["M0"] != 1 {
		t.Errorf("M0 opened %d times for 50 copies, want 1", st.opens["M0"])
	}
	for _, m := range msgs {
		if _, err := c.Get(context.Background(), st, m); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.m) > 4 || c.bytes > 1<<20 {
		t.Errorf("cache holds %d entries, %d bytes; bounds 4 and %d", len(c.m), c.bytes, 1<<20)
	}
	if _, ok := c.m["M9"]; !ok {
		t.Error("the newest entry was evicted")
	}

	small := NewCache(100, 3*len(raw))
	for _, m := range msgs {
		if _, err := small.Get(context.Background(), st, m); err != nil {
			t.Fatal(err)
		}
	}
	if small.bytes > 3*len(raw) {
		t.Errorf("cache holds %d bytes, bound %d", small.bytes, 3*len(raw))
	}
	if _, err := small.Get(context.Background(), st, store.Message{ID: "missing", HeaderLen: 1, Size: 2}); err == nil {
		t.Error("a missing message loaded")
	}
}

// A Source's size, what the cache budgets it at, covers the memory it
// holds once whom it shows is worked out.
func TestSourceCost(t *testing.T) {
	for _, name := range []string{"survey.eml", "bench"} {
		raw, hl := loadEML(t, "survey.eml")
		if name == "bench" {
			raw, hl = benchMessage(64 << 10)
		}
		msg := store.Message{ID: "M1", HeaderLen: int64(hl), Size: int64(len(raw))}
		for i := range 100 {
			msg.Envelope.Recipients = append(msg.Envelope.Recipients, store.Recipient{Addr: fmt.Sprintf("customer%03d@example.net", i)})
		}
		const n = 20
		keep := make([]*Source, 0, n)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range n {
			src, err := ReadSource(bytes.NewReader(raw), msg)
			if err != nil {
				t.Fatal(err)
			}
			src.People()
			keep = append(keep, src)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		held := int(after.HeapAlloc-before.HeapAlloc) / n
		t.Logf("%s: header %d bytes, held %d bytes per source (%.1f×), counted %d", name, hl, held, float64(held)/float64(hl), keep[0].size)
		if keep[0].size < held {
			t.Errorf("%s: a source is counted as %d bytes but holds %d", name, keep[0].size, held)
		}
	}
}
