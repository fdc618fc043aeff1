package yamlnode

import (
	"bytes"
	"errors"
	"io"

	"go.yaml.in/yaml/v3"
)

// Parse reads YAML text into its document node; file names it in errors.
// Empty text gives a zero node (Kind 0), not an error: no file at all is a
// valid configuration.
func Parse(file string, b []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fromYAML(file, err)
	}
	return &doc, nil
}

// Deref follows aliases and steps into a document to the node that holds
// the value; nil for nil.
func Deref(n *yaml.Node) *yaml.Node {
	for n != nil {
		switch {
		case n.Kind == yaml.AliasNode:
			n = n.Alias
		case n.Kind == yaml.DocumentNode && len(n.Content) > 0:
			n = n.Content[0]
		default:
			return n
		}
	}
	return nil
}

// IsNull reports whether n is absent, empty or an explicit null.
func IsNull(n *yaml.Node) bool {
	n = Deref(n)
	return n == nil || n.Kind == 0 || n.Kind == yaml.DocumentNode ||
		n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// MapValue peeks at a scalar in a mapping, to name the mapping in errors
// (a listener by its name:) before it is decoded.
func MapValue(n *yaml.Node, key string) string {
	n = Deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if v := Deref(n.Content[i+1]); n.Content[i].Value == key && v != nil && v.Kind == yaml.ScalarNode {
			return v.Value
		}
	}
	return ""
}

// Item is the i-th element of a sequence node (or n itself when it is not
// a sequence that long), for the line of an error about one element.
func Item(n *yaml.Node, i int) *yaml.Node {
	n = Deref(n)
	if n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
		return n.Content[i]
	}
	return n
}

// Line finds the line of the node at path (map keys and sequence indexes)
// under root, so an error found after decoding can point at its line: the
// line of the deepest key or element of path that exists.
func Line(root *yaml.Node, path ...any) int {
	n := Deref(root)
	if n == nil {
		return 0
	}
	line := n.Line
	for _, p := range path {
		switch k := p.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return line
			}
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == k {
					next = n.Content[i+1]
					line = n.Content[i].Line
				}
			}
			if next == nil {
				return line
			}
			n = Deref(next)
		case int:
			if n.Kind != yaml.SequenceNode || k >= len(n.Content) {
				return line
			}
			n = Deref(n.Content[k])
			line = n.Line
		}
	}
	return line
}
