package content

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"io"
	"strconv"
	"unicode/utf16"
)

// The PDF reader is hand-written. The Go PDF modules served here either
// build the whole object graph in memory (pdfcpu, and it is not an
// approved release) or run PDFium in a WebAssembly runtime (go-pdfium),
// far beyond a relay's memory budget per message. What a text extractor
// reads from the page content streams is a small language: this reader
// walks the file once, inflates each Flate content stream within the
// bounds, and takes the strings of the text-showing operators (Tj, TJ, '
// and "). Fonts, images, colour profiles and metadata are skipped. Text
// drawn in a font whose encoding needs its ToUnicode CMap (CID fonts)
// comes out as glyph codes and is not recognised.

const pdfWindow = 8 << 10 // the non-stream bytes kept to read a stream's dictionary

// readPDF reads a PDF from start to end, once.
func (s *Scan) readPDF(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var window []byte
	pt := &pdfText{s: s}
	for {
		if err := s.budget.checkTime(); err != nil {
			return err
		}
		seg, err := br.ReadSlice('m')
		window = append(window, seg...)
		if bytes.Contains(window[max(0, len(window)-len(seg)-16):], []byte("/Encrypt")) {
			return bound(ReasonEncrypted, "an encrypted PDF")
		}
		if err != nil && err != bufio.ErrBufferFull {
			pt.flush()
			if err == io.EOF {
				return nil
			}
			return err
		}
		if len(window) > 2*pdfWindow {
			window = append(window[:0], window[len(window)-pdfWindow:]...)
		}
		if err == bufio.ErrBufferFull || !bytes.HasSuffix(window, []byte("stream")) || bytes.HasSuffix(window, []byte("endstream")) {
			continue
		}
		// The keyword is followed by CRLF or LF, then the data.
		if c, _ := br.Peek(1); len(c) == 1 && c[0] == '\r' {
			_, _ = br.Discard(1)
		}
		if c, _ := br.Peek(1); len(c) == 1 && c[0] == '\n' {
			_, _ = br.Discard(1)
		}
		dict := window
		if i := bytes.LastIndex(dict, []byte(" obj")); i >= 0 {
			dict = dict[i:]
		}
		window = window[:0]
		if err := s.pdfStream(br, dict, pt); err != nil {
			if r, _ := reasonOf(err); r == ReasonCorrupt {
				continue // one broken stream; the next may be fine
			}
			return err
		}
	}
}

// pdfStream reads the stream after dict, if it may hold page text.
func (s *Scan) pdfStream(br *bufio.Reader, dict []byte, pt *pdfText) error {
	has := func(k string) bool { return bytes.Contains(dict, []byte(k)) }
	skip := has("/Image") || has("/Length1") || has("/Length2") || has("/Length3") || has("/FontFile") ||
		has("/XRef") || has("/ObjStm") || has("/Metadata") || has("/ICCBased") || has("/N 3") || has("/N 4") || has("/N 1 ")
	flate := has("/FlateDecode") || has("/Fl ") || has("/Fl]") || has("/Fl/")
	other := has("/DCTDecode") || has("/LZWDecode") || has("/ASCII85Decode") || has("/ASCIIHexDecode") ||
		has("/RunLengthDecode") || has("/CCITTFaxDecode") || has("/JBIG2Decode") || has("/JPXDecode") || has("/Crypt")
	embedded := has("/EmbeddedFile")
	if skip || other {
		return nil // the reader goes on to the "endstream" keyword
	}
	var data io.Reader = &untilEndstream{br: br}
	if flate {
		cr := &countingReader{r: br}
		z, err := zlib.NewReader(cr)
		if err != nil {
			return err
		}
		defer z.Close()
		data = &inflater{r: z, b: s.budget, compressed: func() int64 { return cr.n }, what: "a PDF stream"}
	}
	if embedded {
		_, err := s.sniffRead(data, "", 1) // a file attached to the PDF
		return err
	}
	return pt.read(data)
}

// untilEndstream reads an unfiltered stream's data, up to "endstream".
type untilEndstream struct {
	br   *bufio.Reader
	done bool
}

func (u *untilEndstream) Read(p []byte) (int, error) {
	if u.done {
		return 0, io.EOF
	}
	b, err := u.br.Peek(min(len(p), 32<<10))
	if i := bytes.Index(b, []byte("endstream")); i >= 0 {
		u.done = true
		n := copy(p, b[:i])
		_, _ = u.br.Discard(n)
		return n, nil
	}
	// Keep the last bytes back: the keyword may start in them.
	n := len(b) - len("endstream")
	if err != nil {
		n = len(b)
	}
	if n <= 0 {
		if err != nil {
			return 0, err
		}
		n = len(b)
	}
	n = copy(p, b[:n])
	_, _ = u.br.Discard(n)
	return n, nil
}

// pdfText collects the strings that text operators show.
type pdfText struct {
	s       *Scan
	text    []byte
	pending [][]byte
	str     []byte
	tok     []byte
}

func (pt *pdfText) flush() {
	if len(pt.text) > 0 {
		pt.s.text(pt.text)
		pt.text = pt.text[:0]
	}
}

// read tokenizes one content stream.
func (pt *pdfText) read(r io.Reader) error {
	br := bufio.NewReaderSize(r, 16<<10)
	inArray := false
	pt.pending = pt.pending[:0]
	for {
		c, err := br.ReadByte()
		if err != nil {
			pt.flush()
			if err == io.EOF {
				return nil
			}
			return err
		}
		switch {
		case c == '(':
			s, err := readLiteral(br, pt.str[:0])
			if err != nil {
				return nil
			}
			pt.str = s
			pt.pending = append(pt.pending, decodePDFString(s))
		case c == '<':
			if next, _ := br.Peek(1); len(next) == 1 && next[0] == '<' {
				_, _ = br.ReadByte()
				continue
			}
			pt.pending = append(pt.pending, decodePDFString(readHex(br)))
		case c == '[':
			inArray = true
		case c == ']':
			inArray = false
		case c == '%':
			_, _ = br.ReadSlice('\n')
		case isDigit(c) || c == '-' || c == '.' || c == '+':
			pt.tok = append(pt.tok[:0], c)
			pt.tok = readWhile(br, pt.tok, func(c byte) bool { return isDigit(c) || c == '.' })
			if inArray {
				if v, err := strconv.ParseFloat(string(pt.tok), 64); err == nil && v < -200 {
					pt.pending = append(pt.pending, []byte(" "))
				}
			}
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '\'' || c == '"' || c == '*':
			pt.tok = append(pt.tok[:0], c)
			pt.tok = readWhile(br, pt.tok, func(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '*' })
			pt.operator(string(pt.tok))
		}
		if len(pt.text) > chunkSize {
			pt.flush()
		}
	}
}

func (pt *pdfText) operator(op string) {
	switch op {
	case "Tj", "TJ", "'", "\"":
		if op != "Tj" && op != "TJ" {
			pt.text = append(pt.text, '\n')
		}
		for _, p := range pt.pending {
			pt.text = append(pt.text, p...)
		}
	case "Td", "TD", "T*", "Tm", "BT", "ET":
		if op == "Td" || op == "TD" {
			pt.text = append(pt.text, ' ')
		} else {
			pt.text = append(pt.text, '\n')
		}
	}
	pt.pending = pt.pending[:0]
}

func readWhile(br *bufio.Reader, tok []byte, ok func(byte) bool) []byte {
	for len(tok) < 64 {
		c, err := br.ReadByte()
		if err != nil {
			return tok
		}
		if !ok(c) {
			_ = br.UnreadByte()
			return tok
		}
		tok = append(tok, c)
	}
	return tok
}

// readLiteral reads a (literal string) after its "(", with nesting and
// escapes, at most maxCell bytes.
func readLiteral(br *bufio.Reader, out []byte) ([]byte, error) {
	depth := 1
	for {
		c, err := br.ReadByte()
		if err != nil {
			return out, err
		}
		switch c {
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return out, nil
			}
		case '\\':
			e, err := br.ReadByte()
			if err != nil {
				return out, err
			}
			switch e {
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'b', 'f':
				c = ' '
			case '\r', '\n':
				continue // a line continuation
			default:
				if '0' <= e && e <= '7' {
					v := int(e - '0')
					for range 2 {
						d, err := br.ReadByte()
						if err != nil || d < '0' || d > '7' {
							if err == nil {
								_ = br.UnreadByte()
							}
							break
						}
						v = v*8 + int(d-'0')
					}
					c = byte(v)
				} else {
					c = e
				}
			}
		}
		if len(out) < maxCell {
			out = append(out, c)
		}
	}
}

// readHex reads a <hex string> after its "<".
func readHex(br *bufio.Reader) []byte {
	var out []byte
	var hi byte
	half := false
	for {
		c, err := br.ReadByte()
		if err != nil || c == '>' {
			if half {
				out = append(out, hi<<4)
			}
			return out
		}
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			v = c - 'A' + 10
		default:
			continue
		}
		if half {
			if len(out) < maxCell {
				out = append(out, hi<<4|v)
			}
			half = false
		} else {
			hi, half = v, true
		}
	}
}

// decodePDFString turns a string's bytes into UTF-8: UTF-16BE with its
// byte-order mark, else PDFDocEncoding, read as Latin-1 (they agree on
// letters, digits, "@" and the punctuation of addresses).
func decodePDFString(b []byte) []byte {
	if len(b) >= 2 && b[0] == 0xfe && b[1] == 0xff {
		u := make([]uint16, 0, len(b)/2)
		for i := 2; i+1 < len(b); i += 2 {
			u = append(u, uint16(b[i])<<8|uint16(b[i+1]))
		}
		return []byte(string(utf16.Decode(u)))
	}
	ascii := true
	for _, c := range b {
		ascii = ascii && c < 0x80
	}
	if ascii {
		return append([]byte(nil), b...)
	}
	out := make([]byte, 0, len(b)+8)
	for _, c := range b {
		out = append(out, string(rune(c))...)
	}
	return out
}
