package content_test

import (
	"archive/zip"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/bccguard/bccguard/policy/content"
	ct "github.com/bccguard/bccguard/policy/content/contenttest"
)

func scanWith(t testing.TB, msg []byte, o content.Options) content.Result {
	t.Helper()
	if o.TempDir == "" {
		o.TempDir = t.TempDir()
	}
	s := content.New(o)
	start := time.Now()
	s.Message(bytes.NewReader(msg))
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the scan took %s", d)
	}
	return s.Result()
}

// nest wraps data in n levels of ZIP.
func nest(data []byte, n int) []byte {
	for i := range n {
		data = ct.Zip(ct.Entry{Name: "level" + string(rune('a'+i)) + ".zip", Data: data})
	}
	return data
}

// randomText is n bytes of hex: it compresses about 2:1.
func randomText(n int) []byte {
	b := make([]byte, n/2)
	_, _ = rand.Read(b)
	return []byte(hex.EncodeToString(b))
}

// encryptedZip has one entry whose flags say it is encrypted.
func encryptedZip() []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, _ := w.CreateHeader(&zip.FileHeader{Name: "customers.csv", Method: zip.Store, Flags: 0x1})
	_, _ = f.Write(randomText(4096))
	_ = w.Close()
	return b.Bytes()
}

// Each bomb and each encrypted file ends unscannable with its reason,
// within the time bound, and never as "nothing found" silently.
func TestBounds(t *testing.T) {
	csv := ct.CSV(ct.Table(ct.People(60), ct.OrderExport), ',')
	zeros := make([]byte, 300<<20)
	ratioBomb := ct.Zip(ct.Entry{Name: "zeros.csv", Data: zeros})
	zeros = nil
	var oleEncrypted bytes.Buffer
	oleEncrypted.Write([]byte{0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1})
	oleEncrypted.Write(make([]byte, 2000))
	oleEncrypted.WriteString("E\x00n\x00c\x00r\x00y\x00p\x00t\x00e\x00d\x00P\x00a\x00c\x00k\x00a\x00g\x00e\x00")
	oleEncrypted.Write(make([]byte, 2000))
	encODF := ct.Zip(ct.Entry{Name: "mimetype", Data: []byte("application/vnd.oasis.opendocument.spreadsheet"), Store: true},
		ct.Entry{Name: "META-INF/manifest.xml", Data: []byte(`<manifest:manifest><manifest:file-entry manifest:full-path="content.xml"><manifest:encryption-data/></manifest:file-entry></manifest:manifest>`)},
		ct.Entry{Name: "content.xml", Data: randomText(2048)})
	encPDF := []byte("%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R /Encrypt 9 0 R >>\n%%EOF\n")
	var many []ct.Entry
	for i := range 50 {
		many = append(many, ct.Entry{Name: "f" + string(rune('A'+i%26)) + string(rune('a'+i/26)) + ".txt", Data: []byte("x")})
	}
	tick := time.Unix(0, 0)
	tests := []struct {
		name   string
		data   []byte
		o      content.Options
		reason string
	}{
		{"ratio bomb", ratioBomb, content.Options{}, content.ReasonRatio},
		{"nested bomb", nest(csv, 12), content.Options{}, content.ReasonDepth},
		{"inflate budget", ct.Zip(ct.Entry{Name: "a.txt", Data: randomText(3 << 20)}), content.Options{Limits: content.Limits{MaxInflated: 1 << 20}}, content.ReasonSize},
		{"entries", ct.Zip(many...), content.Options{Limits: content.Limits{MaxEntries: 10}}, content.ReasonEntries},
		{"encrypted zip", encryptedZip(), content.Options{}, content.ReasonEncrypted},
		{"encrypted office document", oleEncrypted.Bytes(), content.Options{}, content.ReasonEncrypted},
		{"encrypted opendocument", encODF, content.Options{}, content.ReasonEncrypted},
		{"encrypted pdf", encPDF, content.Options{}, content.ReasonEncrypted},
		{"time", ct.Zip(ct.Entry{Name: "c.csv", Data: csv}), content.Options{Limits: content.Limits{Time: 3 * time.Second},
			Now: func() time.Time { tick = tick.Add(time.Minute); return tick }}, content.ReasonTime},
		{"corrupt zip", append([]byte("PK\x03\x04"), randomText(1000)...), content.Options{}, content.ReasonCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := scanWith(t, ct.Message("x", "", ct.Attachment{Name: "export.bin", Data: tc.data}), tc.o)
			u := r.Unscannable()
			if len(u) == 0 {
				t.Fatalf("nothing unscannable; report %+v", r.Parts)
			}
			if u[0].Reason != tc.reason || u[0].Detail == "" {
				t.Errorf("unscannable %+v, want reason %q with a detail", u, tc.reason)
			}
		})
	}
}
