package content

import (
	"archive/zip"
	"encoding/xml"
	"io"
	"sort"
	"strconv"
	"strings"
)

// maxSharedStrings bounds the shared strings of one workbook. Each is
// kept as an 8-byte summary (a 32-bit hash, findings and header class),
// never as text: a workbook of 2 million distinct strings costs 16 MiB.
const maxSharedStrings = 2 << 20

// shared is what a row needs to know of one shared string.
type shared struct {
	hash     uint32
	findings uint16
	header   uint8
	empty    bool
}

// readXLSX reads a workbook's shared strings, then each worksheet's rows.
// The XML is streamed with encoding/xml over archive/zip: excelize's
// readers load the shared strings (and, for OpenReader, the whole file)
// into memory.
func (s *Scan) readXLSX(zr *zip.Reader, name string) error {
	var strs []shared
	var sheets []*zip.File
	for _, f := range zr.File {
		switch {
		case f.Name == "xl/sharedStrings.xml":
			rc, err := s.open(f)
			if err != nil {
				return err
			}
			strs, err = s.sharedStrings(rc)
			rc.Close()
			if err != nil {
				return err
			}
		case strings.HasPrefix(f.Name, "xl/worksheets/") && strings.HasSuffix(f.Name, ".xml") && !strings.Contains(f.Name[len("xl/worksheets/"):], "/"):
			sheets = append(sheets, f)
		}
	}
	sort.Slice(sheets, func(i, j int) bool { return sheets[i].Name < sheets[j].Name })
	for _, f := range sheets {
		rc, err := s.open(f)
		if err != nil {
			return err
		}
		err = s.sheet(rc, strs)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// sharedStrings reads the <si> items: each is scanned once, here.
func (s *Scan) sharedStrings(r io.Reader) ([]shared, error) {
	d := xml.NewDecoder(&markupGuard{r: r})
	var (
		out  []shared
		cur  []byte
		inSI bool
		inT  int
	)
	for {
		if err := s.budget.checkTime(); err != nil {
			return nil, err
		}
		tok, err := d.RawToken()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		switch v := tok.(type) {
		case xml.StartElement:
			switch v.Name.Local {
			case "si":
				inSI, cur = true, cur[:0]
			case "t":
				inT++
			case "rPh":
				inT -= 1 << 10 // phonetic runs repeat the text: skip them
			}
		case xml.EndElement:
			switch v.Name.Local {
			case "t":
				inT--
			case "rPh":
				inT += 1 << 10
			case "si":
				if len(out) >= maxSharedStrings {
					return nil, bound(ReasonSize, "a workbook of more than %d shared strings", maxSharedStrings)
				}
				c := s.cellOf(cur, true)
				out = append(out, shared{hash: uint32(c.hash), findings: uint16(min(c.findings, 1<<16-1)), header: c.header, empty: c.empty})
				inSI = false
			}
		case xml.CharData:
			if inSI && inT > 0 && len(cur)+len(v) <= maxCell {
				cur = append(cur, v...)
			}
		}
	}
}

// sheet reads one worksheet's rows: <row><c r="B2" t="s"><v>7</v></c>.
func (s *Scan) sheet(r io.Reader, strs []shared) error {
	d := xml.NewDecoder(&markupGuard{r: r})
	tb := &table{}
	var (
		cells []cell
		val   []byte
		typ   string
		col   int
		inVal bool
	)
	for {
		if err := s.budget.checkTime(); err != nil {
			return err
		}
		tok, err := d.RawToken()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch v := tok.(type) {
		case xml.StartElement:
			switch v.Name.Local {
			case "row":
				cells = cells[:0]
			case "c":
				typ, col, val = "", -1, val[:0]
				for _, a := range v.Attr {
					switch a.Name.Local {
					case "t":
						typ = a.Value
					case "r":
						col = columnIndex(a.Value)
					}
				}
			case "v", "t":
				inVal = true
			}
		case xml.EndElement:
			switch v.Name.Local {
			case "v", "t":
				inVal = false
			case "c":
				if col < 0 {
					col = len(cells)
				}
				if col >= maxColumns {
					continue
				}
				for len(cells) < col {
					cells = append(cells, cell{empty: true})
				}
				var c cell
				if typ == "s" {
					if i, err := strconv.Atoi(string(val)); err == nil && i >= 0 && i < len(strs) {
						x := strs[i]
						c = cell{hash: uint64(x.hash), findings: int(x.findings), header: x.header, empty: x.empty}
					} else {
						c = cell{empty: true}
					}
				} else {
					c = s.cellOf(val, tb.rows == 0)
				}
				if col < len(cells) {
					cells[col] = c
				} else {
					cells = append(cells, c)
				}
			case "row":
				s.row(tb, cells)
			}
		case xml.CharData:
			if inVal && len(val)+len(v) <= maxCell {
				val = append(val, v...)
			}
		}
	}
}

// columnIndex turns a cell reference ("AB12") into its column (27).
func columnIndex(ref string) int {
	n := 0
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		if c < 'A' || c > 'Z' {
			break
		}
		n = n*26 + int(c-'A'+1)
		if n > maxColumns {
			return maxColumns
		}
	}
	return n - 1
}
