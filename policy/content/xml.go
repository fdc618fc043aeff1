package content

import (
	"encoding/xml"
	"io"
	"strconv"
)

// The XML formats are read with encoding/xml's RawToken, a token at a
// time, so memory stays bounded by the largest token (which markupGuard
// bounds) whatever the size of the document. excelize and the like would
// build the document, or its shared strings, in memory.

// xmlSyntax names the elements of one document format's tables and
// paragraphs (local names: encoding/xml's RawToken keeps prefixes apart).
type xmlSyntax struct {
	table, row string
	cells      []string // cell elements
	paras      []string // paragraph elements: a word break after each
	// text, when set, is the only element whose character data is
	// document text (w:t in DOCX, a:t in PPTX); otherwise all is.
	text string
	// repeat names ODF's number-columns-repeated attribute.
	repeat string
}

var (
	docxSyntax = xmlSyntax{table: "tbl", row: "tr", cells: []string{"tc"}, paras: []string{"p", "br", "tab"}, text: "t"}
	pptxSyntax = xmlSyntax{table: "tbl", row: "tr", cells: []string{"tc"}, paras: []string{"p", "br"}, text: "t"}
	odfSyntax  = xmlSyntax{table: "table", row: "table-row", cells: []string{"table-cell", "covered-table-cell"},
		paras: []string{"p", "h", "line-break", "tab", "s"}, repeat: "number-columns-repeated"}
	// plainXML reads any XML document: all character data and attribute
	// values are text.
	plainXML = xmlSyntax{}
)

// readXML reads an XML document of no known format.
func (s *Scan) readXML(r io.Reader) error { return s.readXMLDoc(r, plainXML) }

func isOneOf(n string, l []string) bool {
	for _, x := range l {
		if n == x {
			return true
		}
	}
	return false
}

// maxRepeat bounds how many columns one repeated ODF cell stands for.
const maxRepeat = 64

// readXMLDoc reads one XML document of the given syntax: rows of its
// tables are scored, the rest is text.
func (s *Scan) readXMLDoc(r io.Reader, syn xmlSyntax) error {
	d := xml.NewDecoder(&markupGuard{r: r})
	d.Strict = false
	type tbl struct {
		tb     table
		cells  []cell
		cur    []byte
		inCell bool
		repeat int
	}
	var (
		stack  []*tbl
		inText int
		text   = make([]byte, 0, 4096)
	)
	flushText := func() {
		if len(text) > 0 {
			s.text(text)
			text = text[:0]
		}
	}
	top := func() *tbl {
		if len(stack) == 0 {
			return nil
		}
		return stack[len(stack)-1]
	}
	endCell := func(t *tbl) {
		if !t.inCell {
			return
		}
		c := s.cellOf(t.cur, t.tb.rows == 0)
		for range max(1, t.repeat) {
			if len(t.cells) < maxColumns {
				t.cells = append(t.cells, c)
			}
		}
		t.cur, t.inCell, t.repeat = t.cur[:0], false, 0
	}
	endRow := func(t *tbl) {
		endCell(t)
		if len(t.cells) > 0 {
			s.row(&t.tb, t.cells)
		}
		t.cells = t.cells[:0]
	}
	for {
		if err := s.budget.checkTime(); err != nil {
			return err
		}
		tok, err := d.RawToken()
		if err == io.EOF {
			flushText()
			return nil
		}
		if err != nil {
			flushText()
			return err
		}
		switch v := tok.(type) {
		case xml.StartElement:
			n := v.Name.Local
			t := top()
			switch {
			case syn.table != "" && n == syn.table:
				if len(stack) < 16 {
					stack = append(stack, &tbl{})
				}
			case syn.row != "" && n == syn.row && t != nil:
				endRow(t)
			case isOneOf(n, syn.cells) && t != nil:
				endCell(t)
				t.inCell = true
				if syn.repeat != "" {
					for _, a := range v.Attr {
						if a.Name.Local == syn.repeat {
							if k, err := strconv.Atoi(a.Value); err == nil {
								t.repeat = min(max(k, 1), maxRepeat)
							}
						}
					}
				}
			case syn.text != "" && n == syn.text:
				inText++
			}
			if syn.text == "" {
				for _, a := range v.Attr {
					if len(a.Value) > 0 && a.Name.Space != "xmlns" && a.Name.Local != "xmlns" {
						s.text([]byte(a.Value))
					}
				}
			}
		case xml.EndElement:
			n := v.Name.Local
			t := top()
			if syn.table == "" {
				text = append(text, ' ') // <name>Zoe</name><email>… are two words
			}
			switch {
			case syn.table != "" && n == syn.table && t != nil:
				endRow(t)
				stack = stack[:len(stack)-1]
			case syn.row != "" && n == syn.row && t != nil:
				endRow(t)
			case isOneOf(n, syn.cells) && t != nil:
				endCell(t)
			case syn.text != "" && n == syn.text:
				inText = max(0, inText-1)
			case isOneOf(n, syn.paras):
				if t != nil && t.inCell {
					t.cur = append(t.cur, ' ')
				} else {
					text = append(text, '\n')
				}
			}
		case xml.CharData:
			if syn.text != "" && inText == 0 {
				continue
			}
			if t := top(); t != nil && t.inCell {
				if len(t.cur)+len(v) <= maxCell {
					t.cur = append(t.cur, v...)
				} else {
					s.text(v)
				}
				continue
			}
			if len(text)+len(v) > chunkSize {
				flushText()
			}
			if len(v) > chunkSize {
				s.text(v)
			} else {
				text = append(text, v...)
			}
		}
	}
}
