package yamlnode

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func parse(t *testing.T, text string) *yaml.Node {
	t.Helper()
	n, err := Parse("f.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// errs returns the messages of a Decoder's errors, each checked to be an
// *Error with the file and a line.
func errs(t *testing.T, d *Decoder) []string {
	t.Helper()
	var out []string
	err := d.Err()
	if err == nil {
		return nil
	}
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	for _, e := range list {
		var ye *Error
		if !errors.As(e, &ye) || ye.File != "f.yaml" || ye.Line == 0 {
			t.Errorf("%v (%T): want an *Error with file and line", e, e)
		}
		out = append(out, e.Error())
	}
	return out
}

func TestParse(t *testing.T) {
	if n, err := Parse("f.yaml", nil); err != nil || !IsNull(n) {
		t.Errorf("empty text: %v, %v; want a null node", n, err)
	}
	_, err := Parse("f.yaml", []byte("a: [\n"))
	var ye *Error
	if !errors.As(err, &ye) || ye.File != "f.yaml" || ye.Line == 0 {
		t.Errorf("syntax error %v: want an *Error with file and line", err)
	}
}

func TestFields(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"known keys", "name: a\nwhen: b\n", nil},
		{"typo", "name: a\nwehn: b\n", []string{`f.yaml:2: rule: unknown key "wehn" (did you mean "when"?)`}},
		{"far from any key", "name: a\ncolour: b\n", []string{`f.yaml:2: rule: unknown key "colour"; known keys: name, when`}},
		{"twice", "name: a\nname: b\n", []string{`f.yaml:2: rule: key "name" given twice (first on line 1)`}},
		{"not a mapping", "[a, b]\n", []string{`f.yaml:1: rule: expected a mapping with keys name, when, got a list`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Decoder{File: "f.yaml"}
			f := d.Fields(parse(t, tc.text), "rule", "name", "when")
			if got := errs(t, d); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors %q, want %q", got, tc.want)
			}
			if tc.want == nil && (f["name"] == nil || f["when"] == nil) {
				t.Errorf("fields %v", f)
			}
		})
	}
}

func TestStrAndStrs(t *testing.T) {
	d := &Decoder{File: "f.yaml"}
	n := parse(t, "one: a\nlist: [b, c]\nnull: ~\nmap: {x: y}\nbad: [d, {e: f}]\n")
	f := d.Fields(n, "t", "one", "list", "null", "map", "bad")
	if s, ok := d.Str(f["one"], "one"); !ok || s != "a" {
		t.Errorf("Str = %q, %v", s, ok)
	}
	if got := d.Strs(f["one"], "one"); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("Strs of a scalar = %q", got)
	}
	if got := d.Strs(f["list"], "list"); !reflect.DeepEqual(got, []string{"b", "c"}) {
		t.Errorf("Strs = %q", got)
	}
	if d.Failed() {
		t.Fatal(d.Err())
	}
	d.Str(f["null"], "null")
	d.Str(f["map"], "map")
	d.Strs(f["map"], "map")
	d.Strs(f["bad"], "bad")
	want := []string{
		`f.yaml:3: null: expected a value, got nothing`,
		`f.yaml:4: map: expected a value, got a mapping`,
		`f.yaml:4: map: expected a list, got a mapping`,
		`f.yaml:5: bad: expected a value, got a mapping`,
	}
	if got := errs(t, d); !reflect.DeepEqual(got, want) {
		t.Errorf("errors\n%q\nwant\n%q", got, want)
	}
}

type word string

func (w *word) UnmarshalYAML(n *yaml.Node) error {
	if n.Value != "hello" {
		return Errorf(n, "invalid word %q", n.Value)
	}
	*w = word(n.Value)
	return nil
}

type inner struct {
	Count int     `yaml:"count"`
	Ratio float64 `yaml:"ratio"`
	On    *bool   `yaml:"on"`
}

type item struct {
	Name  string `yaml:"name"`
	Inner inner  `yaml:"inner"`
}

type outer struct {
	Title  string         `yaml:"title"`
	Word   word           `yaml:"word"`
	Items  []item         `yaml:"items" item:"thing"`
	Tags   []string       `yaml:"tags"`
	Extra  map[string]int `yaml:"extra"`
	Raw    yaml.Node      `yaml:"raw"`
	Hidden string         `yaml:"-"`
	Auto   string         // yaml's default key: auto
	Embed  `yaml:",inline"`
}

type Embed struct {
	Shared string `yaml:"shared"`
}

func TestStrict(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"all good", "title: t\nword: hello\nitems:\n  - name: a\n    inner: {count: 3, ratio: 0.5, on: true}\ntags: [x]\nextra: {a: 1}\nraw: {anything: [goes]}\nauto: x\nshared: y\n", nil},
		{"nulls are absent", "title:\nitems: ~\ninner:\n", []string{`f.yaml:3: configuration: unknown key "inner"; known keys: auto, extra, items, raw, shared, tags, title, word`}},
		{"unknown at the top", "titel: t\n", []string{`f.yaml:1: configuration: unknown key "titel" (did you mean "title"?)`}},
		{"a \"-\" field is no key", "hidden: x\n", []string{`f.yaml:1: configuration: unknown key "hidden"; known keys: auto, extra, items, raw, shared, tags, title, word`}},
		{"in a named element", "items:\n  - name: a\n    inner: {cont: 1}\n", []string{`f.yaml:3: thing "a" inner: unknown key "cont" (did you mean "count"?)`}},
		{"in an unnamed element", "items:\n  - {}\n  - inner: {count: x}\n", []string{`f.yaml:3: thing 2 inner.count: expected a whole number, got "x"`}},
		{"a fraction for a count", "items:\n  - {name: a, inner: {count: 1.5}}\n", []string{`f.yaml:2: thing "a" inner.count: expected a whole number, got "1.5"`}},
		{"text for a number", "items:\n  - {name: a, inner: {ratio: half}}\n", []string{`f.yaml:2: thing "a" inner.ratio: expected a number, got "half"`}},
		{"text for a bool", "items:\n  - {name: a, inner: {on: maybe}}\n", []string{`f.yaml:2: thing "a" inner.on: expected true or false, got "maybe"`}},
		{"list for a value", "title: [a]\n", []string{`f.yaml:1: title: expected a value, got a list`}},
		{"value for a list", "tags: x\n", []string{`f.yaml:1: tags: expected a list, got "x"`}},
		{"mapping in a list of values", "tags: [a, {b: c}]\n", []string{`f.yaml:1: tags item 2: expected a value, got a mapping`}},
		{"value for a struct", "items: [x]\n", []string{`f.yaml:1: thing 1: expected a mapping with keys inner, name, got "x"`}},
		{"map values", "extra: {a: 1, b: x, a: 2}\n", []string{`f.yaml:1: extra.b: expected a whole number, got "x"`, `f.yaml:1: extra: key "a" given twice (first on line 1)`}},
		{"an unmarshaler's error", "word: bye\n", []string{`f.yaml:1: invalid word "bye"`}},
		{"twice", "title: a\ntitle: b\n", []string{`f.yaml:2: configuration: key "title" given twice (first on line 1)`}},
		{"merge into an element", "items:\n  - &b {name: a}\n  - <<: *b\n    nmae: b\n", []string{`f.yaml:4: thing 2: unknown key "nmae" (did you mean "name"?)`}},
		{"merge of a bad mapping", "items:\n  - <<: {nmae: a}\n", []string{`f.yaml:2: thing 1: unknown key "nmae" (did you mean "name"?)`}},
		{"all errors at once", "titel: a\ntags: x\nword: bye\n", []string{
			`f.yaml:1: configuration: unknown key "titel" (did you mean "title"?)`,
			`f.yaml:2: tags: expected a list, got "x"`,
			`f.yaml:3: invalid word "bye"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Decoder{File: "f.yaml"}
			n := parse(t, tc.text)
			d.Strict(n, reflect.TypeFor[outer](), "")
			if got := errs(t, d); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors\n%q\nwant\n%q", got, tc.want)
			}
			if tc.want == nil {
				var o outer
				if !d.Decode(n, &o) {
					t.Fatalf("Decode after a clean Strict: %v", d.Err())
				}
				if o.Items[0].Inner.Count != 3 || o.Word != "hello" || o.Auto != "x" || o.Shared != "y" {
					t.Errorf("decoded %+v", o)
				}
			}
		})
	}
}

func TestLine(t *testing.T) {
	n := parse(t, "a: 1\nb:\n  - x\n  - c: 2\n    d: 3\n")
	for _, tc := range []struct {
		path []any
		want int
	}{
		{nil, 1},
		{[]any{"a"}, 1},
		{[]any{"b", 1, "d"}, 5},
		{[]any{"b", 1}, 4},
		{[]any{"b", 7}, 2},            // no such element: its list's key
		{[]any{"b", 1, "missing"}, 4}, // no such key: its mapping
		{[]any{"a", "deeper", 0}, 1},  // a scalar has no keys
	} {
		if got := Line(n, tc.path...); got != tc.want {
			t.Errorf("Line(%v) = %d, want %d", tc.path, got, tc.want)
		}
	}
	if Line(nil, "a") != 0 {
		t.Error("Line of no file must be 0")
	}
}

func TestClosest(t *testing.T) {
	known := []string{"address", "tls", "tls_cert", "limits"}
	for in, want := range map[string]string{"adress": "address", "tsl": "tls", "tls_crt": "tls_cert", "colour": "", "limit": "limits"} {
		if got := Closest(in, known); got != want {
			t.Errorf("Closest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestErrorText(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{File: "f.yaml", Line: 3, Msg: "m"}, "f.yaml:3: m"},
		{Error{Line: 3, Msg: "m"}, "line 3: m"},
		{Error{File: "f.yaml", Msg: "m"}, "f.yaml: m"},
		{Error{Msg: "m"}, "m"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.e, got, tc.want)
		}
	}
	if Describe(nil) != "nothing" {
		t.Error("Describe(nil)")
	}
	long := &yaml.Node{Kind: yaml.ScalarNode, Value: strings.Repeat("x", 100)}
	if got := Describe(long); got != `"`+strings.Repeat("x", 40)+`…"` {
		t.Errorf("Describe of a long value = %s, want it cut at 40 characters", got)
	}
}
