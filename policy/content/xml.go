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
	var (
		stack  []*tableBuilder
		inText int
		text   = make([]byte, 0, 4096)
	)
	flushText := func() {
		if len(text) > 0 {
			s.text(text)
			text = text[:0]
		}
	}
	top := func() *tableBuilder {
		if len(stack) == 0 {
			return nil
		}
		return stack[len(stack)-1]
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
					stack = append(stack, &tableBuilder{})
				}
			case syn.row != "" && n == syn.row && t != nil:
				t.endRow(s)
			case isOneOf(n, syn.cells) && t != nil:
				repeat := 1
				for _, a := range v.Attr {
					if syn.repeat != "" && a.Name.Local == syn.repeat {
						if k, err := strconv.Atoi(a.Value); err == nil {
							repeat = min(max(k, 1), maxRepeat)
						}
					}
				}
				t.startCell(s, repeat)
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
				t.endRow(s)
				stack = stack[:len(stack)-1]
			case syn.row != "" && n == syn.row && t != nil:
				t.endRow(s)
			case isOneOf(n, syn.cells) && t != nil:
				t.endCell(s)
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
				t.add(s, v)
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
