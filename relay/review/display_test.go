package review

import "testing"

func TestNeutralize(t *testing.T) {
	for in, want := range map[string]string{
		"Ann Example":         "Ann Example",
		"Ann \u202Eexe.txt":   "Ann [U+202E]exe.txt",
		"Bob\u200B":           "Bob[U+200B]",
		"\u2066isolate\u2069": "[U+2066]isolate[U+2069]",
		"esc \x1b[2J":         "esc [U+001B][2J",
		"tab\there":           "tab here",
		"line\u2028sep":       "line[U+2028]sep",
		"bad \xff utf8":       "bad \uFFFD utf8",
		"Zoé 山田 \U0001F600":   "Zoé 山田 \U0001F600",
	} {
		if got := Neutralize(in); got != want {
			t.Errorf("Neutralize(%q) = %q, want %q", in, got, want)
		}
	}
}
