package mailhdr

import (
	"slices"
	"strings"
	"testing"
)

// People says whom each field shows: the specification of "visible" that
// the policy, the copies and the unsafe-copy guard share.
func TestPeople(t *testing.T) {
	envelope := []string{"zoe@alpha.example", "bob@beta.example", "chen@gamma.example"}
	cases := []struct {
		name   string
		header string
		// shows maps a field name to whom it shows but the originator's
		// and a list's own addresses (keys, sorted; "name:" and the
		// NameKey for a bare name).
		shows  map[string]string
		listed string // the listed people, sorted
	}{
		{"addressees and a reply list",
			"From: Brand <survey@brand.example>\r\nTo: Zoe Zimmer <zoe@alpha.example>\r\nReply-To: bob@beta.example, support@brand.example\r\n",
			map[string]string{"to": "zoe@alpha.example", "reply-to": "bob@beta.example"}, ""},
		{"the author's own addresses are nobody",
			"From: Zoe Zimmer <zoe@alpha.example>\r\nTo: bob@beta.example\r\nReply-To: zoe@alpha.example\r\n",
			map[string]string{"to": "bob@beta.example"}, ""},
		{"a list of others in a reply field",
			"From: survey@brand.example\r\nTo: zoe@alpha.example\r\nReply-To: one@x.example, two@y.example\r\nErrors-To: three@z.example\r\n",
			map[string]string{"to": "zoe@alpha.example", "reply-to": "one@x.example two@y.example"}, "one@x.example two@y.example"},
		{"a mailing list's own addresses are nobody",
			"From: a@x.example\r\nTo: python-list@python.example\r\nList-Post: <mailto:python-list@python.example>\r\nX-BeenThere: python-list@python.example\r\n",
			map[string]string{}, ""},
		{"the query of a List-Unsubscribe mailto",
			"From: survey@brand.example\r\nTo: zoe@alpha.example\r\nList-Unsubscribe: <mailto:u@brand.example?subject=bob%40beta.example>\r\n",
			map[string]string{"to": "zoe@alpha.example", "list-unsubscribe": "bob@beta.example"}, ""},
		{"names in free text: telling ones only",
			"From: survey@brand.example\r\nTo: Bob Barker <bob@beta.example>, Zoe <zoe@alpha.example>\r\nSubject: For Bob Barker and Zoe\r\n",
			map[string]string{"to": "bob@beta.example zoe@alpha.example", "subject": "bob@beta.example"}, ""},
		{"addresses in display names and group names",
			"From: survey@brand.example\r\nTo: \"zoe@alpha.example, bob@beta.example\" <survey@brand.example>\r\nCc: \"chen@gamma.example\":;\r\n",
			map[string]string{"to": "bob@beta.example zoe@alpha.example", "cc": "chen@gamma.example"}, ""},
		{"a bare name in an addressee field",
			"From: survey@brand.example\r\nTo: Mary Smith, zoe@alpha.example\r\nKeywords: Mary Smith\r\n",
			map[string]string{"to": "name:mary smith zoe@alpha.example", "keywords": "name:mary smith"}, ""},
		{"a line that is not a field, and a trace field",
			"From x Mon\r\n bob@beta.example\r\nReceived: by h for <chen@gamma.example>\r\nTo: zoe@alpha.example\r\n",
			map[string]string{"": "bob@beta.example", "to": "zoe@alpha.example"}, ""},
		{"a trace field after a bare CR is part of the field before",
			"From: s@brand.example\r\nSubject: hi\rReceived: chen@gamma.example\r\nTo: zoe@alpha.example\r\n",
			map[string]string{"received": "chen@gamma.example", "to": "zoe@alpha.example"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Read([]byte(c.header + "\r\n"))
			p := r.People("bounces@brand.example", envelope)
			got := map[string]string{}
			for i, e := range r.Entries {
				var keys []string
				for _, j := range p.Shows(i) {
					if !p.List[j].Own { // the originator's and a list's own: never another recipient
						keys = append(keys, p.List[j].Key)
					}
				}
				if len(keys) > 0 {
					slices.Sort(keys)
					got[e.Key()] = strings.Join(keys, " ")
				}
			}
			for k, v := range c.shows {
				if got[k] != v {
					t.Errorf("%q shows %q, want %q", k, got[k], v)
				}
				delete(got, k)
			}
			for k, v := range got {
				t.Errorf("%q shows %q, want nobody", k, v)
			}
			var listed []string
			for _, who := range p.List {
				if who.Listed {
					listed = append(listed, who.Key)
				}
			}
			slices.Sort(listed)
			if strings.Join(listed, " ") != c.listed {
				t.Errorf("listed %q, want %q", listed, c.listed)
			}
		})
	}
}

// A copy's own display name comes from the addressee fields' display names
// only; a comment in place of a display name, and names in reply fields,
// are names to match, never to show.
func TestAddresseeNames(t *testing.T) {
	r := Read([]byte("To: Zoe <zoe@alpha.example>, zoe@alpha.example (Bob Barker)\r\nReply-To: \"Support\" <zoe@alpha.example>\r\n\r\n"))
	p := r.People("", nil)
	i, ok := p.Index("ZOE@alpha.example")
	if !ok {
		t.Fatal("zoe not found")
	}
	if got := p.AddresseeNames(i); !slices.Equal(got, []string{"Zoe"}) {
		t.Errorf("addressee names %q, want [Zoe]", got)
	}
	if got := p.List[i].Names; !slices.Equal(got, []string{"Zoe", "Bob Barker", "Support"}) {
		t.Errorf("names %q, want [Zoe, Bob Barker, Support]", got)
	}
	if got := p.NamesIn("Dear zoe,"); len(got) != 1 || got[0] != i {
		t.Errorf("NamesIn = %v", got)
	}
}
