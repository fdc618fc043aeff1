package yamlnode

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Decoder walks yaml nodes and collects every error it finds (not only
// the first), each an *Error with File and the line of the node.
type Decoder struct {
	// File names the file in errors.
	File string
	errs []error
}

// Errorf records an error at n's line.
func (d *Decoder) Errorf(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, &Error{File: d.File, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// ErrorAt records an error at a line found otherwise (a line inside a
// block scalar, say).
func (d *Decoder) ErrorAt(line int, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.File, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// Add records err as it is; an *Error without a file gets d's.
func (d *Decoder) Add(err error) {
	var e *Error
	if errors.As(err, &e) && e.File == "" {
		e.File = d.File
	}
	d.errs = append(d.errs, err)
}

// Failed reports whether any error has been recorded.
func (d *Decoder) Failed() bool { return len(d.errs) > 0 }

// Err is every error recorded, joined; nil if none.
func (d *Decoder) Err() error { return errors.Join(d.errs...) }

// Fields checks that n is a mapping with only the known keys, each once,
// and returns the value nodes by key; nil (with the error recorded) when n
// is not a mapping. what names the mapping in errors (`rule "a"`).
func (d *Decoder) Fields(n *yaml.Node, what string, known ...string) map[string]*yaml.Node {
	n = Deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		d.Errorf(n, "%s: expected a mapping with keys %s, got %s", what, strings.Join(known, ", "), Describe(n))
		return nil
	}
	out := map[string]*yaml.Node{}
	keys := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !d.key(k, keys, what, known) {
			continue
		}
		out[k.Value] = v
	}
	return out
}

// key checks one mapping key against the known ones and those seen before
// it in the same mapping, and records k as seen.
func (d *Decoder) key(k *yaml.Node, seen map[string]*yaml.Node, what string, known []string) bool {
	switch {
	case !slices.Contains(known, k.Value):
		if s := Closest(k.Value, known); s != "" {
			d.Errorf(k, "%s: unknown key %q (did you mean %q?)", what, k.Value, s)
		} else {
			d.Errorf(k, "%s: unknown key %q; known keys: %s", what, k.Value, strings.Join(known, ", "))
		}
		return false
	case seen[k.Value] != nil:
		d.Errorf(k, "%s: key %q given twice (first on line %d)", what, k.Value, seen[k.Value].Line)
		return false
	}
	seen[k.Value] = k
	return true
}

// Str decodes a scalar; null and collections are errors.
func (d *Decoder) Str(n *yaml.Node, what string) (string, bool) {
	n = Deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.Errorf(n, "%s: expected a value, got %s", what, Describe(n))
		return "", false
	}
	return n.Value, true
}

// Strs decodes a list of scalars; a single scalar is a list of one.
func (d *Decoder) Strs(n *yaml.Node, what string) []string {
	n = Deref(n)
	if n != nil && n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return []string{n.Value}
	}
	if n == nil || n.Kind != yaml.SequenceNode {
		d.Errorf(n, "%s: expected a list, got %s", what, Describe(n))
		return nil
	}
	var out []string
	for _, c := range n.Content {
		if s, ok := d.Str(c, what); ok {
			out = append(out, s)
		}
	}
	return out
}

// Describe says what a node is, in the words of the file: a mapping, a
// list, nothing, or the scalar itself.
func Describe(n *yaml.Node) string {
	n = Deref(n)
	switch {
	case IsNull(n):
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	}
	v := n.Value
	if r := []rune(v); len(r) > 40 {
		v = string(r[:40]) + "…" // enough to find it; the line says where
	}
	return fmt.Sprintf("%q", v)
}

// Decode decodes n into v as yaml.v3 does, recording its error if any;
// after Strict it is a copy that does not fail.
func (d *Decoder) Decode(n *yaml.Node, v any) bool {
	if err := n.Decode(v); err != nil {
		d.Add(fromYAML(d.File, err))
		return false
	}
	return true
}
