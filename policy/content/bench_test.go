package content_test

import (
	"bytes"
	"testing"

	"github.com/bccguard/bccguard/policy/content"
	ct "github.com/bccguard/bccguard/policy/content/contenttest"
)

// BenchmarkFormats reports the scan's speed per format, in MB/s of the
// attachment as sent (before base64): go test -bench Formats ./policy/content
func BenchmarkFormats(b *testing.B) {
	order := ct.Table(ct.People(5000), ct.OrderExport)
	formats := []struct {
		name string
		data []byte
	}{
		{"customers.csv", ct.CSV(order, ',')}, {"customers.json", ct.JSON(order)}, {"customers.html", ct.HTMLTable(order)},
		{"customers.xml", ct.XML(order)}, {"customers.xlsx", ct.XLSX(order)}, {"customers.docx", ct.DOCX(order)},
		{"customers.ods", ct.ODS(order)}, {"report.pdf", ct.PDF(order)}, {"customers.zip", ct.Zip(ct.Entry{Name: "c.csv", Data: ct.CSV(order, ',')})},
		{"customers.csv.gz", ct.Gzip("c.csv", ct.CSV(order, ','))}, {"plain.txt", bytes.Repeat([]byte("Dear customer, thank you for your order. "), 20000)},
	}
	dir := b.TempDir()
	for _, f := range formats {
		msg := ct.Message("bench", "", ct.Attachment{Name: f.name, Data: f.data})
		b.Run(f.name, func(b *testing.B) {
			b.SetBytes(int64(len(f.data)))
			b.ReportAllocs()
			for b.Loop() {
				s := content.New(content.Options{TempDir: dir, PhoneRegion: "GB"})
				s.Message(bytes.NewReader(msg))
			}
		})
	}
}

// BenchmarkSmallMessage is what a 2 KiB one-to-one message costs the scan.
func BenchmarkSmallMessage(b *testing.B) {
	text := bytes.Repeat([]byte("Hello Anna, the meeting is moved to Tuesday at 10. Best, Jonas\r\n"), 28)
	msg := []byte("From: jonas@brand.example\r\nTo: Anna <anna@example.net>\r\nSubject: meeting\r\n\r\n" + string(text))
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	w := content.Watch{Keys: []string{"anna@example.net"}, Names: [][]string{{"Anna"}}}
	for b.Loop() {
		s := content.New(content.Options{Watch: w})
		s.Message(bytes.NewReader(msg))
	}
}
