package policy

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// show writes a recipient compactly: "to: Name <address>".
func show(r Recipient) string {
	if r.Name == "" {
		return r.Field + ": <" + r.Address + ">"
	}
	return r.Field + ": " + r.Name + " <" + r.Address + ">"
}

func readHeader(t testing.TB, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return HeaderBlock(raw)
}

// TestParseVisible is the specification of what counts as visible: one
// golden message per edge case in testdata/visible.
func TestParseVisible(t *testing.T) {
	tests := []struct {
		file    string
		want    []string // recipients, in order
		domains []string
		// wantErr, when set, must appear in ParseError; otherwise there
		// must be none.
		wantErr string
	}{
		{file: "several-to-fields.eml", // every To: field counts, not just the first
			want:    []string{"to: Anna Example <anna@example.com>", "to: <bob@example.org>", "cc: Carol <carol@example.net>"},
			domains: []string{"example.com", "example.net", "example.org"}},
		{file: "cc-only.eml",
			want: []string{"cc: <anna@example.com>", "cc: <bob@example.org>"}},
		{file: "undisclosed.eml", // an empty group shows nobody, and is not an error
			want: nil},
		{file: "group.eml", // group members are visible; an empty group adds nobody
			want: []string{"to: Anna <anna@example.net>", "to: <bob@example.org>", "to: <carol@example.com>"}},
		{file: "rfc2047-utf8.eml",
			want: []string{"to: Jörg Müller <joerg@example.net>", "to: Анна <anna@example.org>"}},
		{file: "rfc2047-latin1.eml",
			want: []string{"to: François Lévy <francois@example.org>", "to: Renée <renee@example.com>"}},
		{file: "quoted-commas.eml", // commas and semicolons inside quotes do not split
			want: []string{"to: Doe, Jane <jane@example.com>", `to: Smith, John (Sales); "JS" <john@example.org>`}},
		{file: "comments.eml", // a comment names an address that has no display name
			want: []string{"to: Jane Doe <jane@example.com>", "to: John <john@example.org>"}},
		{file: "obsolete-route.eml", // RFC 5322 4.4 obs-route is dropped
			want: []string{"to: Jane <jane@example.com>"}},
		{file: "obsolete-spaces.eml", // obs-local-part / obs-domain with spaces; obs-phrase with a dot
			want: []string{"to: <jane.doe@example.com>", "to: John Q. Public <john.q.public@example.org>"}},
		{file: "dotted-local-part.eml", // invalid even as obsolete syntax, but shown by mail readers
			want: []string{"to: <andy@example.com>", "to: <s..palmer@example.com>", "to: <.lead@example.org>", "to: <trail.@example.net>"}},
		{file: "rfc2822-appendix.eml", // comments everywhere, a group, an empty group
			want: []string{"to: Chris Jones <c@public.example>", "to: <joe@example.org>", "to: John <jdoe@one.test>"}},
		{file: "at-in-display-name.eml",
			want: []string{"to: <smith@example.com>", "to: Mikel@Lindsaar <raasdnil@example.com>", "to: <tom@example.com>"}},
		{file: "semicolons.eml", // ";" as separator, as some mailers write it
			want: []string{"to: <anna@example.com>", "to: <bob@example.org>"}},
		{file: "missing-angle.eml", // read as clients do: the words before the address are its name
			want: []string{"to: Jane Doe <jane@example.com>"}},
		{file: "unparsable-cc.eml", // a field that does not parse: every address-like token in it counts
			want: []string{"to: <anna@example.com>", "cc: <bob@example.org>", "cc: <carol@example.net>"}},
		{file: "idn.eml", // domains in one (Unicode, lowercase) form; UTF-8 local parts kept
			want:    []string{"to: Jörg <jörg@bücher.example>", "to: <other@bücher.example>", "to: Zürich <info@zürich.example>"},
			domains: []string{"bücher.example", "zürich.example"}},
		{file: "folded.eml",
			want: []string{"to: <anna@example.com>", "to: <bob@example.org>", "to: Carol Example <carol@example.net>"}},
		{file: "duplicates.eml", // compared case-insensitively, counted once, first field wins, first name given
			want: []string{"to: JANE <Jane@example.com>", "cc: <bob@example.org>"}},
		{file: "empty-fields.eml", // empty To:, comment-only Cc:, Bcc: is never visible
			want: nil},
		{file: "unknown-charset.eml", // an unknown charset does not fail the list
			want: []string{"to: Jane <jane@example.com>"}},
		{file: "field-name-case.eml",
			want: []string{"to: <anna@example.com>", "cc: <bob@example.org>"}},
		{file: "malformed-header.eml", // a stray line does not blind the reader to the fields after it
			want: []string{"to: <anna@example.com>", "cc: <bob@example.org>"}},
		{file: "raw-latin1.eml", // undeclared 8-bit names are read as Latin-1
			want: []string{"to: André <andre@example.com>", "to: Jürgen <juergen@example.org>"}},
		{file: "crlf.eml",
			want: []string{"to: <anna@example.com>", "to: <bob@example.org>", "cc: <carol@example.net>"}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(strings.TrimSuffix(tt.file, ".eml"), func(t *testing.T) {
			v := ParseVisible(readHeader(t, filepath.Join("testdata/visible", tt.file)), nil)
			var got []string
			for _, r := range v.Recipients {
				got = append(got, show(r))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("recipients:\n got  %q\n want %q", got, tt.want)
			}
			if tt.domains != nil && !slices.Equal(v.Domains, tt.domains) {
				t.Errorf("domains: got %q, want %q", v.Domains, tt.domains)
			}
			switch {
			case tt.wantErr == "" && v.ParseError != "":
				t.Errorf("unexpected ParseError %q", v.ParseError)
			case tt.wantErr != "" && !strings.Contains(v.ParseError, tt.wantErr):
				t.Errorf("ParseError = %q, want it to mention %q", v.ParseError, tt.wantErr)
			}
			checkVisibleInvariants(t, v)
		})
	}
	files, _ := filepath.Glob("testdata/visible/*.eml")
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s has no expectation in this table", f)
		}
	}
}

func checkVisibleInvariants(t testing.TB, v Visible) {
	t.Helper()
	if v.Count != len(v.Recipients) {
		t.Fatalf("Count %d != len(Recipients) %d", v.Count, len(v.Recipients))
	}
	if v.Internal+v.External != v.Count {
		t.Fatalf("Internal %d + External %d != Count %d", v.Internal, v.External, v.Count)
	}
	if !slices.IsSorted(v.Domains) || len(slices.Compact(slices.Clone(v.Domains))) != len(v.Domains) {
		t.Fatalf("Domains not sorted and distinct: %q", v.Domains)
	}
	keys := map[string]bool{}
	for _, r := range v.Recipients {
		switch {
		case r.Address == "":
			t.Fatalf("recipient without an address %+v", r)
		case r.Domain == "" && strings.Contains(r.Address, "@") && !strings.HasSuffix(r.Address, "@"):
			t.Fatalf("qualified recipient without a domain %+v", r)
		case r.Domain != "" && !strings.HasSuffix(r.Address, "@"+r.Domain):
			t.Fatalf("bad recipient %+v", r)
		}
		if _, ok := slices.BinarySearch(v.Domains, r.Domain); r.Domain != "" && !ok {
			t.Fatalf("domain %q of %q missing from Domains", r.Domain, r.Address)
		}
		if keys[addrKey(r.Address)] {
			t.Fatalf("%q listed twice", r.Address)
		}
		keys[addrKey(r.Address)] = true
		if r.Field != "" && (r.Field != strings.ToLower(r.Field) || strings.ContainsAny(r.Field, " :")) {
			t.Fatalf("field %q", r.Field)
		}
		if r.Elsewhere != (r.Field != "to" && r.Field != "cc") && r.Field != "to" && r.Field != "cc" {
			t.Fatalf("recipient shown in %q is not elsewhere: %+v", r.Field, r)
		}
	}
	if v.Elsewhere > v.Count || v.InNames > v.Count || v.Listed > v.Count || v.Consumer > v.Count {
		t.Fatalf("sub-counts over the count: %+v", v)
	}
	if v.ExternalDomains > v.Organisations || len(v.Domains) > v.Organisations+1 && v.Consumer == 0 && v.Organisations < len(v.Domains) {
		t.Fatalf("organisations %d, external %d, domains %d", v.Organisations, v.ExternalDomains, len(v.Domains))
	}
}

func TestInternalDomains(t *testing.T) {
	h := []byte("To: a@example.com, b@Example.COM, c@sales.example.com, d@example.org, e@eu.brand.example\r\n\r\n")
	v := ParseVisible(h, []string{"example.com", "*.brand.example"})
	var internal []string
	for _, r := range v.Recipients {
		if r.Internal {
			internal = append(internal, r.Address)
		}
	}
	// Exact domains match exactly (a subdomain may be someone else's);
	// "*." opts in to subdomains.
	want := []string{"a@example.com", "b@example.com", "e@eu.brand.example"}
	if !slices.Equal(internal, want) {
		t.Errorf("internal = %q, want %q", internal, want)
	}
	if v.Internal != 3 || v.External != 2 || v.ExternalDomains != 2 {
		t.Errorf("internal %d external %d external domains %d, want 3 2 2", v.Internal, v.External, v.ExternalDomains)
	}
}

func TestEnvelopeComparison(t *testing.T) {
	v := ParseVisible([]byte("To: Jane <Jane.Doe@Example.com>, shown@example.org\r\n\r\n"), nil)
	env := []string{"<jane.doe@example.com>", "hidden@example.net", "HIDDEN@example.net", `"quoted"@example.net`}
	notIn := v.NotInEnvelope(env)
	if len(notIn) != 1 || notIn[0].Address != "shown@example.org" {
		t.Errorf("NotInEnvelope = %+v, want only shown@example.org", notIn)
	}
	bcc := v.NotVisible(env)
	want := []string{"hidden@example.net", `"quoted"@example.net`}
	if !slices.Equal(bcc, want) {
		t.Errorf("NotVisible = %q, want %q (each true Bcc recipient once)", bcc, want)
	}
	if k1, k2 := addrKey(`"quoted"@example.net`), addrKey("quoted@EXAMPLE.net"); k1 != k2 {
		t.Errorf("quoted local part: %q != %q", k1, k2)
	}
}

func TestHeaderMap(t *testing.T) {
	h := []byte("Precedence: bulk\r\nList-Unsubscribe: <mailto:unsub@brand.example>\r\nX-Tag: one\r\nx-tag: two\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n  from us\r\n\r\n")
	v := ParseVisible(h, nil)
	if got := v.Header["precedence"]; !slices.Equal(got, []string{"bulk"}) {
		t.Errorf("precedence = %q", got)
	}
	if got := v.Header["x-tag"]; !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("x-tag = %q, want both values in order", got)
	}
	if got := v.Header["subject"]; !slices.Equal(got, []string{"Grüße from us"}) {
		t.Errorf("subject = %q, want unfolded and decoded", got)
	}
	if _, ok := v.Header["list-unsubscribe"]; !ok {
		t.Error("list-unsubscribe missing")
	}
}

func TestParseVisibleBounds(t *testing.T) {
	t.Run("too many addresses", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("To: ")
		for i := range MaxVisible + 10 {
			if i > 0 {
				b.WriteString(",\r\n ")
			}
			b.WriteString("u")
			b.WriteString(strings.Repeat("x", i%7))
			b.WriteString(strconv.Itoa(i))
			b.WriteString("@example.com")
		}
		b.WriteString("\r\n\r\n")
		v := ParseVisible([]byte(b.String()), nil)
		if !v.Truncated || v.Count != MaxVisible {
			t.Errorf("Truncated=%v Count=%d, want true %d", v.Truncated, v.Count, MaxVisible)
		}
	})
	t.Run("header block too large", func(t *testing.T) {
		h := []byte("X-Big: " + strings.Repeat("a", MaxHeaderBytes) + "\r\n\r\n")
		if v := ParseVisible(h, nil); v.ParseError == "" {
			t.Error("no ParseError for an oversized header block")
		}
	})
	t.Run("no header", func(t *testing.T) {
		if v := ParseVisible(nil, nil); v.ParseError != "" || v.Count != 0 {
			t.Errorf("empty header: %+v", v)
		}
	})
}

func TestParseErrorDoesNotEchoInput(t *testing.T) {
	v := ParseVisible([]byte("To: secret\x01person@example.com\r\n\r\n"), nil)
	if v.ParseError == "" {
		t.Skip("accepted")
	}
	if strings.Contains(v.ParseError, "secret") {
		t.Errorf("ParseError %q repeats the input", v.ParseError)
	}
}
