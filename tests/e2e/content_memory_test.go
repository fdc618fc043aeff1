package e2e

import (
	"archive/zip"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/bccguard/bccguard/internal/smtptest"
	ct "github.com/bccguard/bccguard/policy/content/contenttest"
	"github.com/bccguard/bccguard/tests/harness"
)

// bigWorkbook is an XLSX of about size bytes: a sheet of customers (inline
// strings with random names, so that it compresses about 2:1, as real
// exports do) and shared strings.
func bigWorkbook(size int) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	add := func(name, s string) {
		f, _ := w.Create(name)
		_, _ = f.Write([]byte(s))
	}
	add("[Content_Types].xml", `<?xml version="1.0"?><Types/>`)
	add("xl/workbook.xml", `<?xml version="1.0"?><workbook/>`)
	add("xl/sharedStrings.xml", `<?xml version="1.0"?><sst><si><t>Name</t></si><si><t>Email</t></si><si><t>Phone</t></si></sst>`)
	f, _ := w.Create("xl/worksheets/sheet1.xml")
	_, _ = f.Write([]byte(`<?xml version="1.0"?><worksheet><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>2</v></c></row>`))
	rnd := make([]byte, 12)
	for i := 2; b.Len() < size; i++ {
		_, _ = rand.Read(rnd)
		h := hex.EncodeToString(rnd)
		fmt.Fprintf(f, `<row r="%d"><c r="A%d" t="inlineStr"><is><t>%s %s</t></is></c><c r="B%d" t="inlineStr"><is><t>%s@example.com</t></is></c><c r="C%d" t="inlineStr"><is><t>+44 20 7946 %04d</t></is></c></row>`,
			i, i, h[:8], h[8:16], i, h, i, i%1000)
	}
	_, _ = f.Write([]byte(`</sheetData></worksheet>`))
	_ = w.Close()
	return b.Bytes()
}

// bigZip is a ZIP of about size bytes holding a customer CSV.
func bigZip(size int) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, _ := w.Create("customers.csv")
	_, _ = f.Write([]byte("name,email,phone\r\n"))
	rnd := make([]byte, 12)
	for i := 0; b.Len() < size; i++ {
		_, _ = rand.Read(rnd)
		h := hex.EncodeToString(rnd)
		fmt.Fprintf(f, "%s %s,%s@example.com,+44 20 7946 %04d\r\n", h[:8], h[8:16], h, i%1000)
	}
	_ = w.Close()
	return b.Bytes()
}

// TestContentScanMemory sends a large XLSX and a large ZIP of customers
// through the real binary and checks that it holds them and that its peak
// resident memory stays under 64 MiB: the attachment is spilled to the
// data folder and read as a stream. 10 MiB by default; with
// BCCGUARD_FULL=1, 50 MiB each, as issue 14 asks.
func TestContentScanMemory(t *testing.T) {
	size := 10 << 20
	if os.Getenv(FullMemoryEnv) == "1" {
		size = 50 << 20
	}
	const maxRSS = 64 << 20
	for _, tc := range []struct {
		name string
		data func(int) []byte
	}{{"customers.xlsx", bigWorkbook}, {"customers.zip", bigZip}} {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.data(size)
			msg := ct.Message("the full export", "All of them.", ct.Attachment{Name: tc.name, Data: data})
			sink := harness.NewSink(t, smtptest.HashOnly())
			r := harness.Start(t, `
listeners:
  - name: smtp
    address: {{addr "smtp"}}
    limits: {max_message_size: 100MiB, data_timeout: 5m}
`, harness.WithUpstream(sink.Addr()))
			start := time.Now()
			rep, _ := submit(t, r.Addr(), "sales@brand.example", []string{"agency@example.net"}, msg)
			took := time.Since(start)
			if heldFor.FindStringSubmatch(rep.Text()) == nil {
				t.Errorf("end of DATA %s, want held for review", rep)
			}
			rss := r.PeakRSS()
			t.Logf("%s of %.1f MiB: scanned and held in %v (%.1f MiB/s of attachment); bccguard peak RSS (VmHWM) %.1f MiB",
				tc.name, float64(len(data))/(1<<20), took.Round(time.Millisecond), float64(len(data))/(1<<20)/took.Seconds(), float64(rss)/(1<<20))
			if rss >= maxRSS {
				t.Errorf("peak RSS %.1f MiB, want under 64 MiB", float64(rss)/(1<<20))
			}
		})
	}
}
