package content_test

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bccguard/bccguard/policy/content"
	ct "github.com/bccguard/bccguard/policy/content/contenttest"
)

var (
	fuzzPeople = ct.People(8)
	fuzzRows   = ct.Table(fuzzPeople, ct.OrderExport)
	// A sample shows at most a few digits in a row, and every sample is
	// masked.
	clearDigits = regexp.MustCompile(`[0-9]{5,}`)
	reasons     = []string{content.ReasonEncrypted, content.ReasonCorrupt, content.ReasonSize, content.ReasonRatio,
		content.ReasonEntries, content.ReasonDepth, content.ReasonTime}
)

// fuzzFormat scans data as an attachment named name, within small
// bounds, and checks what must hold for any input: the scan ends within
// its time bound, counts stay under the cap, every unscannable piece has
// a known reason, no reader panicked, and no sample is unmasked.
func fuzzFormat(t *testing.T, name string, data []byte) {
	const limit = 50
	o := content.Options{TempDir: t.TempDir(), MaxDistinct: limit,
		Limits: content.Limits{MaxInflated: 4 << 20, MaxEntries: 64, MaxDepth: 4, Time: 5 * time.Second, MaxSpill: 8 << 20}}
	s := content.New(o)
	start := time.Now()
	s.Message(bytes.NewReader(ct.Message("fuzz", "", ct.Attachment{Name: name, Data: data})))
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("scan took %s, bound 5s", d)
	}
	r := s.Result()
	if strings.Contains(r.Err, "aborted") {
		t.Fatalf("a reader panicked: %s", r.Err)
	}
	for _, k := range content.Kinds {
		if n := r.Totals.Get(k); n > limit {
			t.Fatalf("%s: %d over the cap %d", k, n, limit)
		}
	}
	for _, u := range r.Unscannable() {
		if !slices.Contains(reasons, u.Reason) {
			t.Fatalf("unknown reason %+v", u)
		}
	}
	for _, p := range r.Parts {
		for kind, ss := range p.Samples {
			for _, v := range ss {
				if clearDigits.MatchString(v) || !strings.ContainsAny(v, "*…") {
					t.Fatalf("%s sample %q is not masked", kind, v)
				}
			}
		}
	}
}

func fuzzSeeds(f *testing.F, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
}

func FuzzCSV(f *testing.F) {
	fuzzSeeds(f, ct.CSV(fuzzRows, ','), ct.CSV(fuzzRows, '\t'), []byte("a,\"b\nc"))
	f.Fuzz(func(t *testing.T, b []byte) { fuzzFormat(t, "f.csv", b) })
}

func FuzzJSON(f *testing.F) {
	fuzzSeeds(f, ct.JSON(fuzzRows), ct.NDJSON(fuzzRows), []byte(`[{"a":[{"b":1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) { fuzzFormat(t, "f.json", b) })
}

func FuzzHTML(f *testing.F) {
	fuzzSeeds(f, ct.HTMLTable(fuzzRows), []byte(`<a href="mailto:%61@example.com">x</a><table><tr><td>`))
	f.Fuzz(func(t *testing.T, b []byte) { fuzzFormat(t, "f.html", b) })
}

func FuzzXML(f *testing.F) {
	fuzzSeeds(f, ct.XML(fuzzRows))
	f.Fuzz(func(t *testing.T, b []byte) { fuzzFormat(t, "f.xml", b) })
}

func FuzzVCardICal(f *testing.F) {
	fuzzSeeds(f, ct.VCard(fuzzPeople), ct.ICal(fuzzPeople))
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzFormat(t, "f.vcf", b)
		fuzzFormat(t, "f.ics", b)
	})
}

func FuzzXLSX(f *testing.F) {
	fuzzSeeds(f, ct.XLSX(fuzzRows))
	f.Fuzz(func(t *testing.T, b []byte) { fuzzFormat(t, "f.xlsx", b) })
}

func FuzzOOXMLDocuments(f *testing.F) {
	fuzzSeeds(f, ct.DOCX(fuzzRows), ct.PPTX(fuzzRows))
	f.Fuzz(func(t *testing.T, b []byte) { fuzzFormat(t, "f.docx", b) })
}

func FuzzOpenDocument(f *testing.F) {
	fuzzSeeds(f, ct.ODS(fuzzRows), ct.ODT(fuzzRows))
	f.Fuzz(func(t *testing.T, b []byte) { fuzzFormat(t, "f.ods", b) })
}

func FuzzPDF(f *testing.F) {
	fuzzSeeds(f, ct.PDF(fuzzRows), []byte("%PDF-1.4\n1 0 obj<<>>stream\n(a) Tj\nendstream"))
	f.Fuzz(func(t *testing.T, b []byte) { fuzzFormat(t, "f.pdf", b) })
}

func FuzzArchives(f *testing.F) {
	fuzzSeeds(f, ct.Zip(ct.Entry{Name: "a.csv", Data: ct.CSV(fuzzRows, ',')}), ct.Gzip("a.json", ct.JSON(fuzzRows)),
		nest(ct.CSV(fuzzRows, ','), 3))
	f.Fuzz(func(t *testing.T, b []byte) { fuzzFormat(t, "f.bin", b) })
}
