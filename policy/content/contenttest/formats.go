package contenttest

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html"
	"strings"

	"github.com/xuri/excelize/v2"
)

// CSV writes rows with the given delimiter.
func CSV(rows [][]string, delim rune) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Comma = delim
	w.UseCRLF = true
	_ = w.WriteAll(rows)
	return b.Bytes()
}

// objects turns a table into one object per row, keyed by the header.
func objects(rows [][]string) []map[string]string {
	var out []map[string]string
	for _, r := range rows[1:] {
		o := map[string]string{}
		for i, v := range r {
			o[strings.ToLower(rows[0][i])] = v
		}
		out = append(out, o)
	}
	return out
}

// JSON writes a table as an array of objects.
func JSON(rows [][]string) []byte {
	b, _ := json.MarshalIndent(map[string]any{"exported": "2026-11-20", "customers": objects(rows)}, "", "  ")
	return b
}

// NDJSON writes a table as one object per line.
func NDJSON(rows [][]string) []byte {
	var b bytes.Buffer
	for _, o := range objects(rows) {
		l, _ := json.Marshal(o)
		b.Write(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// XML writes a table as <customers><customer><name>…</name>…</customer>.
func XML(rows [][]string) []byte {
	var b bytes.Buffer
	b.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<customers>\n")
	for _, r := range rows[1:] {
		b.WriteString("  <customer>")
		for i, v := range r {
			tag := strings.ToLower(rows[0][i])
			fmt.Fprintf(&b, "<%s>%s</%s>", tag, html.EscapeString(v), tag)
		}
		b.WriteString("</customer>\n")
	}
	b.WriteString("</customers>\n")
	return b.Bytes()
}

// VCard writes one vCard per person.
func VCard(people []Person) []byte {
	var b bytes.Buffer
	for _, p := range people {
		fmt.Fprintf(&b, "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:%s\r\nEMAIL;TYPE=home:%s\r\nTEL;TYPE=cell:%s\r\nADR;TYPE=home:;;%s;%s;;%s;UK\r\nEND:VCARD\r\n",
			p.Name, p.Email, p.Phone, p.Street, p.City, p.Postcode)
	}
	return b.Bytes()
}

// ICal writes an invitation with one ATTENDEE line per person, folded as
// RFC 5545 folds long lines.
func ICal(people []Person) []byte {
	var b bytes.Buffer
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bccguard tests//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n" +
		"UID:launch-2026@brand.example\r\nDTSTART:20261201T100000Z\r\nSUMMARY:Product launch\r\n")
	for _, p := range people {
		line := fmt.Sprintf("ATTENDEE;CN=%s;ROLE=REQ-PARTICIPANT;RSVP=TRUE:mailto:%s", p.Name, p.Email)
		for len(line) > 60 {
			b.WriteString(line[:60] + "\r\n ")
			line = line[60:]
		}
		b.WriteString(line + "\r\n")
	}
	b.WriteString("END:VEVENT\r\nEND:VCALENDAR\r\n")
	return b.Bytes()
}

// HTMLTable writes a table as an HTML page.
func HTMLTable(rows [][]string) []byte {
	var b bytes.Buffer
	b.WriteString("<!DOCTYPE html><html><body><h1>Customers</h1><table>\n<tr>")
	for _, h := range rows[0] {
		fmt.Fprintf(&b, "<th>%s</th>", html.EscapeString(h))
	}
	b.WriteString("</tr>\n")
	for _, r := range rows[1:] {
		b.WriteString("<tr>")
		for _, v := range r {
			fmt.Fprintf(&b, "<td>%s</td>", html.EscapeString(v))
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</table></body></html>\n")
	return b.Bytes()
}

// XLSX writes a workbook with excelize (text cells go to shared strings).
func XLSX(rows [][]string) []byte {
	f := excelize.NewFile()
	defer f.Close()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		panic(err)
	}
	for i, r := range rows {
		vals := make([]any, len(r))
		for j, v := range r {
			vals[j] = v
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := sw.SetRow(cell, vals); err != nil {
			panic(err)
		}
	}
	if err := sw.Flush(); err != nil {
		panic(err)
	}
	// The stream writer writes inline strings; SetCellStr on a second
	// sheet exercises the shared strings too.
	if _, err := f.NewSheet("Shared"); err != nil {
		panic(err)
	}
	for i, r := range rows {
		for j, v := range r {
			cell, _ := excelize.CoordinatesToCellName(j+1, i+1)
			_ = f.SetCellStr("Shared", cell, v)
		}
	}
	var b bytes.Buffer
	if err := f.Write(&b); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// Zip writes entries (name, data) into a ZIP, deflated.
func Zip(entries ...Entry) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, e := range entries {
		f, err := w.CreateHeader(&zip.FileHeader{Name: e.Name, Method: e.method()})
		if err != nil {
			panic(err)
		}
		_, _ = f.Write(e.Data)
	}
	_ = w.Close()
	return b.Bytes()
}

// Entry is one file of an archive.
type Entry struct {
	Name  string
	Data  []byte
	Store bool // stored, not deflated (OpenDocument's mimetype)
}

func (e Entry) method() uint16 {
	if e.Store {
		return zip.Store
	}
	return zip.Deflate
}

// Gzip compresses data, naming the file inside.
func Gzip(name string, data []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Name = name
	_, _ = w.Write(data)
	_ = w.Close()
	return b.Bytes()
}

func xmlRows(rows [][]string, row, cell func(string) string) string {
	var b strings.Builder
	for _, r := range rows {
		var cells strings.Builder
		for _, v := range r {
			cells.WriteString(cell(html.EscapeString(v)))
		}
		b.WriteString(row(cells.String()))
	}
	return b.String()
}

// DOCX writes a Word document with a paragraph and the table.
func DOCX(rows [][]string) []byte {
	body := xmlRows(rows, func(c string) string { return "<w:tr>" + c + "</w:tr>" },
		func(v string) string { return "<w:tc><w:p><w:r><w:t>" + v + "</w:t></w:r></w:p></w:tc>" })
	doc := `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>
<w:p><w:r><w:t>Customer list, as requested.</w:t></w:r></w:p><w:tbl>` + body + `</w:tbl></w:body></w:document>`
	return Zip(Entry{Name: "[Content_Types].xml", Data: []byte(`<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`)},
		Entry{Name: "word/document.xml", Data: []byte(doc)})
}

// PPTX writes a presentation whose one slide holds the table.
func PPTX(rows [][]string) []byte {
	body := xmlRows(rows, func(c string) string { return "<a:tr>" + c + "</a:tr>" },
		func(v string) string {
			return "<a:tc><a:txBody><a:p><a:r><a:t>" + v + "</a:t></a:r></a:p></a:txBody></a:tc>"
		})
	slide := `<?xml version="1.0" encoding="UTF-8"?><p:sld xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"><p:cSld><p:spTree><p:graphicFrame><a:graphic><a:graphicData><a:tbl>` +
		body + `</a:tbl></a:graphicData></a:graphic></p:graphicFrame></p:spTree></p:cSld></p:sld>`
	return Zip(Entry{Name: "[Content_Types].xml", Data: []byte(`<?xml version="1.0"?><Types/>`)},
		Entry{Name: "ppt/presentation.xml", Data: []byte(`<?xml version="1.0"?><p:presentation xmlns:p="p"/>`)},
		Entry{Name: "ppt/slides/slide1.xml", Data: []byte(slide)})
}

func odf(mimetype, body string) []byte {
	content := `<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body>` +
		body + `</office:body></office:document-content>`
	return Zip(Entry{Name: "mimetype", Data: []byte(mimetype), Store: true},
		Entry{Name: "META-INF/manifest.xml", Data: []byte(`<?xml version="1.0"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"/>`)},
		Entry{Name: "content.xml", Data: []byte(content)})
}

func odfTable(rows [][]string) string {
	return "<table:table table:name=\"Customers\">" + xmlRows(rows, func(c string) string { return "<table:table-row>" + c + "</table:table-row>" },
		func(v string) string {
			return "<table:table-cell office:value-type=\"string\"><text:p>" + v + "</text:p></table:table-cell>"
		}) +
		"<table:table-row><table:table-cell table:number-columns-repeated=\"1020\"/></table:table-row></table:table>"
}

// ODS writes an OpenDocument spreadsheet.
func ODS(rows [][]string) []byte {
	return odf("application/vnd.oasis.opendocument.spreadsheet", "<office:spreadsheet>"+odfTable(rows)+"</office:spreadsheet>")
}

// ODT writes an OpenDocument text with a paragraph and the table.
func ODT(rows [][]string) []byte {
	return odf("application/vnd.oasis.opendocument.text", "<office:text><text:p>Customer list, as requested.</text:p>"+odfTable(rows)+"</office:text>")
}

// PDF writes a one-page PDF whose Flate-compressed content stream shows
// each row as a line of text, as a report generator does.
func PDF(rows [][]string) []byte {
	var content bytes.Buffer
	content.WriteString("BT /F1 8 Tf 40 800 Td 10 TL\n")
	for _, r := range rows {
		var parts []string
		for _, v := range r {
			parts = append(parts, "("+pdfEscape(v)+")")
		}
		// TJ with a wide gap between the cells, as table layouts do.
		fmt.Fprintf(&content, "[%s] TJ T*\n", strings.Join(parts, " -1200 "))
	}
	content.WriteString("ET\n")
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, _ = zw.Write(content.Bytes())
	_ = zw.Close()

	var b bytes.Buffer
	var offsets []int
	obj := func(s string) {
		offsets = append(offsets, b.Len())
		b.WriteString(s)
	}
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	obj("1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n")
	obj("2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n")
	obj("3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>\nendobj\n")
	offsets = append(offsets, b.Len())
	fmt.Fprintf(&b, "4 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n", z.Len())
	b.Write(z.Bytes())
	b.WriteString("\nendstream\nendobj\n")
	obj("5 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>\nendobj\n")
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for _, o := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets)+1, xref)
	return b.Bytes()
}

func pdfEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "(", `\(`, ")", `\)`).Replace(s)
}
