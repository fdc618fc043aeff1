package yamlnode

import (
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	nodeType        = reflect.TypeFor[yaml.Node]()
)

// Strict checks n against the Go type t that it will be decoded into, the
// way yaml.v3's decoder fills it (struct fields by their `yaml:` tags), and
// records every unknown key (with the key it was probably meant to be), key
// given twice, and value of the wrong kind, in the file's words. A field of
// type yaml.Node is left to its owner to check. Types with an UnmarshalYAML
// method are decoded here once, so their errors are found with the others.
//
// A slice field's elements are named in errors by the field's `item:` tag
// and their name: key (`listener "smtp"`), or their position (`listener
// 2`). what names n in errors ("" for the top of the file).
//
// After a Strict that recorded no error, yaml.Node.Decode cannot fail on
// unknown keys, duplicates or types: it only copies.
func (d *Decoder) Strict(n *yaml.Node, t reflect.Type, what string) {
	d.check(n, t, what, "")
}

func (d *Decoder) check(n *yaml.Node, t reflect.Type, what, item string) {
	n = Deref(n)
	if IsNull(n) || t == nodeType {
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if err := reflect.New(t).Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			if _, ok := err.(*Error); !ok {
				err = Errorf(n, "%s: %v", orTop(what), err)
			}
			d.Add(err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		d.check(n, t.Elem(), what, item)
	case reflect.Struct:
		fields := fieldsOf(t)
		if n.Kind != yaml.MappingNode {
			d.Errorf(n, "%s: expected a mapping with keys %s, got %s", orTop(what), strings.Join(keysOf(fields), ", "), Describe(n))
			return
		}
		d.mapping(n, fields, what, map[string]*yaml.Node{})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.Errorf(n, "%s: expected a list, got %s", orTop(what), Describe(n))
			return
		}
		for i, c := range n.Content {
			d.check(c, t.Elem(), itemName(what, item, i, c), "")
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.Errorf(n, "%s: expected a mapping, got %s", orTop(what), Describe(n))
			return
		}
		seen := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if prev := seen[k.Value]; prev != nil {
				d.Errorf(k, "%s: key %q given twice (first on line %d)", orTop(what), k.Value, prev.Line)
				continue
			}
			seen[k.Value] = k
			d.check(n.Content[i+1], t.Elem(), join(what, k.Value), "")
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.Errorf(n, "%s: expected a value, got %s", orTop(what), Describe(n))
		}
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			d.Errorf(n, "%s: expected true or false, got %s", orTop(what), Describe(n))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		// yaml.v3 would truncate 1.5 to 1: a count is written whole.
		v := reflect.New(t)
		if n.Kind != yaml.ScalarNode || n.Tag == "!!float" || n.Decode(v.Interface()) != nil {
			d.Errorf(n, "%s: expected a whole number, got %s", orTop(what), Describe(n))
		}
	case reflect.Float32, reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || n.Decode(&f) != nil {
			d.Errorf(n, "%s: expected a number, got %s", orTop(what), Describe(n))
		}
	}
}

// mapping checks the keys and values of a mapping decoded into a struct
// with the given fields. A merge key (<<: *defaults) brings in the keys of
// the mappings it names, as the decoder does; keys of the mapping itself
// may override them.
func (d *Decoder) mapping(n *yaml.Node, fields map[string]field, what string, seen map[string]*yaml.Node) {
	known := keysOf(fields)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			d.merge(v, fields, what)
			continue
		}
		if !d.key(k, seen, orTop(what), known) {
			continue
		}
		f := fields[k.Value]
		d.check(v, f.typ, join(what, k.Value), f.item)
	}
}

func (d *Decoder) merge(v *yaml.Node, fields map[string]field, what string) {
	v = Deref(v)
	var maps []*yaml.Node
	switch v.Kind {
	case yaml.MappingNode:
		maps = []*yaml.Node{v}
	case yaml.SequenceNode:
		for _, m := range v.Content {
			maps = append(maps, Deref(m))
		}
	}
	for _, m := range maps {
		if m == nil || m.Kind != yaml.MappingNode {
			d.Errorf(v, "%s: <<: merges mappings only, got %s", orTop(what), Describe(m))
			continue
		}
		d.mapping(m, fields, what, map[string]*yaml.Node{})
	}
}

// field is what Strict needs of a struct field: its type and how its
// list elements are called.
type field struct {
	typ  reflect.Type
	item string
}

// fieldsOf lists a struct's keys as yaml.v3 names them: the `yaml:` tag's
// name, else the field name in lower case; "-" and unexported fields are
// not keys; ",inline" structs lend theirs.
func fieldsOf(t reflect.Type) map[string]field {
	out := map[string]field{}
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") {
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, f := range fieldsOf(ft) {
					out[k] = f
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		out[name] = field{typ: sf.Type, item: sf.Tag.Get("item")}
	}
	return out
}

// keysOf lists the keys sorted, so that an error lists them the same way
// each time.
func keysOf(fields map[string]field) []string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// itemName names the i-th element of a list: by its `item:` label and its
// name: key, or its position from 1.
func itemName(what, item string, i int, n *yaml.Node) string {
	if item == "" {
		return orTop(what) + " item " + strconv.Itoa(i+1)
	}
	if name := MapValue(n, "name"); name != "" {
		return item + " " + strconv.Quote(name)
	}
	return item + " " + strconv.Itoa(i+1)
}

// join names a key inside what: upstream.tls for a section, listener
// "smtp" tls inside a named list element.
func join(what, key string) string {
	switch {
	case what == "":
		return key
	case strings.HasSuffix(what, `"`) || strings.IndexAny(what[len(what)-1:], "0123456789") == 0:
		return what + " " + key
	}
	return what + "." + key
}

func orTop(what string) string {
	if what == "" {
		return "configuration"
	}
	return what
}
