// Package yamlnode is the one strict YAML layer of bccguard's
// configuration: the config file and its policy section are both read
// through it, so an unknown key, a key given twice or a value of the wrong
// type reads the same everywhere, with the file and line it was found on
// and in the words of the file ("listener \"smtp\": unknown key \"colour\""),
// never in the words of the Go types that hold it.
package yamlnode

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a configuration error with the line it was found on.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	case e.File != "":
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return e.Msg
}

// Errorf is an Error at n's line, without a file: the custom UnmarshalYAML
// methods return it, and the Decoder that called them adds the file.
func Errorf(n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &Error{Line: line, Msg: fmt.Sprintf(format, args...)}
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// fromYAML turns yaml.v3's own errors (syntax errors, and what its decoder
// still finds after Strict) into Errors with file and line.
func fromYAML(file string, err error) error {
	var ce *Error
	if errors.As(err, &ce) {
		if ce.File == "" {
			ce.File = file
		}
		return ce
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var errs []error
		for _, m := range te.Errors {
			errs = append(errs, lineText(file, m))
		}
		return errors.Join(errs...)
	}
	return lineText(file, strings.TrimPrefix(err.Error(), "yaml: "))
}

func lineText(file, m string) error {
	m = strings.TrimSpace(m)
	if sm := yamlLine.FindStringSubmatch(m); sm != nil {
		n, _ := strconv.Atoi(sm[1])
		return &Error{File: file, Line: n, Msg: sm[2]}
	}
	return &Error{File: file, Msg: m}
}
