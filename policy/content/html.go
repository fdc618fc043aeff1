package content

import (
	"bytes"
	"io"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

// maxCell bounds the text kept for one table cell; the rest of a longer
// cell is scanned as text.
const maxCell = 64 << 10

// readHTML reads HTML with golang.org/x/net/html's tokenizer: text with
// entities resolved, the attribute values a reader sees or follows (href
// with mailto: and tel: links percent-decoded, title, alt, value), and
// tables as rows of cells.
func (s *Scan) readHTML(r io.Reader) error {
	z := html.NewTokenizer(&markupGuard{r: r})
	z.SetMaxBuf(2 * maxToken)
	ht := htmlTables{s: s}
	for {
		if err := s.budget.checkTime(); err != nil {
			return err
		}
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			ht.flush()
			if err := z.Err(); err != io.EOF {
				return err
			}
			return nil
		case html.TextToken:
			ht.text(z.Text())
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, hasAttr := z.TagName()
			tag := string(name)
			if tt == html.EndTagToken {
				ht.end(tag)
				continue
			}
			switch tag {
			case "script", "style":
				if tt == html.StartTagToken {
					skipRaw(z, tag)
				}
				continue
			}
			ht.start(tag)
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				switch string(k) {
				case "href":
					ht.text(decodeLink(v))
				case "title", "alt", "value", "placeholder", "content", "aria-label":
					ht.text(v)
				}
			}
		}
	}
}

// skipRaw skips a script or style element, whose text is no reader's.
func skipRaw(z *html.Tokenizer, tag string) {
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return
		}
		if tt == html.EndTagToken {
			if n, _ := z.TagName(); string(n) == tag {
				return
			}
		}
	}
}

// decodeLink percent-decodes a mailto: or tel: link ("mailto:%61nn@…").
func decodeLink(v []byte) []byte {
	l := bytes.ToLower(v[:min(len(v), 7)])
	if !bytes.HasPrefix(l, []byte("mailto:")) && !bytes.HasPrefix(l, []byte("tel:")) {
		return v
	}
	d, err := url.PathUnescape(strings.ReplaceAll(string(v), "+", "%2B"))
	if err != nil {
		return v
	}
	// A mailto: lists addresses separated by commas, and may carry more
	// in ?cc= and ?to=: make each stand apart.
	d = strings.NewReplacer("?", " ", "&", " ", "=", " ", ",", " ", ":", " ").Replace(d)
	return []byte(d)
}

// htmlTables turns HTML tables into rows; text outside cells is text.
type htmlTables struct {
	s     *Scan
	stack []*tableBuilder
}

func (h *htmlTables) top() *tableBuilder {
	if len(h.stack) == 0 {
		return nil
	}
	return h.stack[len(h.stack)-1]
}

func (h *htmlTables) text(b []byte) {
	if t := h.top(); t != nil && t.inCell {
		t.add(h.s, b)
		return
	}
	h.s.text(b)
}

func (h *htmlTables) start(tag string) {
	t := h.top()
	switch tag {
	case "table":
		if len(h.stack) < 16 {
			h.stack = append(h.stack, &tableBuilder{})
		}
	case "tr":
		if t != nil {
			t.endRow(h.s)
		}
	case "td", "th":
		if t != nil {
			t.startCell(h.s, 1)
		}
	case "br", "p", "div", "li":
		h.brk()
	}
}

func (h *htmlTables) end(tag string) {
	t := h.top()
	switch tag {
	case "table":
		if t != nil {
			t.endRow(h.s)
			h.stack = h.stack[:len(h.stack)-1]
		}
	case "tr":
		if t != nil {
			t.endRow(h.s)
		}
	case "td", "th":
		if t != nil {
			t.endCell(h.s)
		}
	case "p", "div", "li", "a", "span", "b", "strong", "em", "i":
		h.brk()
	}
}

// brk separates words across markup, in a cell or in text.
func (h *htmlTables) brk() {
	if t := h.top(); t != nil && t.inCell {
		t.cur = append(t.cur, ' ')
		return
	}
	h.s.watch.brk()
}

// flush ends whatever the document left open.
func (h *htmlTables) flush() {
	for len(h.stack) > 0 {
		h.end("table")
	}
}
