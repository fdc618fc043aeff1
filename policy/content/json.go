package content

import (
	"encoding/json"
	"io"
)

// jsonFrame is one open object or array.
type jsonFrame struct {
	array bool
	key   string // the pending key, in an object
	row   bool   // this object is a row
	// top: a top-level object, a row of an NDJSON stream unless it turns
	// out to hold an array of objects (then those are the rows).
	top bool
}

// readJSON reads JSON and NDJSON (a stream of values) with encoding/json's
// tokenizer. Every string and number is scanned as text; an object that
// is an element of an array (or a top-level value of a stream) is a row,
// with the scalar values beneath it as its cells and their keys as the
// column headers.
func (s *Scan) readJSON(r io.Reader) error {
	g := &stepGuard{r: r, what: "JSON value"}
	dec := json.NewDecoder(g)
	dec.UseNumber()
	var (
		stack []jsonFrame
		cells []cell
		inRow bool
		tb    = &table{header: []uint8{}}
		keys  = map[string]uint8{}
	)
	classOf := func(k string) uint8 {
		if c, ok := keys[k]; ok {
			return c
		}
		c := classIndex(columnClass(k))
		if len(keys) < 10_000 {
			keys[k] = c
		}
		return c
	}
	scalar := func(v []byte) {
		top := len(stack) - 1
		key := ""
		if top >= 0 && !stack[top].array {
			key, stack[top].key = stack[top].key, ""
		}
		if !inRow {
			s.text(v)
			return
		}
		c := s.cellOf(v, false)
		if key != "" {
			c.class = classOf(key)
		}
		if len(cells) < maxColumns {
			cells = append(cells, c)
		}
	}
	for {
		if err := s.budget.checkTime(); err != nil {
			return err
		}
		tok, err := dec.Token()
		g.step()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		top := len(stack) - 1
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if len(stack) >= 256 {
					return bound(ReasonDepth, "JSON nested deeper than 256")
				}
				f := jsonFrame{array: v == '['}
				if v == '{' && inRow && top >= 0 && stack[top].array {
					// An array of objects inside a top-level object:
					// they are the rows, not the object around them.
					for i := range stack {
						if stack[i].row && stack[i].top {
							stack[i].row, inRow = false, false
							s.row(tb, cells)
						}
					}
				}
				if v == '{' && !inRow && (top < 0 || stack[top].array) {
					f.row, f.top, inRow, cells = true, top < 0, true, cells[:0]
				}
				stack = append(stack, f)
			case '}', ']':
				if top < 0 {
					continue
				}
				if stack[top].row {
					s.row(tb, cells)
					inRow = false
				}
				stack = stack[:top]
				if top > 0 && !stack[top-1].array {
					stack[top-1].key = ""
				}
			}
		case string:
			if top >= 0 && !stack[top].array && stack[top].key == "" {
				stack[top].key = v // an object key
				s.watch.write([]byte(v))
				s.watch.brk()
				continue
			}
			scalar([]byte(v))
		case json.Number:
			scalar([]byte(v))
		default: // bool, null
			if top >= 0 && !stack[top].array {
				stack[top].key = ""
			}
		}
	}
}
