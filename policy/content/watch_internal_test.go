package content

import (
	"slices"
	"strings"
	"testing"
)

// referenceNames is the name rule written plainly, over the whole text at
// once: the words are the runs of word runes, trimmed and lowercased, empty
// ones and ones over 64 bytes left out, and a name is found where its words
// end a run of consecutive words. The watcher's fast paths (the ASCII runs,
// the filter in front of the last-word map, writes split anywhere) must
// find exactly what it finds.
func referenceNames(names []string, text string) []int {
	want, longest := map[string][]int{}, 0
	for i, n := range names {
		if ws := nameWords(n); qualifies(ws) {
			want[strings.Join(ws, " ")] = append(want[strings.Join(ws, " ")], i)
			longest = max(longest, len(ws))
		}
	}
	var words []string
	for _, f := range strings.FieldsFunc(text, func(r rune) bool { return !isWordRune(r) }) {
		if f = strings.ToLower(trimWord(f)); f != "" && len(f) <= 64 {
			words = append(words, f)
		}
	}
	found := map[int]bool{}
	for end := 1; end <= len(words); end++ {
		for start := max(0, end-longest); start < end; start++ {
			for _, i := range want[strings.Join(words[start:end], " ")] {
				found[i] = true
			}
		}
	}
	var out []int
	for i := range found {
		out = append(out, i)
	}
	slices.Sort(out)
	return out
}

func watcherNames(names []string, text string, cut int) []int {
	w := Watch{}
	for i, n := range names {
		w.Keys = append(w.Keys, strings.Repeat("x", i+1)+"@example.com")
		w.Names = append(w.Names, []string{n})
	}
	x := newWatcher(w)
	cut = min(max(cut, 0), len(text))
	x.write([]byte(text[:cut]))
	x.write([]byte(text[cut:]))
	x.brk()
	var out []int
	for i := range x.byName {
		out = append(out, i)
	}
	slices.Sort(out)
	return out
}

func TestWatcherAgreesWithReference(t *testing.T) {
	names := []string{"Anna Example", "Zoé Müller", "O'Brien-Smith", "Bartholomew", "Ann", "Maria Lopez"}
	for _, text := range []string{
		"Dear ANNA   example, hi", "maria LOPEZ!", "zoé\r\nMÜLLER.", "by o'brien-smith’s desk", "bartholomew", "Ann",
		"annaexample", "Anna Examples", "Anna Ex-ample", "Anna\u00a0Example", "Anna <b>Example</b>",
		"’Bartholomew’", "x" + strings.Repeat("y", 70) + " Bartholomew",
	} {
		for cut := 0; cut <= len(text); cut++ {
			got, want := watcherNames(names, text, cut), referenceNames(names, text)
			if !slices.Equal(got, want) {
				t.Fatalf("%q cut at %d: watcher found %v, reference %v", text, cut, got, want)
			}
		}
	}
}

func FuzzWatcher(f *testing.F) {
	f.Add("Anna Example|Zoé Müller", "Dear ANNA example and zoé müller", 7)
	f.Add("O'Brien", "’o'brien’s", 3)
	f.Fuzz(func(t *testing.T, names, text string, cut int) {
		if len(text) > 1<<12 {
			text = text[:1<<12]
		}
		ns := strings.Split(names, "|")
		if len(ns) > 8 {
			ns = ns[:8]
		}
		if got, want := watcherNames(ns, text, cut), referenceNames(ns, text); !slices.Equal(got, want) {
			t.Fatalf("names %q in %q cut at %d: watcher found %v, reference %v", ns, text, cut, got, want)
		}
	})
}
