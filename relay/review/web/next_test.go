package web

import "testing"

// TestLocalNextCleans: a next= inside the pages comes back cleaned, the way
// a browser would resolve it.
func TestLocalNextCleans(t *testing.T) {
	for in, want := range map[string]string{
		"/quarantine":                        "/quarantine",
		"/quarantine/m/06H3?x=1":             "/quarantine/m/06H3?x=1",
		"/quarantine/./m/../audit?actor=bob": "/quarantine/audit?actor=bob",
		"/quarantine/m/a%2Fb":                "/quarantine/m/a/b",
		"/quarantine/../../evil":             "/quarantine",
		"/quarantine/m/../../evil":           "/quarantine",
		"/quarantine/../quarantine/audit":    "/quarantine/audit",
		"/quarantine/x/../signin":            "/quarantine",
	} {
		if got := localNext(in); got != want {
			t.Errorf("localNext(%q) = %q, want %q", in, got, want)
		}
	}
}
