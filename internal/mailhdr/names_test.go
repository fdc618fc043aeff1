package mailhdr

import (
	"fmt"
	"slices"
	"testing"
)

func TestNameIndexFind(t *testing.T) {
	var x nameIndex
	x.add("anna", 0)
	x.add("anna maria", 1)
	x.add("anna maria", 1) // a repeat: found once
	x.add("maria lopez", 2)
	x.add("anna maria", 3) // another person of the same name
	for i := range 1000 {
		x.add(fmt.Sprintf("customer %d example", i), 10+i)
	}
	cases := []struct {
		text string
		want []string // "who:key", in order found
	}{
		{"hello anna maria lopez", []string{"0:anna", "1:anna maria", "3:anna maria", "2:maria lopez"}},
		{"anna anna anna", []string{"0:anna"}},
		{"maria", nil},
		{"customer 7 example and customer 999 example", []string{"17:customer 7 example", "1009:customer 999 example"}},
		{"customer 7", nil},
		{"customer 1000 example", nil},
		{"", nil},
	}
	for _, c := range cases {
		var got []string
		x.find(words(c.text), func(who int, key string) { got = append(got, fmt.Sprintf("%d:%s", who, key)) })
		if !slices.Equal(got, c.want) {
			t.Errorf("find(%q) = %q, want %q", c.text, got, c.want)
		}
	}
}

func TestSameWords(t *testing.T) {
	for _, c := range []struct {
		key  string
		ws   []string
		want bool
	}{
		{"anna maria", []string{"anna", "maria"}, true},
		{"anna maria", []string{"anna"}, false},
		{"anna", []string{"anna", "maria"}, false},
		{"annamaria", []string{"anna", "maria"}, false},
		{"anna  maria", []string{"anna", "maria"}, false},
	} {
		if got := sameWords(c.key, c.ws); got != c.want {
			t.Errorf("sameWords(%q, %q) = %v", c.key, c.ws, got)
		}
	}
}
